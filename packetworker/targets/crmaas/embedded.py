"""The CRM as a Service emulator as the crmaas target's embedded default (no `crmaas_url`)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from packetworker.sandbox.crmaas import CrmaasEmulator
from packetworker.targets.crm_embedded import CREDENTIALS, SAMPLE_CUSTOMER, quiet_server_logs
from packetworker.targets.crmaas.client import CrmaasClient
from packetworker.targets.crmaas.target import CrmaasTarget
from packetworker.targets.emulated import start_emulated

logger = logging.getLogger(__name__)


def seed_samples(emulator: CrmaasEmulator) -> None:
    """The organization the samples' visits and orders name (and the linked contact's)."""
    emulator.seed(
        "organizations",
        name=SAMPLE_CUSTOMER["name"],
        address=SAMPLE_CUSTOMER["city"],
        customFields={"customer_number": SAMPLE_CUSTOMER["number"]},
    )


def embedded_target(**options: Any) -> CrmaasTarget:
    """A target on a running, seeded emulator, which its `close()` stops."""
    emulator = CrmaasEmulator(
        primary_key=CREDENTIALS.primary_key, secondary_key=CREDENTIALS.secondary_key
    )
    quiet_server_logs()

    def connect(emulator: CrmaasEmulator, stop: Callable[[], None]) -> CrmaasTarget:
        seed_samples(emulator)
        logger.info(
            "no CRMAAS_URL: using an embedded CRM as a Service emulator at %s", emulator.url
        )
        client = CrmaasClient(
            emulator.url,
            primary_key=emulator.keys["primary"],
            secondary_key=emulator.keys["secondary"],
        )
        return CrmaasTarget(client, on_close=stop, **options)

    return start_emulated(emulator, connect)
