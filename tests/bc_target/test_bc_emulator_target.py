"""`bc-emulator` is the bc target against a seeded emulator in process, chosen only by name;
`replay` uses it when no target is set, says so first, and prints what it created there."""

from __future__ import annotations

import httpx
import pytest
from typer.testing import CliRunner

from packetworker.cli import app
from packetworker.sandbox.targets.bc import EmbeddedBCTarget
from packetworker.settings import Settings, get_settings
from packetworker.targets import Outcome, get_target
from packetworker.targets.bc.target import BCTarget

from .conftest import SAMPLES, apply_file

BC_ENV = ("TARGET", "BC_CLIENT_ID", "BC_CLIENT_SECRET", "BC_API_URL", "REDIS_URL")


@pytest.fixture(autouse=True)
def no_bc_credentials(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    for name in BC_ENV:
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_bc_is_the_default_target():
    assert Settings(_env_file=None).target == "bc"


def test_bc_emulator_applies_to_a_seeded_emulator():
    target = get_target("bc-emulator", Settings(_env_file=None))
    try:
        assert isinstance(target, EmbeddedBCTarget)
        outcomes = apply_file(target, SAMPLES / "sales-order.xml")
        assert [o.outcome for o in outcomes].count(Outcome.APPLIED) == 4
        assert [o["externalDocumentNumber"] for o in target.sandbox.store(None, "salesOrders")] == [
            "BSO-000241"
        ]
    finally:
        target.close()


def test_closing_the_emulator_target_stops_its_emulator():
    target = get_target("bc-emulator", Settings(_env_file=None))
    url = target.sandbox.api_url

    target.close()

    with pytest.raises(httpx.ConnectError):
        httpx.get(url, timeout=2)


def test_bc_with_credentials_is_the_real_bc():
    settings = Settings(
        _env_file=None, bc_client_id="app-id", bc_tenant="contoso.com", bc_client_secret="s"
    )

    target = get_target("bc", settings)
    try:
        assert type(target) is BCTarget
        assert target.client.base_url == (
            "https://api.businesscentral.dynamics.com/v2.0/contoso.com/production/api/v2.0"
        )
    finally:
        target.close()


def test_replay_without_a_target_says_first_that_it_uses_the_bc_emulator():
    result = CliRunner().invoke(app, ["replay", str(SAMPLES / "sales-order.xml")])

    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == (
        "target: bc-emulator (embedded Business Central emulator; set TARGET=bc to use a real "
        "tenant)"
    )


def test_replay_with_target_set_uses_it_and_refuses_when_its_settings_are_missing(monkeypatch):
    monkeypatch.setenv("TARGET", "bc")

    result = CliRunner().invoke(app, ["replay", str(SAMPLES / "sales-order.xml")])

    assert result.exit_code != 0
    assert "BC_CLIENT_ID" in str(result.exception)


def test_replay_of_the_samples_prints_the_documents_customers_and_payments_created():
    result = CliRunner().invoke(
        app,
        [
            "replay",
            str(SAMPLES / "sales-order.xml"),
            str(SAMPLES / "return-order.json"),
            str(SAMPLES / "payment.xml"),
            str(SAMPLES / "new-customer.xml"),
        ],
        env={"COLUMNS": "200"},
    )

    assert result.exit_code == 0, result.output
    created = result.output.split("Business Central: ", 1)[1].splitlines()
    assert created == [
        "6 entities created in the embedded emulator (set TARGET=bc to use a real tenant):",
        "  salesOrders S-ORD101001 (mobile no. BSO-000241) customer PV-01042: 3 lines, total 54.3",
        "    1000: W-1001 x 24 БР",
        "    2000: J-2040 x 6 БР",
        "    3000: C-3007 x 10 ПК",
        "  salesCreditMemos S-CR101001 (mobile no. BRO-000017) customer PV-01042: 2 lines, "
        "total 6.75",
        "    1000: J-2040 x 2 БР",
        "    2000: C-3007 x 1 ПК",
        "  payment journal line BPM-000052 customer PV-01042: -120 (INV-2026-00981)",
        "  payment journal line BPM-000052 customer PV-01042: -52.8 (INV-2026-01013)",
        "  payment journal line BPM-000052 customer PV-01042: -7.2 (unapplied)",
        "  customer NEW-PV07-0003 'Кафе „Старият град“' (Пловдив), blocked 'All'",
    ]
