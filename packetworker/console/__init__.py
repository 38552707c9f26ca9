"""The operator's web console, served by the `web` process under `/console`.

Server-rendered HTML without JavaScript, behind a login (`auth.Gate`): an overview per app
area, the packets list with search, each packet's story, and the quarantine and held lists
with a re-drive button. Everything shown comes from `pipeline.operations`, the same functions
`status`, `dlq list` and `trace` print, so the console and the command line agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from packetworker.console.app import Console
from packetworker.console.auth import Gate

if TYPE_CHECKING:
    import redis

    from packetworker.pipeline.archive import Archive
    from packetworker.pipeline.ledger import Ledger
    from packetworker.settings import Settings


@dataclass
class ConsoleViews:
    """What the console reads: no target is built in the `web` process."""

    settings: Settings
    ledger: Ledger
    archive: Archive


def gate_from_settings(settings: Settings) -> Gate:
    return Gate(
        token=settings.web_console_token.get_secret_value(),
        user=settings.web_console_user,
        password=settings.web_console_password.get_secret_value(),
    )


def console_from_settings(settings: Settings, client: redis.Redis) -> Console | None:
    """The production console over Redis and the archive; None when no credentials are set
    (the console is off)."""
    from packetworker.outbound.state import RedisOutboundState
    from packetworker.pipeline.actors import enqueue_packet
    from packetworker.pipeline.archive import open_archive
    from packetworker.pipeline.ledger import RedisLedger

    gate = gate_from_settings(settings)
    if not gate.enabled:
        return None
    ledger = RedisLedger(
        client, settings.ledger_namespace, retention=settings.ledger_retention_days * 86400
    )
    archive = open_archive(settings.archive_url, s3_endpoint_url=settings.s3_endpoint_url)
    outbound = RedisOutboundState(client, settings.ledger_namespace)
    return Console(
        gate=gate,
        views=ConsoleViews(settings, ledger, archive),
        enqueue=enqueue_packet,
        outbound=outbound.counters,
    )


__all__ = ["Console", "ConsoleViews", "Gate", "console_from_settings", "gate_from_settings"]
