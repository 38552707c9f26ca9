"""`kept_alive`: a heartbeat refreshes locks while a long step runs, including locks taken
during the step, and a refresh that fails (Redis away for a moment) does not stop it."""

from __future__ import annotations

from support.waiting import wait_for

from packetworker.pipeline.locks import LockHandle, kept_alive


class CountingHandle(LockHandle):
    def __init__(self, *, failures: int = 0) -> None:
        self.refreshes = 0
        self.failures = failures

    def refresh(self) -> bool:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("Redis away")
        self.refreshes += 1
        return True


def test_locks_are_refreshed_while_the_block_runs_and_no_longer_after():
    first, later = CountingHandle(), CountingHandle()
    handles = [first]
    with kept_alive(handles, every=0.01):
        wait_for(lambda: first.refreshes >= 3, timeout=5, what="three beats")
        handles.append(later)  # a lock taken inside the block
        wait_for(lambda: later.refreshes >= 2, timeout=5, what="the new lock refreshed")
    done = first.refreshes
    other = CountingHandle()  # its beats measure the time that passes after the block
    with kept_alive([other], every=0.01):
        wait_for(lambda: other.refreshes >= 3, timeout=5, what="three beats of another block")
    assert first.refreshes == done


def test_a_failed_refresh_is_tried_again_at_the_next_beat():
    flaky = CountingHandle(failures=2)
    with kept_alive([flaky], every=0.01):
        wait_for(lambda: flaky.refreshes >= 1, timeout=5, what="a refresh after two failures")
    assert flaky.failures == 0
