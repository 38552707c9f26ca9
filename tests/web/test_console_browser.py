"""The console end to end in a real headless Chromium: real dramatiq workers quarantine a
packet their target cannot take, the operator logs in to the real `packetworker web`
process, finds the packet, fixes the cause, re-drives it and watches it get applied.

Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them when missing).
Saves the screenshot the README shows (`docs/console.png`).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from packetworker.sandbox import PortalSandbox
from tests.pipeline.e2e.harness import Deployment, wait_for
from tests.pipeline.e2e.poison_target import fixed_flag
from tests.support.waiting import free_port

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = ROOT / "docs" / "console.png"
APP_AREA = "FIELD"
API_KEY = "console-e2e-api-key-0123456789"
TOKEN = "console-e2e-token-9f8e7d6c5b4a"
POISON = (
    b'<?xml version="1.0" encoding="utf-8"?>\n'
    b'<NavMobileSync salesmancode="rep-7"><table tablename="SalesHeader">'
    b'<r status="insert"><DMS_ROWID>4f9b6a2e-1c3d-4e5f-8a9b-0c1d2e3f4a5b</DMS_ROWID>'
    b"<DocumentNo>SO-20417</DocumentNo><CustomerNo>C0042</CustomerNo><Poison>1</Poison></r>"
    b"</table></NavMobileSync>"
)
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,1000",
)


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    driver_path, chromium = shutil.which("chromedriver"), shutil.which("chromium")
    assert driver_path, "install Debian's chromium-driver (.ci/run does)"
    assert chromium, "install Debian's chromium (.ci/run does)"
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    with tempfile.TemporaryDirectory(prefix="pw-chromium-") as profile:
        options.add_argument(f"--user-data-dir={profile}")
        driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
        driver.set_page_load_timeout(30)
        try:
            yield driver
        finally:
            driver.quit()


@pytest.fixture
def sandbox() -> Iterator[PortalSandbox]:
    with PortalSandbox(app_areas={APP_AREA: API_KEY}, visibility_timeout=2) as portal:
        yield portal


@pytest.fixture
def deployment(
    tmp_path: Path, redis_url: str, sandbox: PortalSandbox, broker: str
) -> Iterator[Deployment]:
    deployment = Deployment(
        root=tmp_path,
        redis_url=redis_url,
        portal_url=sandbox.url,
        api_key=API_KEY,
        app_area=APP_AREA,
        broker_url=broker,
        target="poison",  # refuses records with a Poison field until its fix is "deployed"
        max_attempts=1,
        web_console_token=TOKEN,
        webhook_client_state="console-e2e-client-state",
        web_host="127.0.0.1",
        web_port=free_port(),
        log_format="text",
    )
    yield deployment
    deployment.close()


def start_web(deployment: Deployment) -> str:
    """`packetworker web`, as the Procfile runs it; its root URL once it answers."""
    web = deployment._start([sys.executable, "-m", "packetworker", "web"], "web")
    root = f"http://127.0.0.1:{deployment.values['web_port']}"

    def answers() -> bool:
        assert web.running(), web.output()
        try:
            return httpx.get(f"{root}/healthz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    wait_for(answers, timeout=30, what="the web process to answer")
    return root


def test_operator_finds_a_quarantined_packet_redrives_it_and_sees_it_applied(
    deployment: Deployment, sandbox: PortalSandbox, browser: webdriver.Chrome
) -> None:
    packet_id = sandbox.enqueue(APP_AREA, POISON, user="rep-7")
    deployment.start_worker(threads=2, modules=("e2e.poison_target",))
    deployment.start_clock()
    ledger = deployment.ledger()
    wait_for(
        lambda: (e := ledger.get(packet_id)) is not None and e.result == "quarantined",
        timeout=60,
        what="the packet to be quarantined",
    )
    root = start_web(deployment)

    # Log in with the token.
    browser.get(f"{root}/console/")
    assert browser.current_url.endswith("/console/login")
    browser.find_element(By.ID, "token").send_keys(TOKEN)
    browser.find_element(By.ID, "login").click()
    wait_for(lambda: browser.title.startswith("Overview"), timeout=10, what="the overview")
    assert "quarantined" in browser.find_element(By.CSS_SELECTOR, "table.counts").text

    # Find it in the quarantine list, with its reason.
    browser.find_element(By.LINK_TEXT, "Quarantine and held").click()
    row = browser.find_element(By.XPATH, f"//table[@class='quarantine']//tr[.//a[.='{packet_id}']]")
    assert "target bug: cannot handle a Poison field" in row.text

    # The cause is fixed (the target's fix deployed); re-drive it from the console.
    fixed_flag(Path(deployment.values["recording_path"])).touch()
    row.find_element(By.CSS_SELECTOR, "button.redrive").click()
    wait_for(lambda: "Re-driven" in browser.page_source, timeout=10, what="the re-drive")

    def shows_applied() -> bool:
        browser.refresh()
        facts = browser.find_element(By.CSS_SELECTOR, "table.facts").text
        return "outcome applied" in facts

    wait_for(shows_applied, timeout=60, what="the packet page to show it applied", interval=0.5)
    timeline = browser.find_element(By.CSS_SELECTOR, "table.timeline").text
    for step in ("listed", "archived", "quarantined", "acknowledged", "re-driven", "applied"):
        assert step in timeline
    assert "SO-20417" in browser.find_element(By.ID, "raw").text
    assert [r["fields"]["DocumentNo"] for r in deployment.recorded()] == ["SO-20417"]

    # The workers' counters reach the web process's /metrics through Redis (each worker
    # process adds its counts every few seconds).
    def counted() -> bool:
        metrics = httpx.get(f"{root}/metrics", timeout=5).text
        return all(
            f'packetworker_packets_processed_total{{app_area="{APP_AREA}",outcome="{o}"}} 1'
            in metrics
            for o in ("quarantined", "applied")
        )

    wait_for(counted, timeout=30, what="/metrics to count both runs", interval=0.5)

    SCREENSHOT.parent.mkdir(exist_ok=True)
    assert browser.save_screenshot(os.fspath(SCREENSHOT))
