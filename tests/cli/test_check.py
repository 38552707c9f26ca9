"""`packetworker check` against real parts: Redis, the portal sandbox, moto's S3 server, the
BC emulator and the `web` process's waitress, each check's ✓ and ✗ path."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.portal import DEMO_API_KEY, DEMO_APP_AREA
from support.waiting import free_port
from support.web import Waitress
from typer.testing import CliRunner

from packetworker.cli import app
from packetworker.preflight import fail, run_checks
from packetworker.sandbox.bc import BCSandbox
from packetworker.settings import Settings, get_settings
from packetworker.web import WebApp

runner = CliRunner()
CLIENT_STATE = "cs-check-5a6b7c8d9e"
BC_SECRET = "bc-secret-0f1e2d3c4b"


@pytest.fixture
def bucket(moto_endpoint, monkeypatch) -> str:
    import boto3

    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing-aws-secret",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    name = f"check-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=moto_endpoint).create_bucket(Bucket=name)
    return name


@pytest.fixture
def bc() -> Iterator[BCSandbox]:
    with BCSandbox(client_secret=BC_SECRET) as sandbox:
        sandbox.add("customerPaymentJournals", code="GENERAL", displayName="Payments")
        yield sandbox


@pytest.fixture
def web() -> Iterator[Waitress]:
    server = Waitress(WebApp(client_state=CLIENT_STATE, enqueue=lambda message: None))
    yield server
    server.close()


@pytest.fixture
def env(monkeypatch, tmp_path, redis_url, portal_sandbox, bc, bucket, moto_endpoint, web):
    """Every part configured and answering; tests change one setting to break one part."""
    values = {
        "REDIS_URL": redis_url,
        "DM_API_URL": portal_sandbox.url,
        "DM_APP_AREA": DEMO_APP_AREA,
        "DM_API_KEY": DEMO_API_KEY,
        "DM_HTTP_RETRIES": "1",
        "ARCHIVE_URL": f"s3://{bucket}/raw",
        "S3_ENDPOINT_URL": moto_endpoint,
        "TARGET": "bc",
        "BC_TENANT": bc.tenant,
        "BC_ENVIRONMENT": bc.environment,
        "BC_CLIENT_ID": bc.client_id,
        "BC_CLIENT_SECRET": BC_SECRET,
        "BC_TOKEN_URL": bc.token_url,
        "BC_API_URL": bc.api_url,
        "BC_COMPANY": "CRONUS",
        "WEBHOOK_URL": f"{web.root}/bc/webhook",
        "WEBHOOK_CLIENT_STATE": CLIENT_STATE,
    }
    monkeypatch.chdir(tmp_path)
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    yield values
    get_settings.cache_clear()


def check(monkeypatch, **changes: str) -> tuple[int, str, dict[str, tuple[str, str]]]:
    """Run `packetworker check` with `changes` to the environment: exit code, output, and
    {part: (status, detail)} from its --json form."""
    import json

    for name, value in changes.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    table = runner.invoke(app, ["check"], env={"COLUMNS": "250"})
    rows = runner.invoke(app, ["check", "--json"], env={"COLUMNS": "250"})
    assert rows.exit_code == table.exit_code, rows.output
    parsed = {}
    for line in rows.output.splitlines():
        if line.startswith("{"):
            row = json.loads(line)
            parsed[row["part"]] = (row["status"], row["detail"])
    return table.exit_code, table.output, parsed


def test_every_configured_part_answering_passes_with_exit_status_0(env, monkeypatch):
    code, output, rows = check(monkeypatch)

    assert code == 0, output
    assert {part: status for part, (status, _) in rows.items()} == {
        "Redis": "ok",
        f"portal {DEMO_APP_AREA}": "ok",
        "archive": "ok",
        "Business Central token": "ok",
        "Business Central company": "ok",
        "Business Central mapping": "ok",
        "Business Central payment journal": "ok",
        "webhook": "ok",
    }
    assert re.search(r", Redis \d+\.\d+", rows["Redis"][1])
    assert "✓" in output
    assert "Ready." in output


def test_the_archive_probe_is_removed_again(env, monkeypatch, bucket, moto_endpoint):
    import boto3

    check(monkeypatch)

    listed = boto3.client("s3", endpoint_url=moto_endpoint).list_objects_v2(Bucket=bucket)
    assert listed.get("KeyCount", 0) == 0


def test_the_portal_check_leaves_pending_packets_listed(env, monkeypatch, portal_sandbox):
    packet = (
        b'<NavMobileSync salesmancode="u1">'
        b'<table tablename="T"><r><a>1</a></r></table></NavMobileSync>'
    )
    packet_id = portal_sandbox.enqueue(DEMO_APP_AREA, packet, user="u1")

    _, output, rows = check(monkeypatch)

    assert rows[f"portal {DEMO_APP_AREA}"][0] == "ok", output
    listed = portal_sandbox.queue(DEMO_APP_AREA).receive("packet")
    assert [entry["id"] for entry in listed] == [packet_id]


def test_a_refused_portal_key_fails(env, monkeypatch):
    code, output, rows = check(monkeypatch, DM_API_KEY="wrong-key-77")

    assert code == 1
    status, detail = rows[f"portal {DEMO_APP_AREA}"]
    assert status == "fail"
    assert "API key refused (HTTP 401)" in detail
    assert "✗" in output


def test_an_unreachable_redis_fails(env, monkeypatch):
    code, _, rows = check(monkeypatch, REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")

    assert code == 1
    assert rows["Redis"][0] == "fail"
    assert "check REDIS_URL" in rows["Redis"][1]


def test_an_archive_that_cannot_be_written_fails(env, monkeypatch):
    code, _, rows = check(monkeypatch, ARCHIVE_URL="s3://no-such-bucket-for-check/raw")

    assert code == 1
    assert rows["archive"][0] == "fail"
    assert "cannot write to s3://no-such-bucket-for-check/raw" in rows["archive"][1]


def test_a_directory_archive_is_probed_too(env, monkeypatch, tmp_path):
    _, _, rows = check(monkeypatch, ARCHIVE_URL=f"file://{tmp_path}/archive")

    assert rows["archive"][0] == "ok"
    assert list((tmp_path / "archive").iterdir()) == []


def test_refused_bc_credentials_fail_the_token_and_skip_the_rest(env, monkeypatch):
    code, _, rows = check(monkeypatch, BC_CLIENT_SECRET="not-the-secret")

    assert code == 1
    assert rows["Business Central token"][0] == "fail"
    assert "BC_CLIENT_SECRET" in rows["Business Central token"][1]
    assert rows["Business Central company"] == ("skip", "not checked: needs a token")
    assert rows["Business Central payment journal"][0] == "skip"


def test_an_unknown_company_fails_and_names_the_companies_there_are(env, monkeypatch):
    code, _, rows = check(monkeypatch, BC_COMPANY="Fabrikam")

    assert code == 1
    status, detail = rows["Business Central company"]
    assert status == "fail"
    assert "CRONUS" in detail
    assert "BC_COMPANY" in detail


def test_a_mapping_naming_a_field_bc_lacks_fails(env, monkeypatch, tmp_path):
    shipped = Path(__file__).resolve().parents[2] / "packetworker/mapping_files"
    text = (shipped / "bc-field-sales.toml").read_text(encoding="utf-8")
    broken = tmp_path / "typo.toml"
    broken.write_text(
        text.replace('displayName = { from = ["Name"', 'dispName = { from = ["Name"', 1),
        encoding="utf-8",
    )

    code, _, rows = check(monkeypatch, BC_MAPPING=str(broken))

    assert code == 1
    status, detail = rows["Business Central mapping"]
    assert status == "fail"
    assert "customers.dispName" in detail


def test_a_posted_document_look_up_naming_a_set_bc_lacks_fails(env, monkeypatch, tmp_path):
    shipped = Path(__file__).resolve().parents[2] / "packetworker/mapping_files"
    text = (shipped / "bc-field-sales.toml").read_text(encoding="utf-8")
    broken = tmp_path / "posted.toml"
    broken.write_text(
        text.replace('{ entity = "salesShipments" }', '{ entity = "postedShipments" }', 1),
        encoding="utf-8",
    )

    code, _, rows = check(monkeypatch, BC_MAPPING=str(broken))

    assert code == 1
    status, detail = rows["Business Central mapping"]
    assert status == "fail"
    assert "'postedShipments'" in detail


def test_a_mapping_that_does_not_load_fails(env, monkeypatch, tmp_path):
    code, _, rows = check(monkeypatch, BC_MAPPING=str(tmp_path / "missing.toml"))

    assert code == 1
    assert rows["Business Central mapping"][0] == "fail"
    assert "BC_MAPPING" in rows["Business Central mapping"][1]


def test_a_missing_payment_journal_fails(env, monkeypatch):
    code, _, rows = check(monkeypatch, BC_PAYMENT_JOURNAL="CASH")

    assert code == 1
    status, detail = rows["Business Central payment journal"]
    assert status == "fail"
    assert "'CASH'" in detail


def test_a_webhook_url_that_does_not_echo_the_token_fails(env, monkeypatch, portal_sandbox):
    code, _, rows = check(monkeypatch, WEBHOOK_URL=f"{portal_sandbox.url}/bc/webhook")

    assert code == 1
    assert rows["webhook"][0] == "fail"
    assert "HTTP 404" in rows["webhook"][1]


def test_an_unreachable_webhook_url_fails(env, monkeypatch):
    code, _, rows = check(monkeypatch, WEBHOOK_URL=f"http://127.0.0.1:{free_port()}/bc/webhook")

    assert code == 1
    assert rows["webhook"][0] == "fail"
    assert "unreachable" in rows["webhook"][1]


def test_parts_not_configured_are_skipped_without_failing(env, monkeypatch):
    for name in ("BC_CLIENT_ID", "BC_CLIENT_SECRET", "WEBHOOK_URL"):
        monkeypatch.delenv(name)

    code, output, rows = check(monkeypatch, TARGET="plan")

    assert code == 0, output
    assert rows["target plan"][0] == "skip"
    assert rows["Business Central token"] == (
        "skip",
        "not configured: set BC_CLIENT_ID, BC_CLIENT_SECRET",
    )
    assert rows["webhook"][0] == "skip"
    assert "not configured" in rows["webhook"][1]


def test_the_bc_target_without_credentials_fails(env, monkeypatch):
    monkeypatch.delenv("BC_CLIENT_SECRET")

    code, _, rows = check(monkeypatch)

    assert code == 1
    assert rows["target bc"] == ("fail", "TARGET=bc needs BC_CLIENT_SECRET (or BC_REFRESH_TOKEN)")


def test_no_secret_reaches_the_output_of_a_failing_check(env, monkeypatch, redis_url):
    secrets = {
        "DM_API_KEY": "dm-secret-key-4821",
        "BC_CLIENT_SECRET": "bc-wrong-secret-9931",
        "WEBHOOK_CLIENT_STATE": "client-state-secret-5512",
    }
    redis_password = "redis-pw-secret-7730"
    port = free_port()

    code, output, rows = check(
        monkeypatch, REDIS_URL=f"redis://:{redis_password}@127.0.0.1:{port}/0", **secrets
    )

    assert code == 1
    assert {rows[p][0] for p in ("Redis", f"portal {DEMO_APP_AREA}")} == {"fail"}
    assert rows["Business Central token"][0] == "fail"
    for secret in [*secrets.values(), redis_password, "testing-aws-secret"]:
        assert secret not in output
        assert all(secret not in detail for _, detail in rows.values())


def test_a_secret_in_an_error_a_check_raises_is_masked(monkeypatch):
    def leaky(settings: Settings):
        yield fail("leaky", f"refused key {settings.dm_api_key.get_secret_value()}")
        raise RuntimeError(f"token was {settings.bc_client_secret.get_secret_value()}")

    settings = Settings(_env_file=None, dm_api_key="dm-leak-3141", bc_client_secret="bc-leak-2718")

    rows = run_checks(settings, [leaky])

    assert [(r.part, r.status) for r in rows] == [("leaky", "fail"), ("leaky", "fail")]
    assert "dm-leak-3141" not in rows[0].detail
    assert "bc-leak-2718" not in rows[1].detail
    assert "***" in rows[1].detail


# --- CRM targets: live, read-only checks against their emulators ----------------------------

DV_SECRET = "dv-secret-7e6d5c4b3a"
CRMAAS_KEY = "crmaas-key-1a2b3c4d5e"


def crm_settings(**values) -> Settings:
    return Settings(_env_file=None, **values)


def rows_of(results) -> list[tuple[str, str]]:
    return [(r.part, r.status) for r in results]


@pytest.fixture
def dataverse_org():
    from packetworker.sandbox.dataverse import DataverseEmulator, default_entities

    entities = default_entities(account_number_key="Active")  # prepared as the README says
    with DataverseEmulator(clients={"dv-app": DV_SECRET}, entities=entities) as org:
        yield org


def dataverse_values(org, secret: str = DV_SECRET) -> dict:
    return {
        "target": "dataverse",
        "dataverse_url": org.url,
        "dataverse_tenant": org.tenant,
        "dataverse_client_id": "dv-app",
        "dataverse_client_secret": secret,
        "dataverse_token_url": f"{org.url}/{{tenant}}/oauth2/v2.0/token",
    }


def test_check_proves_the_dataverse_token_user_and_org(dataverse_org):
    from packetworker.preflight import check_target

    results = run_checks(crm_settings(**dataverse_values(dataverse_org)), [check_target])

    dataverse = [r for r in results if r.part.startswith("Dataverse")]
    assert [r.part for r in dataverse][:2] == ["Dataverse token", "Dataverse user"]
    assert {r.status for r in dataverse} == {"ok"}
    assert dataverse_org.identity["UserId"] in dataverse[1].detail
    assert any("alternate key" in r.detail for r in dataverse[2:])


def test_check_fails_a_refused_dataverse_secret_without_printing_it(dataverse_org):
    from packetworker.targets.dataverse.checks import dataverse_checks

    wrong = "dv-wrong-secret-99aa88bb"
    results = run_checks(crm_settings(**dataverse_values(dataverse_org, wrong)), [dataverse_checks])

    assert rows_of(results) == [
        ("Dataverse token", "fail"),
        ("Dataverse user", "skip"),
        ("Dataverse org", "skip"),
    ]
    assert "DATAVERSE_CLIENT_SECRET" in results[0].detail
    assert all(wrong not in r.detail for r in results)


def test_check_fails_an_org_that_lacks_the_mapping_columns():
    from packetworker.sandbox.dataverse import DataverseEmulator, default_entities
    from packetworker.targets.dataverse.checks import dataverse_checks

    stock = default_entities(custom_columns={})  # no custom columns, no alternate key
    with DataverseEmulator(clients={"dv-app": DV_SECRET}, entities=stock) as org:
        results = run_checks(crm_settings(**dataverse_values(org)), [dataverse_checks])

    assert rows_of(results)[:2] == [("Dataverse token", "ok"), ("Dataverse user", "ok")]
    assert ("Dataverse org", "fail") in rows_of(results)


@pytest.mark.parametrize("valid", [True, False])
def test_check_reads_crm_as_a_service_with_each_key(valid):
    from packetworker.sandbox.crmaas import CrmaasEmulator
    from packetworker.targets.crmaas.checks import crmaas_checks

    with CrmaasEmulator(primary_key=CRMAAS_KEY, secondary_key="crmaas-second-6f7e") as crm:
        primary = CRMAAS_KEY if valid else "crmaas-revoked-0a0b0c"
        settings = crm_settings(
            target="crmaas",
            crmaas_url=crm.url,
            crmaas_primary_key=primary,
            crmaas_secondary_key="crmaas-second-6f7e",
        )
        results = run_checks(settings, [crmaas_checks])

    assert rows_of(results) == [
        ("CRM as a Service CRMAAS_PRIMARY_KEY", "ok" if valid else "fail"),
        ("CRM as a Service CRMAAS_SECONDARY_KEY", "ok"),
    ]
    assert all(primary not in r.detail and "crmaas-second-6f7e" not in r.detail for r in results)


@pytest.mark.parametrize("client_id", ["svc-account", "unknown-account"])
def test_check_gets_a_portal_proxy_session_and_reads_records(client_id):
    from packetworker.sandbox.dynamics_portal import DynamicsPortalEmulator
    from packetworker.targets.dynamics_portal.checks import dynamics_portal_checks

    with DynamicsPortalEmulator(clients={"svc-account": "Dynamics365.ReadWrite"}) as proxy:
        settings = crm_settings(
            target="dynamics-portal",
            dynamics_portal_url=proxy.url,
            dynamics_portal_client_id=client_id,
        )
        results = run_checks(settings, [dynamics_portal_checks])
        writes = [r for r in proxy.requests if r.method != "GET" and "authenticate" not in r.path]

    expected = "ok" if client_id == "svc-account" else "fail"
    assert rows_of(results)[0] == ("Dynamics portal proxy session", expected)
    assert rows_of(results)[1][1] == ("ok" if expected == "ok" else "skip")
    assert writes == []  # read-only
