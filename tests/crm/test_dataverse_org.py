"""What an org holds decides what the Web API accepts: columns (crm.md A.5), alternate keys
(A.7), and the prerequisites check an operator runs against a live org."""

from __future__ import annotations

import pytest

from packetworker.sandbox.dataverse import DataverseEmulator, default_entities
from packetworker.targets.crm.contacts import ContactData
from packetworker.targets.dataverse.contacts import contact_columns
from packetworker.targets.dataverse.errors import InvalidRequest
from packetworker.targets.dataverse.prerequisites import Check, load_prerequisites, verify_org
from packetworker.targets.mapping import load_mapping
from tests.crm.support import make_dataverse_client


@pytest.fixture
def org_with(fake_time):
    """`org_with(**default_entities options)` → (emulator, client), both closed after."""
    opened = []

    def start(**options):
        emulator = DataverseEmulator(
            clients={"app-id": "s3cr3t-value"}, entities=default_entities(**options)
        ).__enter__()
        client = make_dataverse_client(emulator, fake_time)
        opened.append((emulator, client))
        return emulator, client

    yield start
    for emulator, client in opened:
        client.close()
        emulator.__exit__(None, None, None)


def test_a_column_the_table_lacks_is_refused_and_nothing_is_written(stock_dataverse, fake_time):
    with (
        make_dataverse_client(stock_dataverse, fake_time) as client,
        pytest.raises(InvalidRequest) as caught,
    ):
        client.create("contacts", {"lastname": "Brennan", "new_customernumber": "CT-1"})

    assert (caught.value.status, caught.value.code) == (400, "0x0")
    assert "Invalid property 'new_customernumber'" in caught.value.dataverse_message
    assert stock_dataverse.records("contacts") == []


def test_a_column_name_is_matched_exactly_not_case_insensitively(dataverse, dv_client):
    with pytest.raises(InvalidRequest):
        dv_client.create("accounts", {"Name": "Contoso"})


def test_binding_a_lookup_by_its_logical_name_is_refused(dataverse, dv_client):
    account = dv_client.create("accounts", {"name": "Contoso"})

    with pytest.raises(InvalidRequest) as caught:
        dv_client.create(
            "contacts",
            {"lastname": "A", "parentcustomerid@odata.bind": f"/accounts({account})"},
        )

    assert caught.value.code == "0x80048d19"


def test_a_stock_org_has_no_alternate_key_to_upsert_customers_by(stock_dataverse, fake_time):
    with (
        make_dataverse_client(stock_dataverse, fake_time) as client,
        pytest.raises(InvalidRequest) as caught,
    ):
        client.upsert("accounts", {"accountnumber": "A1"}, {"name": "Contoso"})

    assert "key in the request URI is not valid" in caught.value.dataverse_message
    assert stock_dataverse.records("accounts") == []


def test_an_alternate_key_still_being_indexed_cannot_address_records(org_with):
    emulator, client = org_with(account_number_key="Pending")

    with pytest.raises(InvalidRequest):
        client.upsert("accounts", {"accountnumber": "A1"}, {"name": "Contoso"})

    assert emulator.records("accounts") == []


def test_verify_org_names_every_missing_column_and_key_of_a_stock_org(org_with):
    _, client = org_with(custom_columns={})

    checks = verify_org(client)

    wanted = load_prerequisites()
    assert len(checks) == len(wanted.columns) + len(wanted.keys)
    assert not any(check.ok for check in checks)
    assert checks[0].message.startswith("contact.new_customernumber is missing: create it as ")
    assert checks[-1].message.startswith("no alternate key account(accountnumber)")


def test_verify_org_passes_a_prepared_org_with_an_active_key(org_with):
    _, client = org_with(account_number_key="Active")

    checks = verify_org(client)

    assert all(isinstance(c, Check) and c.ok for c in checks), checks
    assert checks[-1] == Check(True, "alternate key account(accountnumber) is active")


def test_verify_org_says_a_key_is_not_active_yet(org_with):
    _, client = org_with(account_number_key="Pending")

    key_check = verify_org(client)[-1]

    assert key_check.ok is False
    assert "is Pending, not Active" in key_check.message


def test_every_custom_column_the_contact_target_writes_is_a_listed_prerequisite():
    store = load_mapping("dataverse-field-sales").contact_columns
    assert store is not None
    contact = ContactData(
        number="CT-1",
        first_name="A",
        last_name="B",
        email="a@b.ie",
        values={
            "FirstName": "A",
            "LastName": "B",
            "Company": "Co",
            "Customer Type": "x",
            "Record Type": "y",
            "Role": "z",
            "Active": "true",
        },
        addresses=[],
        company=None,
        rowid=None,
        prevent_duplicate=True,
        duplicate_message="dup",
    )
    written = {c for c in contact_columns(contact, store) if c.startswith("new_")}

    listed = {c.name for c in load_prerequisites().columns if c.table == "contact"}
    assert written == listed


def test_filtering_or_selecting_a_column_the_table_lacks_is_refused(stock_dataverse, fake_time):
    with make_dataverse_client(stock_dataverse, fake_time) as client:
        for options in ({"filter": "new_customernumber eq 'CT-1'"}, {"select": ["Lastname"]}):
            with pytest.raises(InvalidRequest) as caught:
                list(client.query("contacts", **options))

            assert "Could not find a property named" in caught.value.dataverse_message
