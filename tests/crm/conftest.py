"""Fixtures shared by the CRM client tests: emulators on 127.0.0.1 and a fake clock."""

from __future__ import annotations

import pytest

from packetworker.sandbox.crmaas import CrmaasEmulator
from packetworker.sandbox.dataverse import DataverseEmulator, default_entities
from packetworker.sandbox.dynamics_portal import DynamicsPortalEmulator
from tests.crm.support import FakeTime, make_dataverse_client


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def dataverse():
    """An org with an Active alternate key on account.accountnumber (see `stock_dataverse`)."""
    entities = default_entities(account_number_key="Active")
    with DataverseEmulator(clients={"app-id": "s3cr3t-value"}, entities=entities) as emulator:
        yield emulator


@pytest.fixture
def stock_dataverse():
    """An org nobody customised: no alternate keys, no custom columns."""
    entities = default_entities(custom_columns={})
    with DataverseEmulator(clients={"app-id": "s3cr3t-value"}, entities=entities) as emulator:
        yield emulator


@pytest.fixture
def dv_client(dataverse, fake_time):
    with make_dataverse_client(dataverse, fake_time) as client:
        yield client


@pytest.fixture
def crmaas():
    with CrmaasEmulator(primary_key="primary-key-1", secondary_key="secondary-key-2") as emulator:
        yield emulator


@pytest.fixture
def portal_proxy():
    with DynamicsPortalEmulator(clients={"eircodex-service-account": "Dynamics365.ReadWrite"}) as e:
        yield e
