"""`PipelineContext`: the parts one worker process composes — settings, ledger, archive,
target, portal clients and a spool directory — built once from `Settings`."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping
from pathlib import Path

import redis

from packetworker.outbound.context import OutboundContext, check_bc
from packetworker.outbound.state import RedisOutboundState
from packetworker.pipeline.archive import Archive, open_archive
from packetworker.pipeline.ledger import Ledger, MemoryLedger, RedisLedger
from packetworker.pipeline.limits import SharedBudgets
from packetworker.portal import PortalClient
from packetworker.redis_client import redis_for
from packetworker.request_budget import RequestLimiter, using_limiters
from packetworker.settings import Settings, get_settings
from packetworker.targets import Target, UnknownTarget, check_target, get_target

logger = logging.getLogger(__name__)


def portal_factory_for(
    settings: Settings, *, budgets: Mapping[str, RequestLimiter] | None = None
) -> Callable[[str], PortalClient]:
    """app area -> client, one cached client (one connection pool) per app area, spending
    `budgets["portal:<app area>"]` when given (else a budget of its own)."""
    clients: dict[str, PortalClient] = {}
    lock = threading.Lock()

    def factory(app_area: str) -> PortalClient:
        with lock:
            client = clients.get(app_area)
            if client is None:
                with using_limiters(budgets or {}):
                    client = PortalClient.from_settings(settings, app_area=app_area)
                clients[app_area] = client
            return client

    factory.clients = clients  # type: ignore[attr-defined] - so `close()` can reach them
    return factory


def outbound_context(settings: Settings) -> OutboundContext:
    """The outbound side's context for the deployment's processes (the outbound actors that
    the clock and `web` enqueue, `push-outbound`, `subscriptions`): its BC and portal clients
    spend the request budgets every process shares through Redis (`pipeline.limits`), as
    `PipelineContext.from_settings`'s do, so inbound and outbound work together stay within
    one account's limits."""
    client = redis_for(settings)
    return OutboundContext.from_settings(
        settings,
        state=RedisOutboundState(client, settings.ledger_namespace),
        budgets=SharedBudgets(client, settings),
    )


def check_configured(settings: Settings, *, allow_unknown_target: bool = False) -> None:
    """Raise `NotConfigured` when a long-running process (worker, clock) would lack settings
    for its work: the target's, or Business Central's when outbound work is configured.

    `allow_unknown_target`: a name not registered yet passes (a module the worker imports
    later may register it; `get_target` still refuses it when the context is built).
    """
    try:
        check_target(settings.target, settings)
    except UnknownTarget:
        if not allow_unknown_target:
            raise
    if settings.outbound_users or settings.webhook_url:
        check_bc(settings)


def _no_portal(app_area: str) -> PortalClient:
    raise RuntimeError(f"replay has no portal connection (asked for app area {app_area!r})")


class PipelineContext:
    """The parts one process composes. The target is built on first use (`target`), so
    commands that never apply a record (`status`, `dlq list`, `replay --queue`) need no target
    settings; `worker` and `clock` check those up front (`check_configured`).

    `target` is a built target, or a zero-argument factory that builds it once."""

    def __init__(
        self,
        *,
        settings: Settings,
        ledger: Ledger,
        archive: Archive,
        target: Target | Callable[[], Target],
        portal_factory: Callable[[str], PortalClient],
        spool_dir: Path,
    ) -> None:
        self.settings = settings
        self.ledger = ledger
        self.archive = archive
        self.portal_factory = portal_factory
        self.spool_dir = spool_dir
        self._target: Target | None = None
        self._make_target: Callable[[], Target] | None = None
        if isinstance(target, Target):
            self._target = target
        else:
            self._make_target = target
        self._target_lock = threading.Lock()
        self._closed = False
        self.spool_dir.mkdir(parents=True, exist_ok=True)

    @property
    def target(self) -> Target:
        """The target, built on first use (once, whichever thread asks first)."""
        if self._target is None:
            with self._target_lock:
                if self._target is None:
                    assert self._make_target is not None
                    self._target = self._make_target()
        return self._target

    @target.setter
    def target(self, target: Target) -> None:
        self._target = target

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> PipelineContext:
        """The production composition: Redis ledger, configured archive and target, and the
        request budgets every worker process shares through Redis (`pipeline.limits`)."""
        settings = settings or get_settings()
        client = redis_for(settings)
        ledger = RedisLedger(
            client, settings.ledger_namespace, retention=settings.ledger_retention_days * 86400
        )
        budgets = SharedBudgets(client, settings)
        return cls(
            settings=settings,
            ledger=ledger,
            archive=open_archive(settings.archive_url, s3_endpoint_url=settings.s3_endpoint_url),
            target=lambda: _target_on(budgets, settings),
            portal_factory=portal_factory_for(settings, budgets=budgets),
            spool_dir=settings.spool_dir,
        )

    @classmethod
    def for_replay(cls, settings: Settings | None = None) -> PipelineContext:
        """Replay needs no services: Redis only when `REDIS_URL` is set and answers,
        otherwise an in-memory ledger; the configured archive (default `./var/archive`)
        and target; no portal."""
        settings = settings or Settings()
        retention = settings.ledger_retention_days * 86400
        ledger: Ledger = MemoryLedger(retention=retention)
        if os.environ.get("REDIS_URL"):
            client = redis_for(settings, connect_timeout=2)
            try:
                client.ping()
                ledger = RedisLedger(client, settings.ledger_namespace, retention=retention)
            except redis.RedisError as exc:
                logger.warning("Redis not reachable (%s); replaying with an in-memory ledger", exc)
                client.close()
        return cls(
            settings=settings,
            ledger=ledger,
            archive=open_archive(settings.archive_url, s3_endpoint_url=settings.s3_endpoint_url),
            target=get_target(settings.target, settings),
            portal_factory=_no_portal,
            spool_dir=settings.spool_dir,
        )

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for client in getattr(self.portal_factory, "clients", {}).values():
            client.close()
        if self._target is not None:
            self._target.close()
        self.archive.close()
        self.ledger.close()


def _target_on(budgets: SharedBudgets, settings: Settings) -> Target:
    """The configured target, its clients on the request budgets every process shares."""
    with using_limiters(budgets):
        return get_target(settings.target, settings)
