"""What an operator reads when a packet's ledger entry vanishes mid-run (Redis flushed): one
clear warning, no `KeyError` traceback, nothing retried in vain; and what an inbound or
outbound actor logs for a transient failure (one warning saying when it is retried) and for a
bug (nothing: the exception goes on to dramatiq's ERROR and traceback). The busy-packet retry
is checked on real worker processes in `e2e/test_group_sigterm.py`, a portal outage in
`e2e/test_portal_faults.py`."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence

import dramatiq
import pytest
from dramatiq.middleware import CurrentMessage
from pipeline_samples import order

from packetworker.logs import bind
from packetworker.packets.model import Record
from packetworker.pipeline.polling import poll_once
from packetworker.pipeline.processing import VANISHED, process_packet
from packetworker.pipeline.results import RetryLater, TransientError
from packetworker.targets import ApplyContext, RecordOutcome
from packetworker.targets.recording import RecordingTarget


@pytest.fixture
def ledger(redis_ledger):
    return redis_ledger


class FlushingTarget(RecordingTarget):
    """Applies the first batch, then Redis loses the ledger's data (as a flush would)."""

    def __init__(self, flush) -> None:
        super().__init__()
        self.flush = flush

    def apply(self, records: Sequence[Record], *, ctx: ApplyContext) -> list[RecordOutcome]:
        outcomes = super().apply(records, ctx=ctx)
        self.flush()
        return outcomes


def test_a_ledger_entry_vanishing_mid_packet_is_one_warning_without_a_traceback(
    sandbox, make_ctx, redis_namespace, caplog
):
    client, namespace = redis_namespace

    def flush() -> None:
        client.delete(*client.scan_iter(f"{namespace}:*"))

    ctx = make_ctx(sandbox, target=FlushingTarget(flush), apply_batch_size=2)
    packet_id = sandbox.enqueue("DEMO", order("SO1", lines=3), user="u1")
    poll_once(ctx, "DEMO")
    caplog.set_level(logging.DEBUG, logger="packetworker")

    result = process_packet(ctx, "DEMO", packet_id)

    ours = [r for r in caplog.records if r.name.startswith("packetworker")]
    warnings = [r for r in ours if r.levelno >= logging.WARNING]
    assert [(r.levelname, "vanished" in r.getMessage()) for r in warnings] == [("WARNING", True)]
    assert [r for r in ours if r.exc_info or r.exc_text] == []
    assert (result.state, result.error) == ("unknown", VANISHED)
    # Not acknowledged: the packet stays pending in the portal for the next poll to list.
    assert packet_id in sandbox.pending("DEMO")


# --- a transient failure inside a packet actor -------------------------------------------------


@pytest.fixture
def actors():
    from packetworker.pipeline import actors

    return actors


@pytest.fixture
def delivery() -> Iterator[Callable[[int], None]]:
    """Make the current thread process a message that was retried `retries` times already,
    as dramatiq's `CurrentMessage` middleware does for an actor."""
    current = CurrentMessage()

    def deliver(retries: int) -> None:
        message = dramatiq.Message(
            queue_name="pw-packets",
            actor_name="process_packet",
            args=("DEMO", "p-1"),
            kwargs={},
            options={"retries": retries},
        )
        current.before_process_message(None, message)

    yield deliver
    current.after_process_message(None, None)


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_transient_failure_is_one_warning_with_its_reason_and_when_it_is_retried(
    actors, delivery, caplog
):
    log = bind(logging.getLogger("packetworker.pipeline.actors"), packet_id="p-1")
    delivery(2)
    caplog.set_level(logging.INFO, logger="packetworker")

    with pytest.raises(dramatiq.Retry) as raised, actors.transient_as_warning(log):
        raise TransientError("portal unavailable (HTTP 503); sent Authorization: Bearer abc.def")

    settings = actors.settings
    assert isinstance(raised.value, RetryLater)
    assert raised.value.transient
    assert settings.retry_min_backoff_ms <= raised.value.delay <= settings.retry_max_backoff_ms
    [line] = _warnings(caplog)
    assert line == (
        f"Transient failure, retry 3 of {settings.process_max_retries} in "
        f"{raised.value.delay / 1000:.1f}s: TransientError: portal unavailable (HTTP 503); "
        "sent Authorization: ***"
    )
    assert [r for r in caplog.records if r.exc_info] == []


def test_a_retry_later_keeps_its_delay_and_the_last_retry_says_none_are_left(
    actors, delivery, caplog
):
    log = bind(logging.getLogger("packetworker.pipeline.actors"), packet_id="p-1")
    caplog.set_level(logging.INFO, logger="packetworker")
    later = RetryLater("write in doubt: order SO-1", seconds=600)
    delivery(0)
    with pytest.raises(RetryLater) as raised, actors.transient_as_warning(log):
        raise later
    delivery(actors.settings.process_max_retries)
    with pytest.raises(dramatiq.Retry), actors.transient_as_warning(log):
        raise TransientError("target unavailable")

    assert raised.value is later
    assert _warnings(caplog) == [
        f"Transient failure, retry 1 of {actors.settings.process_max_retries} in 600.0s: "
        "RetryLater: write in doubt: order SO-1",
        f"Transient failure, no retries left after {actors.settings.process_max_retries}; "
        "a later poll sends it again: TransientError: target unavailable",
    ]


def test_a_bug_inside_a_packet_actor_propagates_untouched_and_unlogged(actors, caplog):
    log = bind(logging.getLogger("packetworker.pipeline.actors"), packet_id="p-1")
    caplog.set_level(logging.INFO, logger="packetworker")
    bug = KeyError("no such field")

    with pytest.raises(KeyError) as raised, actors.transient_as_warning(log):
        raise bug

    assert raised.value is bug
    assert _warnings(caplog) == []


def test_a_busy_or_unreachable_outbound_push_is_one_warning_not_a_traceback(
    actors, delivery, caplog, monkeypatch
):
    from packetworker.outbound.push import PushBusy
    from packetworker.pipeline import outbound_actors

    def busy_push(ctx, user, *, mode):
        raise PushBusy(f"a push to {user} is running")

    monkeypatch.setattr(outbound_actors, "get_outbound_context", object)
    monkeypatch.setattr(outbound_actors, "push", busy_push)
    caplog.set_level(logging.INFO, logger="packetworker")
    delivery(0)

    with pytest.raises(dramatiq.Retry):
        outbound_actors.push_user.fn("rep-1", "incremental")

    [line] = _warnings(caplog)
    assert line.startswith("Transient failure, retry 1 of ")
    assert line.endswith("PushBusy: a push to rep-1 is running")
    assert [r for r in caplog.records if r.exc_info] == []
