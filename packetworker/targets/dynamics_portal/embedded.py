"""The portal proxy emulator as the dynamics-portal target's embedded default (no
`dynamics_portal_url`), with the target's record index seeded alike."""

from __future__ import annotations

import uuid
from typing import Any

from packetworker.sandbox.dynamics_portal import DynamicsPortalEmulator
from packetworker.targets.crm_embedded import (
    CREDENTIALS,
    SAMPLE_CUSTOMER,
    SAMPLE_ITEMS,
    SAMPLE_UNITS,
    quiet_server_logs,
)
from packetworker.targets.dynamics_portal.target import RecordIndex, endpoint


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
    seed(
        emulator,
        index,
        "accounts",
        accountnumber=SAMPLE_CUSTOMER["number"],
        name=SAMPLE_CUSTOMER["name"],
    )
    for number, name in SAMPLE_ITEMS.items():
        seed(emulator, index, "products", productnumber=number, name=name)
    for unit in SAMPLE_UNITS:
        seed(emulator, index, "uoms", name=unit)


def start_embedded() -> tuple[DynamicsPortalEmulator, RecordIndex]:
    """A running, seeded emulator (stop it with `__exit__`) and the matching index."""
    emulator = DynamicsPortalEmulator(clients={CREDENTIALS.client_id: CREDENTIALS.portal_scope})
    quiet_server_logs()
    emulator.__enter__()
    index = RecordIndex()
    seed_samples(emulator, index)
    return emulator, index
