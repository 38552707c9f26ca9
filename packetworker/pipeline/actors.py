"""The Dramatiq actors. Thin: each calls a plain function of the pipeline core.

- `poll(app_area)` lists the portal queue (one poll at a time per app area) and fans out the
  new or stalled packets in `process_packets` messages of up to `apply_group_size` ids (one
  `process_packet` message when there is one). Messages carry ids, never links or bodies.
- `process_packets(app_area, packet_ids)` processes a group: each packet is prepared and
  settled on its own, their records applied by one target call. A packet of the group that
  another worker holds, or that must be retried, is sent again alone as `process_packet`.
- `process_packet(app_area, packet_id)` downloads, archives, applies and queues the ack;
  transient errors are retried with backoff, permanent ones are quarantined by the core. A
  packet another worker holds comes back later too, logged as one INFO line, not an error.
  A transient failure (portal or target away, a write in doubt) is one WARNING line saying
  why and when it is retried; only a bug's exception reaches dramatiq's ERROR and traceback.
- `retry_quarantined(packet_id)` re-drives a quarantined packet (what `dlq retry` asks for).
- `wake_held(customer_number)` (a plain function, not an actor) re-runs at once the packets
  held for a BC customer; the outbound side calls it when a `customers` notification or poll
  shows that customer changed. Held packets are also retried by every poll on a schedule.

Importing this module sets the global broker from settings if none is set yet, because actors
bind to the global broker when they are declared.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import dramatiq
from dramatiq.common import compute_backoff
from dramatiq.middleware import CurrentMessage, Middleware

from packetworker.logs import bind
from packetworker.metrics import FLUSH_SECONDS, PeriodicFlush, RedisMetrics
from packetworker.pipeline import holds
from packetworker.pipeline.broker import (
    PACKETS_QUEUE,
    POLL_QUEUE,
    make_retry_when,
    retryable,
    secrets_of,
    setup_broker,
)
from packetworker.pipeline.context import PipelineContext
from packetworker.pipeline.operations import dlq_retry
from packetworker.pipeline.polling import poll_once
from packetworker.pipeline.processing import process_packet as process
from packetworker.pipeline.processing import process_packets as process_group
from packetworker.pipeline.results import BUSY, RetryLater
from packetworker.redact import redact_text
from packetworker.settings import get_settings
from packetworker.targets.bc import BCClient

logger = logging.getLogger(__name__)

settings = get_settings()
broker = setup_broker(settings)


class _ContextHolder(Middleware):
    """One `PipelineContext` per worker process, built on first use and closed on shutdown.

    Built lazily (not at import) because the dramatiq CLI imports this module in each forked
    worker process, and HTTP/Redis connections must not be shared across a fork. On shutdown,
    after dramatiq's grace for in-flight work, the locks that work still holds are released:
    the work dies with the process and its packets resume elsewhere (their ledger state says
    where), and the next poll need not wait for the poll lock to expire.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._context: PipelineContext | None = None

    def get(self) -> PipelineContext:
        with self._lock:
            if self._context is None:
                self._context = PipelineContext.from_settings(settings)
            return self._context

    def current(self) -> PipelineContext | None:
        """The context if it is built, without building it."""
        with self._lock:
            return self._context

    def close(self) -> None:
        with self._lock:
            context, self._context = self._context, None
        if context is None:
            return
        released = context.ledger.locks.release_all()
        if released:
            logger.warning(
                "Stopped with work still in flight after the shutdown grace; released its "
                "locks so other workers take over: %s",
                ", ".join(released),
            )
        context.close()

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self.close()


_context = _ContextHolder()
broker.add_middleware(_context)


class FlushMetrics(Middleware):
    """Adds this process's counts to the shared ones in Redis, where the `web` process reads
    them for /metrics (`packetworker.metrics`): every `interval` seconds from a thread, and
    once more at shutdown before the context closes, rather than after every message."""

    def __init__(self, flush: Callable[[], None], *, interval: float = FLUSH_SECONDS) -> None:
        self._periodic = PeriodicFlush(flush, interval=interval)

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self._periodic.start()

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        # Added after `_ContextHolder`, so called before it (dramatiq runs `after_` hooks in
        # reverse order): the counts of the last messages go out on the context's client.
        self._periodic.stop()


def _flush_metrics() -> None:
    """This process's counts into Redis, on the context's client (none before it exists)."""
    context = _context.current()
    client = getattr(context.ledger, "client", None) if context is not None else None
    if client is not None:
        RedisMetrics(client, settings.ledger_namespace).flush()


broker.add_middleware(FlushMetrics(_flush_metrics))


def get_context() -> PipelineContext:
    """This process's pipeline context (thread-safe, built once)."""
    return _context.get()


def _never(retries: int, exception: BaseException) -> bool:
    return False


@dramatiq.actor(
    queue_name=POLL_QUEUE,
    # Below the lock's TTL, so the lock cannot expire while a poll still holds it.
    time_limit=settings.poll_lock_ttl_ms * 4 // 5,
    # A poll that waited this long is stale; the clock has sent fresher ones.
    max_age=settings.poll_lock_ttl_ms,
    # The clock sends the next poll anyway; retried polls would only pile up.
    retry_when=_never,
)
def poll(app_area: str) -> None:
    """List `app_area`'s pending packets and enqueue the ones that need processing."""
    log = bind(logger, app_area=app_area)
    context = get_context()
    # One poll per app area across all workers; released on shutdown if a poll is cut short.
    lock = context.ledger.locks.try_lock(f"poll:{app_area}", ttl=settings.poll_lock_ttl_ms / 1000)
    with lock as acquired:
        if not acquired:
            log.info("Another poll of this app area is running; skipped.")
            return
        try:
            result = poll_once(context, app_area)
        except Exception as exc:
            # Not retried and not dead-lettered: a poll carries no data, and the clock sends
            # the next one; a dead letter per tick would only bury the useful ones.
            if retryable(exc):
                log.warning("Poll failed, the next tick retries: %s", exc)
                _note_poll(context, app_area, f"failed: {exc}")
            else:
                log.exception("Poll failed, the next tick retries.")
                _note_poll(context, app_area, f"failed: {type(exc).__name__}: {exc}")
            return
        _note_poll(
            context,
            app_area,
            f"{result.listed} listed, {len(result.new_ids)} new, "
            f"{len(result.requeue_ids)} requeued, acked {sum(result.acked.values())}",
        )
        packet_ids = [*result.new_ids, *result.requeue_ids]
        enqueue_group(app_area, packet_ids)
        log.info(
            "Poll cycle: enqueued %d packets (%d new, %d stalled).",
            len(packet_ids),
            len(result.new_ids),
            len(result.requeue_ids),
        )


@dramatiq.actor(
    queue_name=PACKETS_QUEUE,
    time_limit=settings.process_time_limit_ms,
    # Older messages die; the packet is still pending in the portal and gets re-listed.
    max_age=settings.process_max_age_ms,
    retry_when=make_retry_when(settings.process_max_retries),
)
def process_packet(app_area: str, packet_id: str) -> None:
    """Download, archive and apply one packet; its ack is sent with the next poll."""
    log = bind(logger, app_area=app_area, packet_id=packet_id)
    with transient_as_warning(log):
        result = process(get_context(), app_area, packet_id)
    if result.error == BUSY:
        _retry_busy(log)
        return
    if result.error:
        log.info("Packet %s: %s", result.state, result.error, extra={"state": result.state})
    else:
        log.info("Packet %s.", result.state, extra={"state": result.state})


@dramatiq.actor(
    queue_name=PACKETS_QUEUE,
    time_limit=settings.process_time_limit_ms,
    max_age=settings.process_max_age_ms,
    # Each packet's failure is retried alone (below); a retry of the whole message is for
    # failures of the group itself (Redis unavailable), and finished packets are no-ops.
    retry_when=make_retry_when(settings.process_max_retries),
)
def process_packets(app_area: str, packet_ids: list[str]) -> None:
    """Process a group of `app_area`'s packets, their records applied by one target call;
    each is acknowledged, held or quarantined on its own."""
    with transient_as_warning(bind(logger, app_area=app_area, group_size=len(packet_ids))):
        results = process_group(get_context(), app_area, packet_ids)
    for packet_id, result in zip(packet_ids, results, strict=True):
        log = bind(logger, app_area=app_area, packet_id=packet_id)
        if isinstance(result, Exception):
            _retry_alone(log, app_area, packet_id, result)
        elif result.error == BUSY:
            log.info("Another worker holds the packet; it is retried on its own.")
            _retry_alone(log, app_area, packet_id, None)
        elif result.error:
            log.info("Packet %s: %s", result.state, result.error, extra={"state": result.state})
        else:
            log.info("Packet %s.", result.state, extra={"state": result.state})


def _retry_alone(
    log: logging.LoggerAdapter, app_area: str, packet_id: str, error: Exception | None
) -> None:
    """Send one packet of a group again as its own `process_packet` message: after the delay
    a `RetryLater` asks for, else after the first retry backoff."""
    delay = settings.retry_min_backoff_ms
    if isinstance(error, dramatiq.Retry) and error.delay is not None:
        delay = error.delay
    elif error is not None and not retryable(error):
        log.error("Packet failed in its group, retried on its own: %r", error, exc_info=error)
    elif error is not None:
        log.warning(
            "Transient failure, retried on its own in %.1fs: %s", delay / 1000, _reason(error)
        )
    process_packet.send_with_options(args=(app_area, packet_id), delay=delay)


@contextmanager
def transient_as_warning(log: logging.LoggerAdapter) -> Iterator[None]:
    """Turn a transient failure inside the block into one WARNING line (the redacted reason,
    and when the message is retried) and a `dramatiq.Retry`, which dramatiq's `Retries`
    middleware counts and re-sends as it would the error itself, but without logging an
    ERROR with a traceback. Anything else (a bug) propagates untouched. Inbound and outbound
    actors both use it."""
    try:
        yield
    except Exception as exc:
        if not retryable(exc):
            raise
        raise _retry_later(log, exc) from exc


def _retry_later(log: logging.LoggerAdapter, exc: Exception) -> dramatiq.Retry:
    """Log `exc` as one warning and return the `dramatiq.Retry` to raise for it: the delay a
    `RetryLater` asks for, else the backoff `Retries` would have picked (computed here so the
    line can say it)."""
    message = CurrentMessage.get_current_message()
    retries = message.options.get("retries", 0) if message is not None else 0
    reason = _reason(exc)
    asked = exc.delay if isinstance(exc, dramatiq.Retry) else None
    _, backoff = compute_backoff(
        retries, factor=settings.retry_min_backoff_ms, max_backoff=settings.retry_max_backoff_ms
    )
    delay = backoff if asked is None else asked
    if retries >= settings.process_max_retries:
        log.warning(
            "Transient failure, no retries left after %d; a later poll sends it again: %s",
            retries,
            reason,
        )
    else:
        log.warning(
            "Transient failure, retry %d of %d in %.1fs: %s",
            retries + 1,
            settings.process_max_retries,
            delay / 1000,
            reason,
        )
    return exc if asked is not None else RetryLater(reason, seconds=delay / 1000)


def _reason(exc: BaseException) -> str:
    """An exception as one line without secrets, for a log line."""
    return redact_text(f"{type(exc).__name__}: {exc}", *secrets_of(settings))


def _note_poll(context: PipelineContext, app_area: str, result: str) -> None:
    """Keep the poll's result for the operator (`status`, the console); never fails a poll."""
    try:
        secret = settings.dm_api_key.get_secret_value()
        context.ledger.note_poll(app_area, redact_text(result, secret))
    except Exception as exc:
        logger.warning("Could not record the poll's result: %s", exc)


def _retry_busy(log: logging.LoggerAdapter) -> None:
    """Send the current message again later, with the retry backoff, without an error.

    Another worker holds the packet: usually it is processing it right now, but it may have
    died holding the lock, so the message comes back once the lock may have expired rather
    than wait for the stale-packet sweep. Raising would make dramatiq log an ERROR with a
    traceback for what is routine."""
    message = CurrentMessage.get_current_message()
    assert message is not None, "only called from inside an actor"
    retries = message.options.get("retries", 0)
    if retries >= settings.process_max_retries:
        log.info(
            "Another worker still holds the packet after %d retries; left to it (a stalled "
            "packet is re-sent by the next poll).",
            retries,
        )
        return
    _, delay = compute_backoff(
        retries, factor=settings.retry_min_backoff_ms, max_backoff=settings.retry_max_backoff_ms
    )
    message.options["retries"] = retries + 1
    broker.enqueue(message, delay=delay)
    log.info("Another worker holds the packet; retrying in %.1fs.", delay / 1000)


@dramatiq.actor(queue_name=PACKETS_QUEUE, retry_when=make_retry_when(settings.process_max_retries))
def retry_quarantined(packet_id: str) -> None:
    """Re-drive a quarantined packet through `process_packet` (the `dlq retry` command)."""
    log = bind(logger, packet_id=packet_id)
    log.info("Re-driving quarantined packet.")
    with transient_as_warning(log):
        dlq_retry(get_context(), packet_id, enqueue=enqueue_packet)


def enqueue_group(app_area: str, packet_ids: list[str]) -> None:
    """Queue packets for processing in groups of `apply_group_size`."""
    size = settings.apply_group_size
    for start in range(0, len(packet_ids), size):
        group = packet_ids[start : start + size]
        if len(group) == 1:
            enqueue_packet(app_area, group[0])
        else:
            process_packets.send(app_area, group)


def enqueue_packet(app_area: str, packet_id: str) -> None:
    """Queue one packet for processing (the `enqueue` callable the core expects)."""
    process_packet.send(app_area, packet_id)


def wake_held(customer_number: str | None, app_area: str | None = None) -> list[str]:
    """Enqueue now every packet held for BC customer `customer_number` (None: for any
    customer), in `app_area` or in every app area. Returns the ids woken; a customer nothing
    waits on costs a ledger read."""
    return holds.wake_held_customer(
        get_context(), customer_number, enqueue=enqueue_packet, app_area=app_area
    )


def wake_for_customer_change(bc: BCClient, customer_id: str | None) -> list[str]:
    """What a `customers` notification does to held packets (`holds.wake_for_customer_change`),
    in a worker process."""
    return holds.wake_for_customer_change(get_context(), bc, customer_id, enqueue=enqueue_packet)


def enqueue_poll(app_area: str) -> None:
    """Queue one poll of `app_area` (what the clock sends)."""
    poll.send(app_area)
