"""The `crmaas-emulator` target: the crmaas target against a CRM as a Service emulator."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from packetworker.sandbox.crmaas import CrmaasEmulator
from packetworker.sandbox.targets.crm import CREDENTIALS, SAMPLE_CUSTOMER, quiet_server_logs
from packetworker.sandbox.targets.emulated import start_emulated
from packetworker.settings import Settings
from packetworker.targets.crm.options import crm_options
from packetworker.targets.crmaas.client import CrmaasClient
from packetworker.targets.crmaas.target import CrmaasTarget

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
        logger.info("crmaas-emulator: CRM as a Service emulator at %s", emulator.url)
        client = CrmaasClient(
            emulator.url,
            primary_key=emulator.keys["primary"],
            secondary_key=emulator.keys["secondary"],
        )
        return CrmaasTarget(client, on_close=stop, **options)

    return start_emulated(emulator, connect)


def target_from_settings(settings: Settings) -> CrmaasTarget:
    """The target on a fresh emulator, with the mapping options the settings give."""
    return embedded_target(**crm_options(settings, settings.crmaas_mapping))
