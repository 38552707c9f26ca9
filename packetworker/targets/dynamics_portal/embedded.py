"""The portal proxy emulator as the dynamics-portal target's embedded default (no
`dynamics_portal_url`), with the target's record index seeded alike."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any

from packetworker.sandbox.dynamics_portal import DynamicsPortalEmulator
from packetworker.targets.crm_embedded import (
    CREDENTIALS,
    dynamics_sample_records,
    quiet_server_logs,
)
from packetworker.targets.dynamics_portal.client import DynamicsPortalClient
from packetworker.targets.dynamics_portal.target import DynamicsPortalTarget, RecordIndex, endpoint
from packetworker.targets.emulated import start_emulated

logger = logging.getLogger(__name__)


def seed(
    emulator: DynamicsPortalEmulator, index: RecordIndex, entity_set: str, **columns: Any
) -> str:
    """Put a record in Dynamics (the emulator's store) and in the index; returns its id."""
    record_id = str(uuid.uuid4())
    emulator.records[record_id] = {"endpoint": endpoint(entity_set), "fields": dict(columns)}
    index.remember(entity_set, record_id, columns)
    return record_id


def seed_samples(emulator: DynamicsPortalEmulator, index: RecordIndex) -> None:
    """What the samples reference without creating it."""
    for entity_set, columns in dynamics_sample_records(city=False):
        seed(emulator, index, entity_set, **columns)


def embedded_target(**options: Any) -> DynamicsPortalTarget:
    """A target on a running emulator, both seeded alike; its `close()` stops the emulator."""
    emulator = DynamicsPortalEmulator(clients={CREDENTIALS.client_id: CREDENTIALS.portal_scope})
    quiet_server_logs()

    def connect(emulator: DynamicsPortalEmulator, stop: Callable[[], None]) -> DynamicsPortalTarget:
        index = RecordIndex()
        seed_samples(emulator, index)
        logger.info("no DYNAMICS_PORTAL_URL: using an embedded portal proxy at %s", emulator.url)
        client = DynamicsPortalClient(
            emulator.url, client_id=CREDENTIALS.client_id, scope=CREDENTIALS.portal_scope
        )
        return DynamicsPortalTarget(client, index=index, on_close=stop, **options)

    return start_emulated(emulator, connect)
