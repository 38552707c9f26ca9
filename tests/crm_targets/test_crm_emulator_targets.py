"""`<crm>-emulator` starts the CRM's emulator in process, seeded with what the samples
reference, and `close()` stops it; the CRM target itself refuses without its settings."""

from __future__ import annotations

import httpx
import pytest

from packetworker.settings import Settings
from packetworker.targets import ApplyContext, Outcome, get_target
from tests.crm_targets.harness import CONTACTS, CRMS, SAMPLES, read_packet


def base_url(target) -> str:
    client = target.client
    return str(
        getattr(client, "url", None) or getattr(client, "base", None) or client._http.base_url
    )


@pytest.mark.parametrize("name", CRMS)
def test_the_samples_apply_to_the_crms_emulator_target(name: str) -> None:
    settings = Settings(_env_file=None, dataverse_url="", crmaas_url="", dynamics_portal_url="")
    target = get_target(f"{name}-emulator", settings)
    try:
        outcomes = []
        for path in (SAMPLES / "sales-order.xml", CONTACTS / "4-linked-company.xml"):
            header, records = read_packet(path)
            ctx = ApplyContext("TEST", path.stem, header=header)
            outcomes += target.apply(records, ctx=ctx)

        assert [o for o in outcomes if o.outcome is Outcome.FAILED] == []
        assert any(line.startswith("contacts ") for line in target.describe())
    finally:
        target.close()


@pytest.mark.parametrize("name", CRMS)
def test_closing_the_emulator_target_stops_its_emulator(name: str) -> None:
    settings = Settings(_env_file=None, dataverse_url="", crmaas_url="", dynamics_portal_url="")
    target = get_target(f"{name}-emulator", settings)
    url = base_url(target)

    target.close()

    with pytest.raises(httpx.ConnectError):
        httpx.get(url, timeout=2)
