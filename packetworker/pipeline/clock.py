"""The `clock` process: enqueues a `poll` per app area every `dm_poll_interval` seconds, and
the outbound jobs per user (incremental pushes every `outbound_interval`, a complete push on
`outbound_complete_cron`, a stock refresh every `outbound_stock_interval`), webhook renewals
and fallback polls.

Dramatiq has no scheduler; its docs recommend APScheduler in a separate process that only
enqueues. Run exactly one clock: two would double the polls (harmless thanks to the poll lock,
but wasteful). A failed publish (Redis away) is logged and the next tick tries again.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from types import FrameType

from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from packetworker.logs import bind, setup_logging
from packetworker.pipeline.broker import secrets_of
from packetworker.settings import Settings, get_settings

logger = logging.getLogger(__name__)


def app_areas(settings: Settings) -> list[str]:
    """The app areas to poll: `dm_app_area`, which may list several separated by commas."""
    return [area.strip() for area in settings.dm_app_area.split(",") if area.strip()]


def send_poll(app_area: str, *, send: Callable[[str], None]) -> bool:
    """One tick for one app area. Never raises: a missed tick is retried by the next one."""
    try:
        send(app_area)
    except Exception as exc:
        bind(logger, app_area=app_area).warning("Could not enqueue a poll: %s", exc)
        return False
    return True


@dataclass(frozen=True)
class OutboundSends:
    """How the clock enqueues outbound work (the outbound actors' `send`s by default)."""

    push: Callable[[str, str], None]
    renew: Callable[[], None]
    poll_changes: Callable[[str], None]

    @classmethod
    def actors(cls) -> OutboundSends:
        from packetworker.pipeline import outbound_actors as a

        return cls(
            push=a.enqueue_push, renew=a.enqueue_renewal, poll_changes=a.enqueue_poll_changes
        )


def send_outbound(what: str, send: Callable[..., None], *args: str) -> bool:
    """One outbound tick. Never raises, like `send_poll`."""
    try:
        send(*args)
    except Exception as exc:
        bind(logger, job=what).warning("Could not enqueue %s: %s", what, exc)
        return False
    return True


def complete_trigger(settings: Settings) -> CronTrigger | None:
    """The complete-push schedule (UTC), None when `outbound_complete_cron` is empty."""
    text = settings.outbound_complete_cron.strip()
    if not text:
        return None
    try:
        return CronTrigger.from_crontab(text, timezone="UTC")
    except ValueError as exc:
        raise ValueError(f"OUTBOUND_COMPLETE_CRON {text!r} is not a crontab line: {exc}") from None


def add_outbound_jobs(
    scheduler: BlockingScheduler, settings: Settings, sends: OutboundSends
) -> None:
    """Per outbound user: incremental pushes, a scheduled complete push and a stock refresh;
    subscription checks when a webhook URL is set, and fallback polls of document resources
    (no-ops while their webhook works and has no gap to catch up)."""
    from packetworker.outbound.context import parse_users, split_list
    from packetworker.outbound.mapping import load_mapping

    def every(seconds: float, job_id: str, *args: object) -> None:
        scheduler.add_job(
            send_outbound,
            IntervalTrigger(seconds=seconds),
            args=args,
            id=job_id,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=max(1, int(seconds)),
            next_run_time=datetime.now(UTC),
        )

    nightly = complete_trigger(settings)
    for user in parse_users(settings.outbound_users):  # user@COMPANY: the push finds it
        # Incremental: the first push to a user (no watermark yet) is complete by itself.
        every(settings.outbound_interval, f"push:{user}", "push", sends.push, user, "incremental")
        if nightly is not None:
            # Complete: everything again, and deletions found by comparing key sets.
            scheduler.add_job(
                send_outbound,
                nightly,
                args=("complete push", sends.push, user, "complete"),
                id=f"push-complete:{user}",
                max_instances=1,
                coalesce=True,
                misfire_grace_time=3600,
            )
        if settings.outbound_stock_interval > 0:
            every(
                settings.outbound_stock_interval,
                f"push-stock:{user}",
                "stock refresh",
                sends.push,
                user,
                "stock",
            )
    if settings.webhook_url:
        every(settings.webhook_check_interval, "webhooks:renew", "renewal", sends.renew)
        documents = load_mapping(settings.outbound_mapping).documents
        for resource in split_list(settings.webhook_resources):
            if resource in documents:
                every(
                    settings.outbound_poll_interval,
                    f"poll-changes:{resource}",
                    "poll",
                    sends.poll_changes,
                    resource,
                )


def make_scheduler(
    settings: Settings,
    *,
    send: Callable[[str], None] | None = None,
    outbound: OutboundSends | None = None,
) -> BlockingScheduler:
    """A scheduler with one poll job per app area, plus outbound jobs (not started).

    `send` enqueues one poll; it defaults to the `poll` actor's `send`. `outbound` enqueues
    outbound work; it defaults to the outbound actors when outbound users or a webhook URL
    are configured.
    """
    if send is None:
        from packetworker.pipeline.actors import enqueue_poll

        send = enqueue_poll
    scheduler = BlockingScheduler(timezone="UTC")
    for app_area in app_areas(settings):
        scheduler.add_job(
            send_poll,
            IntervalTrigger(seconds=settings.dm_poll_interval, jitter=settings.dm_poll_jitter),
            args=(app_area,),
            kwargs={"send": send},
            id=f"poll:{app_area}",
            # A slow publish must not stack up runs, and ticks missed while the process was
            # busy collapse into one poll: a poll always lists everything pending.
            max_instances=1,
            coalesce=True,
            misfire_grace_time=max(1, int(settings.dm_poll_interval)),
            # Poll at once instead of one interval after start: a restarted clock catches up.
            next_run_time=datetime.now(UTC),
        )
    if settings.outbound_users or settings.webhook_url:
        add_outbound_jobs(scheduler, settings, outbound or OutboundSends.actors())
    return scheduler


def quiet_scheduler(level: str) -> None:
    """APScheduler logs two INFO lines per job run ("Running job …", "… executed
    successfully"): at a 30 s tick that buries everything else. Its loggers speak from
    WARNING up (a missed or failed run), or at DEBUG when LOG_LEVEL=DEBUG asks for it all."""
    debug = logging.getLevelName(level.upper()) == logging.DEBUG
    logging.getLogger("apscheduler").setLevel(logging.DEBUG if debug else logging.WARNING)


def run_clock(settings: Settings | None = None) -> None:
    """Run the clock until SIGTERM or SIGINT; polls every app area once at start."""
    settings = settings or get_settings()
    setup_logging(level=settings.log_level, fmt=settings.log_format, secrets=secrets_of(settings))
    quiet_scheduler(settings.log_level)
    areas = app_areas(settings)
    if not areas and not (settings.outbound_users or settings.webhook_url):
        raise ValueError("No app area to poll: set DM_APP_AREA.")
    scheduler = make_scheduler(settings)

    def stop(signum: int, frame: FrameType | None) -> None:
        logger.info("Clock stopping on %s.", signal.Signals(signum).name)
        # wait=False: a publish in flight is a short Redis call; a lost one is re-sent next tick.
        scheduler.shutdown(wait=False)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    logger.info("Clock polling %s every %.1fs.", ", ".join(areas), settings.dm_poll_interval)
    scheduler.start()
    logger.info("Clock stopped.")
