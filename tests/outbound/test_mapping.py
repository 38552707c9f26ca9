"""The mapping data file and the conversion of BC values to packet text (pure)."""

from __future__ import annotations

import pytest

from packetworker.outbound import MappingError, load_mapping
from packetworker.outbound.mapping import format_value, parse_mapping, to_record
from packetworker.packets import Status
from packetworker.targets.mapping import MappingError as InboundMappingError


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (True, "true"),
        (False, "false"),
        (0, "0"),
        (12, "12"),
        (1.5, "1.5"),
        (3.0, "3"),
        (0.1, "0.1"),
        (1e-7, "0.0000001"),
        ("Пловдив", "Пловдив"),
        ("", None),
        ("  ", None),
        (None, None),
    ],
)
def test_values_are_written_as_the_connector_writes_them(value, text):
    assert format_value(value) == text


def test_a_structured_value_is_a_mapping_error():
    with pytest.raises(MappingError) as caught:
        format_value({"a": 1})
    assert str(caught.value) == "a field expression produced dict, not a value"


def test_the_shipped_mapping_names_the_field_sales_tables():
    mapping = load_mapping()

    assert [t.table.name for t in mapping.master] == [
        "CompanyInfo",
        "Currency",
        "PaymentTerms",
        "UnitOfMeasure",
        "Item",
        "UOMConversion",
        "ItemVariant",
        "Customer",
    ]
    assert {d: m.table.name for d, m in mapping.documents.items()} == {
        "salesShipments": "SalesShipment",
        "salesInvoices": "SalesInvoice",
    }
    assert [t.table.name for t in mapping.master_tables()][-2:] == ["UOMConversion", "Customer"]


def test_a_record_leaves_out_empty_fields_and_uses_the_company_context():
    table = load_mapping().master[0]

    record = to_record(
        table.table,
        table.fields,
        {"id": "g-1", "displayName": "Contoso", "city": "", "phoneNumber": None},
        extra={"_company": {"name": "CRONUS"}},
    )

    assert record.fields == {"SystemId": "g-1", "Code": "CRONUS", "Name": "Contoso"}
    assert (record.status, record.raw_status) == (Status.INSERT, None)


def test_a_custom_mapping_file_is_read(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text(
        '[master.Produkt]\nentity_set = "items"\n'
        '[master.Produkt.fields]\nNr = "number"\nName = "join(\' \', [displayName, number])"\n',
        encoding="utf-8",
    )

    [table] = load_mapping(path).master
    record = to_record(table.table, table.fields, {"number": "I1", "displayName": "Bolt"})

    assert record.fields == {"Nr": "I1", "Name": "Bolt I1"}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"master": {"T": {"fields": {"A": "a"}}}}, "entity_set"),
        ({"master": {"T": {"entity_set": "items", "fields": {"A": "a[["}}}}, "master.T.fields.A"),
        ({"master": {"T": {"entity_set": "items", "fields": {}}}}, "fields"),
        ({"master": {"T": {"entity_set": "items", "fields": {"A": "a"}, "typo": 1}}}, "typo"),
        ({"extra": {}}, "extra"),
    ],
)
def test_a_broken_mapping_is_refused_with_where_it_is_broken(data, message):
    with pytest.raises(MappingError, match=message):
        parse_mapping(data)


def test_outbound_and_inbound_mappings_fail_with_one_error_naming_file_and_path(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text('[master.Item]\nentity_set = "items"\nfields = { No = "number[[" }\n')

    with pytest.raises(InboundMappingError) as caught:
        load_mapping(path)

    assert MappingError is InboundMappingError
    assert (caught.value.source, caught.value.path) == (str(path), "master.Item.fields.No")
    assert str(caught.value).startswith(f"{path}: master.Item.fields.No: invalid JMESPath")


def test_a_custom_mapping_may_use_the_mapping_functions_of_inbound_files(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('[master.Item]\nentity_set = "items"\nfields = { Name = "trim(name)" }\n')

    [table] = load_mapping(path).master

    assert table.fields.apply({"name": "  Bolt "}) == {"Name": "Bolt"}
