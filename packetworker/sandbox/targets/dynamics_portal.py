"""The `dynamics-portal-emulator` target: the dynamics-portal target against a portal proxy
emulator, with the target's record index seeded alike."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any

from packetworker.sandbox.dynamics_portal import DynamicsPortalEmulator
from packetworker.sandbox.targets.crm import (
    CREDENTIALS,
    dynamics_sample_records,
    quiet_server_logs,
)
from packetworker.sandbox.targets.emulated import start_emulated
from packetworker.settings import Settings
from packetworker.targets.crm.options import crm_options
from packetworker.targets.dynamics_portal.client import DynamicsPortalClient
from packetworker.targets.dynamics_portal.target import DynamicsPortalTarget, RecordIndex, endpoint

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
        logger.info("dynamics-portal-emulator: portal proxy emulator at %s", emulator.url)
        client = DynamicsPortalClient(
            emulator.url, client_id=CREDENTIALS.client_id, scope=CREDENTIALS.portal_scope
        )
        return DynamicsPortalTarget(client, index=index, on_close=stop, **options)

    return start_emulated(emulator, connect)


def target_from_settings(settings: Settings) -> DynamicsPortalTarget:
    """The target on a fresh emulator, with the mapping options the settings give."""
    return embedded_target(**crm_options(settings, settings.dynamics_portal_mapping))
