"""The two parts of a graceful shutdown, alone: repeated SIGTERMs within the grace are
ignored, and a stopping worker can release every lock its abandoned work still holds."""

from __future__ import annotations

import signal

from support.clock import ManualClock

from packetworker.pipeline.shutdown import RepeatGuard


def test_a_repeated_sigterm_within_the_grace_is_ignored_and_one_after_it_passes():
    calls: list[int] = []
    clock = ManualClock()
    guard = RepeatGuard(lambda signum, frame: calls.append(signum), grace=25.0, clock=clock)

    guard(signal.SIGTERM, None)
    clock.now += 24.9
    guard(signal.SIGTERM, None)
    guard(signal.SIGHUP, None)
    assert calls == [signal.SIGTERM]

    clock.now += 0.2
    guard(signal.SIGTERM, None)
    assert calls == [signal.SIGTERM, signal.SIGTERM]


def test_release_all_frees_the_locks_still_held_and_only_those(ledger):
    locks = ledger.locks
    kept = locks.acquire("packet:a", ttl=60)
    done = locks.acquire("packet:b", ttl=60)
    poll = locks.acquire("poll:AREA", ttl=60)
    assert None not in (kept, done, poll)
    locks.release(done)

    assert locks.release_all() == ["packet:a", "poll:AREA"]
    assert locks.release_all() == []
    # Free for the next worker; releasing an already released handle stays harmless.
    assert locks.acquire("packet:a", ttl=60) is not None
    assert locks.acquire("poll:AREA", ttl=60) is not None
    locks.release(kept)
    assert locks.acquire("packet:a", ttl=60) is None
