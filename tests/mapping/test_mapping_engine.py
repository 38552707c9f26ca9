"""The mapper's behaviours, each shown with a small mapping written in the test."""

from __future__ import annotations

import pytest

from packetworker.packets.model import PacketHeader, Record, Status, Table
from packetworker.targets.mapping import (
    LookupNotFound,
    LookupRef,
    MappedItem,
    Mapper,
    MappingFault,
    Operation,
    parse_mapping,
    resolve_lookups,
)

from .conftest import HEADER, rec

DOCUMENTS = """
name = "docs"
unknown_tables = "skip"
ignore_tables = ["Noise"]

[tables.Head]
entity = "heads"
operation = "create"
key = ["number"]
fields = { number = ["No", "no"], customer = ["CustomerNo", "customerNo"] }
required = ["customer"]

[tables.Head.children.Line]
collection = "lines"
parent_key = ["No", "no"]
child_key = ["DocumentNo", "documentNo"]
when = "Kind != 'skip'"
fields = { item = ["No", "no"], qty = { from = ["Quantity", "quantity"], convert = "decimal" } }

[tables.Flat]
entity = "flats"
fields = { code = "Code" }
"""


def head(rowid: str, number: str, customer: str | None) -> Record:
    """A `Head` record of DOCUMENTS, with the connector's field names."""
    fields = {"No": number, **({"CustomerNo": customer} if customer else {})}
    return rec("Head", DMS_ROWID=rowid, **fields)


def line(rowid: str, document: str, item: str, quantity: str, **fields: str) -> Record:
    """A `Line` record of DOCUMENTS, with the connector's field names."""
    return rec("Line", DMS_ROWID=rowid, DocumentNo=document, No=item, Quantity=quantity, **fields)


def mapper(text: str) -> Mapper:
    return Mapper(parse_mapping(text, source="test.toml"))


def run(text: str, records: list[Record], header: PacketHeader = HEADER) -> list[MappedItem]:
    return list(mapper(text).map_packet(header, records))


def one(text: str, record: Record) -> MappedItem:
    items = run(text, [record])
    assert len(items) == 1
    return items[0]


def mapped(item: MappedItem) -> Operation:
    """The operation of an item that must have mapped (else the test fails with its message)."""
    assert (item.outcome, item.message) == ("mapped", None)
    assert item.operation is not None
    return item.operation


def body_of(text: str, record: Record) -> dict[str, object]:
    """The body `record` maps to on its own."""
    return mapped(one(text, record)).body


def error_of(text: str, record: Record) -> str | None:
    """The message of the error `record` maps to on its own (it must give no operation)."""
    item = one(text, record)
    assert (item.outcome, item.operation) == ("error", None)
    return item.message


def simple(body: str, *, table: str = "T", extra: str = "") -> str:
    return f'name = "t"\n{extra}\n[tables.{table}]\nentity = "things"\n{body}\n'


# -- fields ---------------------------------------------------------------------------------
def test_a_field_takes_the_first_alias_present() -> None:
    text = simple('fields = { customer = ["SelltoCustomerNo", "customerNo"] }')
    assert body_of(text, rec("T", DMS_ROWID="r1", customerNo="C1")) == {"customer": "C1"}


def test_a_missing_optional_field_is_left_out_of_the_body() -> None:
    text = simple('fields = { customer = "customerNo", city = "City" }')
    assert body_of(text, rec("T", customerNo="C1")) == {"customer": "C1"}


def test_a_field_default_applies_when_no_alias_is_present() -> None:
    text = simple('fields = { kind = { from = "Kind", default = "Person" } }')
    assert body_of(text, rec("T")) == {"kind": "Person"}


def test_values_translate_source_codes() -> None:
    text = simple('fields = { type = { from = "DocumentType", values = { "0" = "Order" } } }')
    assert body_of(text, rec("T", DocumentType="0")) == {"type": "Order"}


def test_a_value_without_translation_is_an_error_naming_the_row() -> None:
    text = simple('fields = { type = { from = "DocumentType", values = { "0" = "Order" } } }')
    assert error_of(text, rec("T", DMS_ROWID="r1", DocumentType="8")) == (
        "T row r1: DocumentType has '8', which has no translation (known: 0) "
        "(mapping t, tables.T.fields.type)."
    )


@pytest.mark.parametrize(
    ("kind", "text", "value"),
    [
        ("decimal", "23.2916713", 23.2916713),
        ("decimal", "6218", 6218),
        ("int", "1000", 1000),
        ("bool", "1", True),
        ("bool", "false", False),
        ("date", "2021-07-14", "2021-07-14"),
        ("date", "2021-07-14T23:28:30.858Z", "2021-07-14"),
        ("datetime", "2021-07-14T10:28:30Z", "2021-07-14T10:28:30.000Z"),
        ("base64", "data:image/png;base64,aGVsbG8=", "aGVsbG8="),
        ("string", "abc", "abc"),
    ],
)
def test_convert_turns_packet_text_into_json_values(kind: str, text: str, value: object) -> None:
    mapping = simple(f'fields = {{ v = {{ from = "F", convert = "{kind}" }} }}')
    assert body_of(mapping, rec("T", F=text)) == {"v": value}


def test_an_unreadable_value_is_an_error_naming_field_and_row() -> None:
    text = simple('fields = { orderDate = { from = ["OrderDate"], convert = "date" } }')
    assert error_of(text, rec("T", DMS_ROWID="r1", OrderDate="14/07/2021")) == (
        "T row r1: OrderDate cannot be read as a date for orderDate: '14/07/2021' is not a "
        "date like 2021-07-14 (mapping t, tables.T.fields.orderDate)."
    )


def test_text_longer_than_max_length_is_an_error() -> None:
    text = simple('fields = { no = { from = "No", convert = "string", max_length = 3 } }')
    assert error_of(text, rec("T", DMS_ROWID="r1", No="ABCD")) == (
        "T row r1: No cannot be read as text for no: 'ABCD' is longer than 3 characters "
        "(mapping t, tables.T.fields.no)."
    )


def test_an_empty_value_counts_as_absent_for_typed_fields() -> None:
    text = simple('fields = { qty = { from = "Quantity", convert = "decimal" } }')
    assert body_of(text, rec("T", Quantity="")) == {}


def test_into_nests_a_field_under_an_object() -> None:
    text = simple('fields = { Role = { from = "WebUserRole", into = "CustomFields" } }')
    assert body_of(text, rec("T", WebUserRole="Buyer")) == {"CustomFields": {"Role": "Buyer"}}


# -- static and formula ---------------------------------------------------------------------
def test_static_values_are_copied_verbatim() -> None:
    text = simple('static = { lineType = "Item", PreventDuplicate = true, n = 3 }')
    assert body_of(text, rec("T")) == {"lineType": "Item", "PreventDuplicate": True, "n": 3}


def test_a_formula_sees_fields_header_and_table() -> None:
    text = simple("formula = { who = \"concat(header.salesmancode, '/', table.name, '/', No)\" }")
    assert body_of(text, rec("T", No="7")) == {"who": "user1/T/7"}


def test_a_formula_result_can_be_converted() -> None:
    text = simple(
        'formula = { total = { expr = "dec_mul(Quantity, Price)", convert = "decimal" } }'
    )
    assert body_of(text, rec("T", Quantity="3", Price="0.1")) == {"total": 0.3}


def test_a_formula_giving_null_leaves_the_field_out() -> None:
    text = simple('formula = { contact = "Contact && {lastname: Contact}" }')
    assert body_of(text, rec("T")) == {}


def test_a_formula_that_fails_at_run_time_is_an_error_naming_the_row() -> None:
    text = simple('formula = { total = "dec_add(Amount, `1`)" }')
    assert error_of(text, rec("T", DMS_ROWID="r1", Amount="abc")) == (
        "T row r1: expression 'dec_add(Amount, `1`)' failed: not a number: 'abc' "
        "(mapping t, tables.T.formula.total)."
    )


# -- required, key, checks ------------------------------------------------------------------
def test_a_missing_required_field_is_an_error_with_a_plain_message() -> None:
    text = simple(
        'fields = { customerNumber = ["SelltoCustomerNo", "customerNo"] }\n'
        'required = ["customerNumber"]'
    )
    assert error_of(text, rec("T", DMS_ROWID="r1")) == (
        "T row r1: required field customerNumber has no value (from SelltoCustomerNo or "
        "customerNo) (mapping t, tables.T.required)."
    )


def test_the_key_holds_the_key_fields_values() -> None:
    text = simple(
        'key = ["externalDocumentNumber"]\n'
        'fields = { externalDocumentNumber = ["No", "no"], customer = "customerNo" }'
    )
    assert mapped(one(text, rec("T", no="SO-1", customerNo="C1"))).key == {
        "externalDocumentNumber": "SO-1"
    }


def test_a_record_without_its_key_value_is_an_error() -> None:
    text = simple('key = ["number"]\nfields = { number = "No" }')
    assert error_of(text, rec("T", DMS_ROWID="r1")) == (
        "T row r1: the key field number has no value (mapping t, tables.T.key)."
    )


def test_a_test_check_reports_its_plain_error_and_resolution() -> None:
    text = simple(
        'fields = { amount = "paidAmount" }\n'
        "[[tables.T.checks]]\n"
        "test = \"paidAmount != '0'\"\n"
        'error = "Missing payment amount"\n'
        'summary = "The payment is zero."\n'
        'resolution = "Enter the amount."\n'
    )
    assert error_of(text, rec("T", DMS_ROWID="r1", paidAmount="0")) == (
        "Missing payment amount: The payment is zero. Resolution: Enter the amount. "
        "(T row r1; mapping t, tables.T.checks[0])"
    )


CODE_PATTERN = simple(
    'fields = { code = "Code" }\n'
    "[[tables.T.checks]]\n"
    'field = "code"\npattern = "[0-9]+"\nerror = "Bad code"\n'
)


def test_a_pattern_check_ignores_an_absent_value() -> None:
    assert body_of(CODE_PATTERN, rec("T")) == {}


def test_a_value_matching_the_pattern_passes_the_check() -> None:
    assert body_of(CODE_PATTERN, rec("T", Code="12")) == {"code": "12"}


@pytest.mark.parametrize("code", ["12a", "a12"], ids=["trailing-letter", "leading-letter"])
def test_a_pattern_check_judges_the_whole_value(code: str) -> None:
    assert error_of(CODE_PATTERN, rec("T", DMS_ROWID="r1", Code=code)) == (
        "Bad code. (T row r1; mapping t, tables.T.checks[0])"
    )


# -- operation policy -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "action"),
    [
        (Status.INSERT, "create"),
        (Status.UPDATE, "update"),
        (Status.DELETE, "delete"),
        (Status.UPSERT, "upsert"),
    ],
)
def test_status_policy_follows_the_record_status(status: Status, action: str) -> None:
    text = simple('operation = "status"\nfields = { code = "Code" }')
    assert mapped(one(text, rec("T", status, Code="A"))).action == action


@pytest.mark.parametrize("status", [Status.INSERT, Status.UPDATE, Status.UPSERT])
def test_a_fixed_policy_applies_whatever_the_status(status: Status) -> None:
    text = simple('operation = "create"\nfields = { code = "Code" }')
    assert mapped(one(text, rec("T", status, Code="A"))).action == "create"


def test_a_deleted_record_becomes_a_delete_even_under_a_fixed_policy() -> None:
    text = simple(
        'operation = "create"\nkey = ["code"]\nfields = { code = "Code", n = "N" }\n'
        'required = ["n"]'
    )
    operation = mapped(one(text, rec("T", Status.DELETE, Code="A")))
    assert (operation.action, operation.key) == ("delete", {"code": "A"})


def test_a_read_record_is_skipped() -> None:
    item = one(simple('fields = { code = "Code" }'), rec("T", Status.READ, DMS_ROWID="r1"))
    assert (item.outcome, item.message) == (
        "skipped",
        "T row r1 has status read; nothing to apply.",
    )


def test_update_fields_and_prevent_duplicate_reach_the_operation() -> None:
    text = simple(
        'operation = "upsert"\nkey = ["n"]\nupdate_fields = ["city"]\n'
        'prevent_duplicate = true\nduplicate_message = "Already there."\n'
        'fields = { n = "No", city = "City" }'
    )
    assert mapped(one(text, rec("T", No="1", City="Sofia"))) == Operation(
        entity="things",
        action="upsert",
        key={"n": "1"},
        body={"n": "1", "city": "Sofia"},
        source=[("T", None)],
        prevent_duplicate=True,
        update_fields=["city"],
        duplicate_message="Already there.",
    )


# -- filters, ignored and unknown tables ----------------------------------------------------
def test_a_record_failing_the_table_filter_is_filtered() -> None:
    text = simple('when = "Type == \'Person\'"\nfields = { code = "Code" }')
    item = one(text, rec("T", DMS_ROWID="r1", Type="Company"))
    assert (item.outcome, item.operation, item.dms_rowid) == ("filtered", None, "r1")


def test_an_ignored_table_is_acknowledged_without_an_operation() -> None:
    item = one(DOCUMENTS, rec("Noise", DMS_ROWID="n1"))
    assert item == MappedItem(None, "ignored", "Noise", "n1", None)


def test_an_unknown_table_is_skipped_under_the_skip_policy() -> None:
    item = one(DOCUMENTS, rec("Mystery", DMS_ROWID="m1"))
    assert item == MappedItem(
        None, "skipped", "Mystery", "m1", "Table Mystery is not in mapping docs."
    )


def test_an_unknown_table_is_an_error_under_the_quarantine_policy() -> None:
    item = one(simple('fields = { code = "Code" }'), rec("Mystery", DMS_ROWID="m1"))
    assert item == MappedItem(
        None,
        "error",
        "Mystery",
        "m1",
        "Table Mystery is not in mapping t, whose unknown_tables policy is quarantine.",
        MappingFault.UNKNOWN_TABLE,
    )


# -- children -------------------------------------------------------------------------------
def test_children_are_attached_under_their_parent_by_document_number() -> None:
    items = run(
        DOCUMENTS,
        [head("h1", "D1", "C1"), line("l1", "D1", "I1", "2"), line("l2", "D1", "I2", "1.5")],
    )
    assert items == [
        MappedItem(
            Operation(
                entity="heads",
                action="create",
                key={"number": "D1"},
                body={"number": "D1", "customer": "C1"},
                children={"lines": [{"item": "I1", "qty": 2}, {"item": "I2", "qty": 1.5}]},
                source=[("Head", "h1"), ("Line", "l1"), ("Line", "l2")],
            ),
            "mapped",
            "Head",
            "h1",
        )
    ]


def test_children_may_come_before_their_parent() -> None:
    items = run(
        DOCUMENTS,
        [
            rec("Line", DMS_ROWID="l1", documentNo="D1", no="I1", quantity="2"),
            rec("Head", DMS_ROWID="h1", no="D1", customerNo="C1"),
        ],
    )
    assert [(i.outcome, i.table) for i in items] == [("mapped", "Head")]
    assert mapped(items[0]).children == {"lines": [{"item": "I1", "qty": 2}]}


def test_each_document_gets_only_its_own_children() -> None:
    items = run(
        DOCUMENTS, [head("h1", "D1", "C1"), head("h2", "D2", "C2"), line("l1", "D2", "I9", "1")]
    )
    assert [mapped(i).children for i in items] == [
        {},
        {"lines": [{"item": "I9", "qty": 1}]},
    ]


def test_a_child_failing_its_filter_is_reported_as_filtered_and_left_out() -> None:
    items = run(DOCUMENTS, [head("h1", "D1", "C1"), line("l1", "D1", "I1", "2", Kind="skip")])
    assert [(i.outcome, i.table, i.dms_rowid) for i in items] == [
        ("mapped", "Head", "h1"),
        ("filtered", "Line", "l1"),
    ]
    assert mapped(items[0]).source == [("Head", "h1")]


def test_a_child_without_its_parent_in_the_packet_is_an_error() -> None:
    items = run(DOCUMENTS, [line("l1", "D7", "I1", "1")])
    assert items == [
        MappedItem(
            None,
            "error",
            "Line",
            "l1",
            "Line row l1 belongs to Head 'D7', which is not in this packet "
            "(mapping docs, tables.Head.children).",
            MappingFault.NO_PARENT,
        )
    ]


def test_a_child_error_fails_the_whole_document_and_names_every_record() -> None:
    items = run(DOCUMENTS, [head("h1", "D1", "C1"), line("l1", "D1", "I1", "two")])
    first = (
        "Line row l1: Quantity cannot be read as a decimal number for qty: 'two' is not a "
        "decimal number like -12.5 (mapping docs, tables.Head.children.Line.fields.qty)."
    )
    assert items == [
        MappedItem(None, "error", "Head", "h1", first, MappingFault.BAD_VALUE),
        MappedItem(
            None,
            "error",
            "Line",
            "l1",
            f"Line row l1 is part of Head row h1, which could not be mapped: {first}",
            MappingFault.BAD_VALUE,
        ),
    ]


def test_standalone_records_stream_before_buffered_documents() -> None:
    items = run(
        DOCUMENTS,
        [
            head("h1", "D1", "C1"),
            rec("Flat", DMS_ROWID="f1", Code="A"),
            rec("Noise", DMS_ROWID="n1"),
        ],
    )
    assert [(i.table, i.outcome) for i in items] == [
        ("Flat", "mapped"),
        ("Noise", "ignored"),
        ("Head", "mapped"),
    ]


def test_every_record_is_accounted_for_exactly_once() -> None:
    records = [
        head("h1", "D1", "C1"),
        line("l1", "D1", "I1", "1"),
        line("l2", "D1", "I2", "1", Kind="skip"),
        line("l3", "D9", "I3", "1"),
        head("h2", "D2", None),
        line("l4", "D2", "I4", "1"),
        rec("Flat", DMS_ROWID="f1", Code="A"),
        rec("Noise", DMS_ROWID="n1"),
        rec("Mystery", DMS_ROWID="m1"),
    ]
    covered: list[tuple[str, str | None]] = []
    for item in run(DOCUMENTS, records):
        if item.operation is not None:
            covered.extend(item.operation.source)
        else:
            covered.append((item.table, item.dms_rowid))
    assert sorted(covered) == sorted((r.table.name, r.dms_rowid) for r in records)


def payments(line_options: str) -> str:
    """A mapping of payments whose `PayLine` children (with `line_options`) become `rows`."""
    return (
        'name = "t"\n[tables.Pay]\nentity = "payments"\nfields = { customer = "customerNo" }\n'
        '[tables.Pay.children.PayLine]\ncollection = "rows"\nparent_key = "no"\n'
        f'child_key = "documentNo"\n{line_options}\n'
    )


def test_inherit_copies_the_parent_body_into_each_row() -> None:
    text = payments('inherit = true\nfields = { amount = "amount" }')
    items = run(
        text, [rec("Pay", no="P1", customerNo="C1"), rec("PayLine", documentNo="P1", amount="5")]
    )
    assert mapped(items[0]).children == {"rows": [{"customer": "C1", "amount": "5"}]}


def test_append_adds_computed_rows_mapped_like_children() -> None:
    text = payments(
        "append = \"{amount: dec_sub(paid, dec_sum(children.PayLine[].amount)), note: 'rest'}\"\n"
        'fields = { amount = { from = "amount", convert = "decimal" }, note = "note" }'
    )
    items = run(
        text,
        [
            rec("Pay", no="P1", paid="10", customerNo="C1"),
            rec("PayLine", documentNo="P1", amount="7.5"),
        ],
    )
    assert mapped(items[0]).children == {"rows": [{"amount": 7.5}, {"amount": 2.5, "note": "rest"}]}


def test_a_parent_formula_can_read_its_kept_children() -> None:
    text = DOCUMENTS.replace(
        'required = ["customer"]',
        'required = ["customer"]\nformula = { lines = "length(children.Line)" }',
    )
    items = run(
        text,
        [
            rec("Head", No="D1", CustomerNo="C1"),
            rec("Line", DocumentNo="D1", No="I1", Quantity="1"),
            rec("Line", DocumentNo="D1", No="I2", Quantity="1", Kind="skip"),
        ],
    )
    assert mapped(items[0]).body["lines"] == 1


def test_collections_build_child_rows_from_the_record_itself() -> None:
    text = simple(
        'fields = { name = "Name" }\n'
        'collections = { contacts = "Contact && [{name: Contact}] || null" }'
    )
    assert mapped(one(text, rec("T", Name="Acme", Contact="Ivan"))).children == {
        "contacts": [{"name": "Ivan"}]
    }


# -- routes ---------------------------------------------------------------------------------
ROUTED = """
name = "t"
[tables.H]
fields = { number = "no", date = "dateCreated" }
[tables.H.routes]
by = ["DocumentType", "documentType"]
[tables.H.routes.cases.0]
entity = "orders"
collections = { L = "orderLines" }
[tables.H.routes.cases.1]
entity = "invoices"
collections = { L = "invoiceLines" }
fields = { invoiceDate = "dateCreated" }
drop = ["date"]
[tables.H.children.L]
collection = "lines"
parent_key = "no"
child_key = "documentNo"
fields = { item = "no" }
"""


def test_a_route_picks_the_entity_and_collection_by_discriminator() -> None:
    items = run(
        ROUTED,
        [rec("H", no="D1", documentType="1", dateCreated="x"), rec("L", documentNo="D1", no="I1")],
    )
    op = mapped(items[0])
    assert (op.entity, op.body, op.children) == (
        "invoices",
        {"number": "D1", "invoiceDate": "x"},
        {"invoiceLines": [{"item": "I1"}]},
    )


def test_a_discriminator_value_without_a_route_is_an_error() -> None:
    items = run(ROUTED, [rec("H", DMS_ROWID="h1", no="D1", documentType="8")])
    assert items[0].message == (
        "H row h1: documentType has '8', which has no route (known: 0, 1) "
        "(mapping t, tables.H.routes)."
    )


# -- lookups --------------------------------------------------------------------------------
LOOKUPS = """
name = "t"
[tables.H]
entity = "salesorders"
fields = { name = "no" }
[tables.H.lookups."customerid_account@odata.bind"]
from = ["SelltoCustomerNo", "customerNo"]
entity = "accounts"
match = "accountnumber"
bind = "/accounts({id})"
message = "Customer not found."
[tables.H.children.L]
collection = "details"
parent_key = "no"
child_key = "documentNo"
fields = { quantity = "quantity" }
[tables.H.children.L.lookups."productid@odata.bind"]
from = "no"
entity = "products"
match = "productnumber"
bind = "/products({id})"
"""


ORDER_WITH_ONE_LINE = [
    rec("H", no="D1", customerNo="C1"),
    rec("L", documentNo="D1", no="I1", quantity="2"),
]


def test_lookups_are_declared_for_the_target_to_resolve() -> None:
    items = run(LOOKUPS, ORDER_WITH_ONE_LINE)
    assert mapped(items[0]).lookups == {
        "customerid_account@odata.bind": LookupRef(
            path=("body", "customerid_account@odata.bind"),
            entity="accounts",
            match="accountnumber",
            value="C1",
            bind="/accounts({id})",
            message="Customer not found.",
        ),
        "details/0/productid@odata.bind": LookupRef(
            path=("children", "details", 0, "productid@odata.bind"),
            entity="products",
            match="productnumber",
            value="I1",
            bind="/products({id})",
        ),
    }


def test_resolve_lookups_writes_the_bound_ids_into_body_and_rows() -> None:
    items = run(LOOKUPS, ORDER_WITH_ONE_LINE)
    ids = {("accounts", "C1"): "a-1", ("products", "I1"): "p-1"}
    resolved = resolve_lookups(mapped(items[0]), lambda ref: ids.get((ref.entity, ref.value)))
    assert (resolved.body, resolved.children, resolved.lookups) == (
        {"name": "D1", "customerid_account@odata.bind": "/accounts(a-1)"},
        {"details": [{"quantity": "2", "productid@odata.bind": "/products(p-1)"}]},
        {},
    )


def test_an_unresolved_lookup_raises_with_the_mappings_message() -> None:
    operation = mapped(one(LOOKUPS, rec("H", no="D1", customerNo="C1")))
    with pytest.raises(LookupNotFound, match=r"^Customer not found\.$"):
        resolve_lookups(operation, lambda ref: None)


def test_a_lookup_whose_source_is_absent_is_not_declared() -> None:
    items = run(LOOKUPS, [rec("H", no="D1")])
    assert mapped(items[0]).lookups == {}


VARIANTS = """
name = "t"
[tables.H]
entity = "orders"
fields = { number = "no" }
[tables.H.children.L]
collection = "lines"
parent_key = "no"
child_key = "documentNo"
fields = { item = ["No", "no"] }
[tables.H.children.L.lookups.itemVariantId]
from = "VariantCode"
entity = "itemVariants"
match = "code"
where = { itemNumber = ["No", "no"] }
"""


def test_a_lookups_where_fields_take_the_records_values() -> None:
    variant_line = rec("L", documentNo="D1", no="I7", VariantCode="RED")
    items = run(VARIANTS, [rec("H", no="D1"), variant_line])

    [ref] = mapped(items[0]).lookups.values()
    assert ref.terms() == (("code", "RED"), ("itemNumber", "I7"))
    with pytest.raises(LookupNotFound, match=r"code = 'RED' and itemNumber = 'I7'"):
        resolve_lookups(mapped(items[0]), lambda ref: None)


def test_a_lookup_without_its_where_value_is_a_missing_value() -> None:
    items = run(VARIANTS, [rec("H", no="D1"), rec("L", documentNo="D1", VariantCode="RED")])

    assert items[0].outcome == "error"
    assert items[0].fault == MappingFault.MISSING_VALUE
    assert "the look-up for itemVariantId needs No or no" in (items[0].message or "")


def test_a_lookup_in_a_formula_is_declared_like_a_lookup_row() -> None:
    text = simple("formula = { companyId = \"lookup(CompanyID, 'company', 'external_id')\" }")
    operation = mapped(one(text, rec("T", CompanyID="42")))
    assert (operation.body, operation.lookups) == (
        {},
        {"companyId": LookupRef(("body", "companyId"), "company", "external_id", "42")},
    )


def test_each_mapping_error_names_its_kind_and_a_document_shares_its_headers():
    mapping = parse_mapping(
        """
        [tables.Head]
        entity = "heads"
        key = ["no"]
        fields.no = "No"
        fields.kind = { from = "Kind", values = { A = "a" } }
        [[tables.Head.checks]]
        field = "no"
        pattern = 'H-\\d+'
        error = "Bad Number"
        [tables.Head.children.Line]
        collection = "lines"
        parent_key = "No"
        child_key = "HeadNo"
        fields.qty = "Qty"
        """,
        source="kinds.toml",
    )
    head = Table("Head")
    line = Table("Line")
    records = [
        Record(head, Status.INSERT, {"DMS_ROWID": "h1", "No": "X"}),
        Record(line, Status.INSERT, {"DMS_ROWID": "l1", "HeadNo": "X", "Qty": "1"}),
        Record(head, Status.INSERT, {"DMS_ROWID": "h2", "Kind": "A"}),
        Record(head, Status.INSERT, {"DMS_ROWID": "h3", "No": "H-3", "Kind": "Z"}),
        Record(line, Status.INSERT, {"DMS_ROWID": "l9", "HeadNo": "H-9"}),
        Record(Table("Other"), Status.INSERT, {"DMS_ROWID": "o1"}),
    ]

    items = Mapper(mapping).map_packet(PacketHeader(salesmancode="u"), records)
    faults = {item.dms_rowid: item.fault for item in items}

    assert faults == {
        "h1": MappingFault.RULE,
        "l1": MappingFault.RULE,
        "h2": MappingFault.MISSING_VALUE,
        "h3": MappingFault.BAD_VALUE,
        "l9": MappingFault.NO_PARENT,
        "o1": MappingFault.UNKNOWN_TABLE,
    }
