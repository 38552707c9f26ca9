"""Two sample packets replayed into a Redis ledger: one applied, one quarantined — what the
operator views (console, metrics) are tested on."""

from __future__ import annotations

from pathlib import Path

import redis

from packetworker.pipeline import replay as replaying
from packetworker.pipeline.archive import open_archive
from packetworker.pipeline.context import PipelineContext
from packetworker.pipeline.ledger import RedisLedger
from packetworker.settings import Settings
from packetworker.targets import get_target

SAMPLES = Path(__file__).resolve().parents[2] / "samples"


def replay_two_samples(settings: Settings, client: redis.Redis, namespace: str) -> PipelineContext:
    """A context on `client`'s ledger under `namespace` with `settings.target`, after a sales
    order (applied) and a packet with the wrong root (quarantined) were replayed for `OPS`."""
    ctx = PipelineContext(
        settings=settings,
        ledger=RedisLedger(client, namespace),
        archive=open_archive(settings.archive_url),
        target=get_target(settings.target, settings),
        portal_factory=lambda area: None,
        spool_dir=settings.spool_dir,
    )
    replaying.replay(
        [str(SAMPLES / "sales-order.xml"), str(SAMPLES / "invalid" / "wrong-root.xml")],
        ctx=ctx,
        app_area="OPS",
    )
    return ctx
