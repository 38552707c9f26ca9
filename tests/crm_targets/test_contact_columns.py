"""Where a CRM keeps a contact is mapping data (`[contact_columns]` of the CRM's mapping):
a deployment with its own publisher prefix or custom field ids edits the file, not code."""

from __future__ import annotations

import pytest

from packetworker.targets.base import Outcome
from packetworker.targets.crmaas.target import CrmaasTarget
from packetworker.targets.dataverse.target import DataverseTarget
from packetworker.targets.mapping import MappingError, load_mapping, parse_mapping
from packetworker.targets.mapping.config import read_mapping_file
from tests.crm_targets.harness import CONTACTS, SAMPLES, harness_for

OWN_PREFIX = ["cr7_number", "cr7_type", "cr7_recordtype", "cr7_role", "cr7_active", "cr7_company"]


def shipped_with(name: str, *replacements: tuple[str, str]):
    """A shipped mapping with some of its text replaced (a deployment's edited copy)."""
    text, source = read_mapping_file(name)
    for old, new in replacements:
        assert old in text
        text = text.replace(old, new)
    return parse_mapping(text, source=source)


def test_dataverse_writes_a_contact_into_the_columns_its_mapping_names() -> None:
    mapping = shipped_with(
        "dataverse-field-sales",
        ('number = "new_customernumber"', 'number = "cr7_number"'),
        ('Company = "new_companyname"', 'Company = "cr7_company"'),
        ('"Customer Type" = "new_customertype"', '"Customer Type" = "cr7_type"'),
        ('"Record Type" = "new_recordtype"', '"Record Type" = "cr7_recordtype"'),
        ('Role = "new_role"', 'Role = "cr7_role"'),
        ('Active = "new_active"', 'Active = "cr7_active"'),
    )
    with harness_for("dataverse", org={"custom_columns": {"contact": OWN_PREFIX}}) as crm:
        crm.target = DataverseTarget(
            crm.target.client, mapping=mapping, contact_mapping=load_mapping("ipaas-contact")
        )

        [first] = crm.apply_file(CONTACTS / "4-linked-company.xml")
        [again] = crm.apply_file(CONTACTS / "4-linked-company.xml")

        [contact] = crm.emulator.records("contacts")
        assert (first.outcome, again.outcome) == (Outcome.APPLIED, Outcome.UNCHANGED)
        assert contact["cr7_number"] == "CT-000104"
        assert {"cr7_company", "cr7_role"} <= set(contact)
        assert not [column for column in contact if column.startswith("new_")]


def test_crm_as_a_service_keeps_a_contact_under_the_custom_field_ids_its_mapping_names() -> None:
    mapping = shipped_with(
        "crmaas-field-sales",
        ('number = "customer_number"  #', 'number = "kundennummer"  #'),
        ('Role = "role"', 'Role = "funktion"'),
    )
    with harness_for("crmaas") as crm:
        crm.target = CrmaasTarget(
            crm.target.client, mapping=mapping, contact_mapping=load_mapping("ipaas-contact")
        )

        [first] = crm.apply_file(CONTACTS / "4-linked-company.xml")
        [again] = crm.apply_file(CONTACTS / "4-linked-company.xml")

        [contact] = [c for c in crm.emulator.records("contacts") if c.get("customFields")]
        assert (first.outcome, again.outcome) == (Outcome.APPLIED, Outcome.UNCHANGED)
        assert contact["customFields"]["kundennummer"] == "CT-000104"
        assert "funktion" in contact["customFields"]
        assert "customer_number" not in contact["customFields"]


def test_a_crm_mapping_without_contact_columns_is_refused_naming_its_file() -> None:
    text, _ = read_mapping_file("crmaas-field-sales")
    without = parse_mapping(text.split("# -- Contacts of the contact mapping")[0], source="x.toml")

    with pytest.raises(MappingError) as caught:
        CrmaasTarget(None, mapping=without, contact_mapping=load_mapping("ipaas-contact"))

    assert (caught.value.source, caught.value.path) == ("x.toml", "contact_columns")


# -- Dataverse entity sets: `[options]` of the Dataverse mapping ------------------------------


def test_dataverse_addresses_records_only_by_the_alternate_keys_its_mapping_names() -> None:
    # The org has the key, but this deployment's mapping does not name it: looked up first.
    mapping = shipped_with(
        "dataverse-field-sales",
        ('alternate_keys = { accounts = ["accountnumber"] }', "alternate_keys = {}"),
    )
    with harness_for("dataverse", org={"account_number_key": "Active"}) as crm:
        crm.target = DataverseTarget(crm.target.client, mapping=mapping)

        [outcome] = crm.apply_file(SAMPLES / "new-customer.xml")

        assert outcome.outcome is Outcome.APPLIED
        assert len(crm.emulator.requests_to("GET", "/accounts")) == 1
        [batch] = crm.emulator.requests_to("POST", "$batch")
        assert b"accounts(accountnumber=" not in batch.body


def test_dataverse_sends_order_lines_to_the_entity_set_its_mapping_names() -> None:
    mapping = shipped_with(
        "dataverse-field-sales", ('entity = "salesorderdetails"', 'entity = "cr7_orderlines"')
    )
    with harness_for("dataverse") as crm:
        crm.target = DataverseTarget(crm.target.client, mapping=mapping)

        crm.apply_file(SAMPLES / "sales-order.xml")

        sent = b"".join(r.body for r in crm.emulator.requests_to("POST", "$batch"))
        assert b"POST cr7_orderlines" in sent or b"/cr7_orderlines" in sent
        assert b"salesorderdetails" not in sent


def test_an_unknown_dataverse_option_is_refused_naming_file_and_path() -> None:
    mapping = shipped_with("dataverse-field-sales", ("nested = {", "nestd = {"))

    with pytest.raises(MappingError) as caught:
        DataverseTarget(None, mapping=mapping)  # type: ignore[arg-type]

    assert (caught.value.source, caught.value.path) == (
        "dataverse-field-sales.toml",
        "options.nestd",
    )


def test_a_crm_look_up_with_more_fields_to_match_is_refused_naming_file_and_path() -> None:
    # CRMs find a looked-up record by `match` alone: `where` would be silently ignored.
    mapping = shipped_with(
        "dataverse-field-sales",
        ('match = "productnumber"', 'match = "productnumber"\nwhere = { name = ["name"] }'),
    )

    with pytest.raises(MappingError) as caught:
        DataverseTarget(None, mapping=mapping)  # type: ignore[arg-type]

    assert (caught.value.source, caught.value.path) == (
        "dataverse-field-sales.toml",
        "tables.SalesHeader.children.SalesLine.lookups.productid@odata.bind.where",
    )
