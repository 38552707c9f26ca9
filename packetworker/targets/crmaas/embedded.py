"""The CRM as a Service emulator as the crmaas target's embedded default (no `crmaas_url`)."""

from __future__ import annotations

from packetworker.sandbox.crmaas import CrmaasEmulator
from packetworker.targets.crm_embedded import CREDENTIALS, SAMPLE_CUSTOMER, quiet_server_logs


def seed_samples(emulator: CrmaasEmulator) -> None:
    """The organization the samples' visits and orders name (and the linked contact's)."""
    emulator.seed(
        "organizations",
        name=SAMPLE_CUSTOMER["name"],
        address=SAMPLE_CUSTOMER["city"],
        customFields={"customer_number": SAMPLE_CUSTOMER["number"]},
    )


def start_embedded() -> CrmaasEmulator:
    """A running, seeded emulator (stop it with `__exit__`)."""
    emulator = CrmaasEmulator(
        primary_key=CREDENTIALS.primary_key, secondary_key=CREDENTIALS.secondary_key
    )
    quiet_server_logs()
    emulator.__enter__()
    seed_samples(emulator)
    return emulator
