"""`bench/emulators.py`: an emulator in a process of its own, reached over HTTP, gone after."""

from __future__ import annotations

import httpx
import psutil
import pytest
from support.packets import xml_packet

from bench.emulators import Emulator, enqueue
from packetworker.targets.bc import BCAuth, BCClient


def test_a_bc_emulator_in_its_own_process_serves_what_it_was_seeded_with():
    with Emulator("bc", latency=0) as bc:
        bc.admin("POST", "entities/customers", json={"number": "C-1"})
        facts = bc.facts
        auth = BCAuth(
            token_url=facts["token_url"],
            client_id=facts["client_id"],
            client_secret=facts["client_secret"],
        )
        with BCClient(
            api_url=facts["api_url"],
            tenant=facts["tenant"],
            environment=facts["environment"],
            auth=auth,
            company="CRONUS",
        ) as client:
            customers = [c["number"] for c in client.list("customers")]
        counters = bc.admin("GET", "counters")
        pid = bc.pid

    assert pid != psutil.Process().pid
    assert customers == ["C-1"]
    assert counters["requests"] >= 2  # the company look-up and the list
    assert not psutil.pid_exists(pid)


def test_a_portal_emulator_in_its_own_process_lists_what_was_enqueued():
    with Emulator("portal", app_areas={"AREA": "area-key-0123456789"}) as portal:
        enqueue(portal, "AREA", [xml_packet("rep-1"), xml_packet("rep-1")], user="rep-1")
        listed = httpx.get(
            f"{portal.facts['url']}/erp/pull/AREA", headers={"x-api-key": "area-key-0123456789"}
        ).json()
        counters = portal.admin("GET", "counters", params={"app_area": "AREA"})
        cpu = portal.cpu_seconds()

    assert len(listed) == 2
    assert (counters["pending"], counters["done"]) == (2, 0)
    assert cpu > 0


def test_an_unknown_kind_is_refused_before_anything_starts():
    with pytest.raises(ValueError, match="portal"):
        Emulator("crm")


def test_an_emulator_that_cannot_start_says_so():
    with pytest.raises(RuntimeError, match="bc emulator exited"), Emulator("bc", no_such=1):
        pass
