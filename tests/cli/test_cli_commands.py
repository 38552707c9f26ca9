"""The `packetworker` command line, driven as an operator would: exit codes and output."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from lxml import etree
from support.portal import DEMO_API_KEY, DEMO_APP_AREA
from support.vendor import vendor_packet_path
from typer.testing import CliRunner

from packetworker.cli import app
from packetworker.settings import get_settings

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples"
runner = CliRunner()


@pytest.fixture(autouse=True)
def fresh_settings(monkeypatch, tmp_path):
    """Each command reads the environment anew, from a scratch working directory."""
    monkeypatch.chdir(tmp_path)
    for name in ("DM_API_URL", "DM_APP_AREA", "DM_API_KEY", "REDIS_URL", "TARGET"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def portal_env(monkeypatch, portal_sandbox):
    monkeypatch.setenv("DM_API_URL", portal_sandbox.url)
    monkeypatch.setenv("DM_APP_AREA", DEMO_APP_AREA)
    monkeypatch.setenv("DM_API_KEY", DEMO_API_KEY)
    monkeypatch.setenv("DM_STORAGE_HTTP_HOSTS", portal_sandbox.storage_hosts)
    get_settings.cache_clear()
    return portal_sandbox


def test_validate_accepts_every_valid_sample():
    valid = [p for p in SAMPLES.glob("*.*") if p.suffix in (".xml", ".json")]
    result = runner.invoke(app, ["validate", *map(str, valid)])
    assert result.exit_code == 0, result.output
    assert f"{len(valid)} of {len(valid)} packets valid" in result.output


def test_validate_prints_the_expected_error_and_fails_for_an_invalid_packet():
    bad = SAMPLES / "invalid" / "duplicate-tablename.xml"
    expected = (bad.parent / (bad.name + ".expected")).read_text(encoding="utf-8").strip()
    result = runner.invoke(app, ["validate", str(bad)])
    assert result.exit_code == 1
    assert expected in result.output
    assert "0 of 1 packets valid" in result.output


def test_inspect_json_reports_exactly_the_tables_and_counts_of_a_vendor_packet():
    packet = vendor_packet_path("438a12ad-d3cf-43e3-aa5e-f6dbea35224a")
    tree = etree.parse(str(packet))
    expected = {t.get("tablename"): len(t.findall("r")) for t in tree.getroot()}
    result = runner.invoke(app, ["inspect", str(packet), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["user"] == "biotest"
    assert {name: sum(c.values()) for name, c in report["tables"].items()} == expected


def test_convert_writes_the_json_twin_and_converts_back_to_the_same_packet(tmp_path):
    source = SAMPLES / "sales-order.xml"
    as_json, back = tmp_path / "o.json", tmp_path / "o.xml"

    to_json = runner.invoke(app, ["convert", str(source), "--to", "json", "-o", str(as_json)])
    to_xml = runner.invoke(app, ["convert", str(as_json), "--to", "xml", "-o", str(back)])

    assert (to_json.exit_code, to_xml.exit_code) == (0, 0), to_json.output + to_xml.output
    assert json.loads(as_json.read_bytes()) == json.loads(source.with_suffix(".json").read_bytes())
    after = json.loads(runner.invoke(app, ["inspect", str(back), "--json"]).output)
    assert (after["format"], after["user"], after["tables"]) == (
        "xml",
        "rep-plovdiv-07",
        {
            "CustomerActivity": {"insert": 1},
            "SalesHeader": {"insert": 1},
            "SalesLine": {"insert": 3},
            "SalesLineInventory": {"insert": 3},
        },
    )


def test_convert_of_a_bad_packet_fails_and_leaves_no_output_file(tmp_path):
    out = tmp_path / "out.json"
    result = runner.invoke(
        app, ["convert", str(SAMPLES / "invalid" / "truncated.xml"), "--to", "json", "-o", str(out)]
    )
    assert result.exit_code == 1
    assert "truncated" in result.output
    assert list(tmp_path.glob("out.json*")) == []


def test_pull_lists_the_pending_packets_of_the_configured_app_area(portal_env):
    first = portal_env.enqueue(DEMO_APP_AREA, (SAMPLES / "visit-start.xml").read_bytes(), user="u1")
    second = portal_env.enqueue(DEMO_APP_AREA, (SAMPLES / "payment.xml").read_bytes(), user="u2")
    result = runner.invoke(app, ["pull"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "2 pending packet entries" in result.output
    assert first in result.output
    assert second in result.output


def test_pull_without_credentials_says_what_to_set():
    result = runner.invoke(app, ["pull"])
    assert result.exit_code == 2
    assert "DM_APP_AREA and DM_API_KEY" in result.output


def test_push_uploads_the_file_bytes_to_the_user(portal_env):
    packet = SAMPLES / "outbound" / "complete-push.xml"
    result = runner.invoke(app, ["push", "salesman7", str(packet), "--id", "push-1"])
    assert result.exit_code == 0, result.output
    [upload] = portal_env.uploads(DEMO_APP_AREA)
    assert (upload.user, upload.packet_unique_id, upload.body) == (
        "salesman7",
        "push-1",
        packet.read_bytes(),
    )


def test_replay_of_a_missing_path_fails_and_names_it():
    result = runner.invoke(app, ["replay", "no/such/packet.xml"], env={"COLUMNS": "200"})
    assert result.exit_code == 1
    assert "no/such/packet.xml" in result.output


def test_sandbox_command_serves_the_portal_and_stops_on_sigterm(tmp_path):
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "packetworker",
            "sandbox",
            "--port",
            "0",
            "--enqueue",
            str(SAMPLES / "visit-start.xml"),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        lines = [proc.stdout.readline() for _ in range(5)]
        url = lines[0].rsplit(" ", 1)[1].strip()
        assert "x-api-key: demo-key" in lines[1]
        listed = httpx.get(
            f"{url}/erp/pull/DEMO", params={"format": "json"}, headers={"x-api-key": "demo-key"}
        ).json()
        assert [e["userName"] for e in listed] == ["rep-plovdiv-07"]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
