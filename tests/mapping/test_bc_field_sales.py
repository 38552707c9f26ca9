"""The shipped `bc-field-sales` mapping: Field Sales packets → Business Central API v2.0."""

from __future__ import annotations

from dataclasses import replace

import pytest

from packetworker.packets.model import Record, Status
from packetworker.targets.mapping import MappedItem, Operation

from .conftest import (
    VENDOR_RETURN_ORDER,
    VENDOR_SERIES_UPDATE,
    VENDOR_VISIT_END,
    VENDOR_VISIT_START,
    MapVendorPacket,
    rec,
    run,
)
from .field_sales import APP_LINE, CONNECTOR_LINE, CUSTOMER, sales_lines

#: The lines of the order below: line number, item, quantity, unit price, unit, discount.
ORDER_LINES = [
    ("1000", "ITEM-1", "2", "10.5", "PCS", "1.25"),
    ("2000", "ITEM-2", "3", "0", "KG", "0"),
]


def bc(records: list[Record]) -> list[MappedItem]:
    return run("bc-field-sales", records)


def order_in_connector_style(document_type: str = "0") -> list[Record]:
    header = rec(
        "SalesHeader",
        DMS_ROWID="h1",
        DocumentType=document_type,
        No="SO-000101",
        SelltoCustomerNo="C0001",
        OrderDate="2021-07-14",
        DocumentDate="2021-07-14",
    )
    return [header, *sales_lines(CONNECTOR_LINE, "SO-000101", *ORDER_LINES)]


def order_in_sla_style(document_type: str = "0") -> list[Record]:
    header = rec(
        "SalesHeader",
        DMS_ROWID="h1",
        documentType=document_type,
        no="SO-000101",
        customerNo="C0001",
        dateCreated="2021-07-14T10:28:30.858Z",
    )
    return [header, *sales_lines(APP_LINE, "SO-000101", *ORDER_LINES)]


LINES = [
    {
        "sequence": 1000,
        "lineObjectNumber": "ITEM-1",
        "quantity": 2,
        "unitPrice": 10.5,
        "unitOfMeasureCode": "PCS",
        "discountAmount": 1.25,
        "lineType": "Item",
    },
    {
        "sequence": 2000,
        "lineObjectNumber": "ITEM-2",
        "quantity": 3,
        "unitPrice": 0,
        "unitOfMeasureCode": "KG",
        "discountAmount": 0,
        "lineType": "Item",
    },
]


def test_a_sales_order_becomes_a_deep_insert_keyed_by_external_document_number() -> None:
    assert bc(order_in_connector_style()) == [
        MappedItem(
            Operation(
                entity="salesOrders",
                action="create",
                key={"externalDocumentNumber": "SO-000101"},
                body={
                    "externalDocumentNumber": "SO-000101",
                    "customerNumber": "C0001",
                    "orderDate": "2021-07-14",
                },
                children={"salesOrderLines": LINES},
                source=[("SalesHeader", "h1"), ("SalesLine", "l1"), ("SalesLine", "l2")],
            ),
            "mapped",
            "SalesHeader",
            "h1",
        )
    ]


def test_both_name_styles_yield_equal_operations() -> None:
    assert bc(order_in_sla_style()) == bc(order_in_connector_style())


@pytest.mark.parametrize(
    ("order", "entity", "date", "lines"),
    [
        (order_in_sla_style("1"), "salesInvoices", "invoiceDate", "salesInvoiceLines"),
        (
            order_in_connector_style("2"),
            "salesCreditMemos",
            "creditMemoDate",
            "salesCreditMemoLines",
        ),
    ],
    ids=["invoice", "return-order"],
)
def test_a_document_type_goes_to_its_entity_with_its_date_and_line_collection(
    order: list[Record], entity: str, date: str, lines: str
) -> None:
    [item] = bc(order)
    assert item.operation is not None
    op = item.operation
    assert (op.entity, op.body, op.children) == (
        entity,
        {"externalDocumentNumber": "SO-000101", "customerNumber": "C0001", date: "2021-07-14"},
        {lines: LINES},
    )


def test_a_delivery_has_no_route_and_is_an_error_for_the_whole_document() -> None:
    items = bc(order_in_connector_style("8"))
    first = (
        "SalesHeader row h1: DocumentType has '8', which has no route (known: 0, 1, 2) "
        "(mapping bc-field-sales, tables.SalesHeader.routes)."
    )
    assert [(i.outcome, i.dms_rowid, i.message) for i in items] == [
        ("error", "h1", first),
        (
            "error",
            "l1",
            f"SalesLine row l1 is part of SalesHeader row h1, which could not be mapped: {first}",
        ),
        (
            "error",
            "l2",
            f"SalesLine row l2 is part of SalesHeader row h1, which could not be mapped: {first}",
        ),
    ]


def test_an_order_without_a_customer_is_an_error_naming_both_aliases() -> None:
    [item] = bc([rec("SalesHeader", DMS_ROWID="h1", DocumentType="0", No="SO-1")])
    assert (item.outcome, item.message) == (
        "error",
        "SalesHeader row h1: required field customerNumber has no value (from SelltoCustomerNo "
        "or customerNo) (mapping bc-field-sales, tables.SalesHeader.required).",
    )


def test_an_external_document_number_over_35_characters_is_an_error() -> None:
    [item] = bc([rec("SalesHeader", DocumentType="0", No="X" * 36, SelltoCustomerNo="C1")])
    assert item.outcome == "error"
    assert item.message == (
        f"SalesHeader row: No cannot be read as text for externalDocumentNumber: {'X' * 36!r} "
        "is longer than 35 characters (mapping bc-field-sales, "
        "tables.SalesHeader.fields.externalDocumentNumber)."
    )


def test_a_customer_is_upserted_on_its_number_updating_only_address_and_contact() -> None:
    [item] = bc([CUSTOMER])
    assert item.operation == Operation(
        entity="customers",
        action="upsert",
        key={"number": "C0002"},
        body={
            "number": "C0002",
            "displayName": "Corner Shop",
            "addressLine1": "1 Main St",
            "city": "Sofia",
            "phoneNumber": "+359 2 000",
            "blocked": "All",
        },
        source=[("Customer", "c1")],
        update_fields=["addressLine1", "city", "phoneNumber", "email"],
    )


def payment(paid: str, *amounts: str) -> list[Record]:
    header = rec(
        "PaymentHeader",
        DMS_ROWID="p1",
        no="PAY-7",
        customerNo="C0001",
        dateCreated="2021-07-14T10:28:30.858Z",
        paidAmount=paid,
    )
    lines = [
        rec("PaymentLine", DMS_ROWID=f"pl{i}", documentNo="PAY-7", openTransId=f"INV-{i}", amount=a)
        for i, a in enumerate(amounts, 1)
    ]
    return [header, *lines]


PAYMENT_BODY = {
    "externalDocumentNumber": "PAY-7",
    "documentNumber": "PAY-7",
    "customerNumber": "C0001",
    "postingDate": "2021-07-14",
}


def test_a_payment_gives_one_journal_line_per_payment_line_plus_the_unapplied_rest() -> None:
    [item] = bc(payment("100", "70.5", "20"))
    assert item.operation == Operation(
        entity="customerPayments",
        action="create",
        key={"externalDocumentNumber": "PAY-7"},
        body=PAYMENT_BODY,
        children={
            "customerPayments": [
                {**PAYMENT_BODY, "appliesToInvoiceNumber": "INV-1", "amount": -70.5},
                {**PAYMENT_BODY, "appliesToInvoiceNumber": "INV-2", "amount": -20},
                {**PAYMENT_BODY, "amount": -9.5, "description": "Unapplied payment PAY-7"},
            ]
        },
        source=[("PaymentHeader", "p1"), ("PaymentLine", "pl1"), ("PaymentLine", "pl2")],
    )


def test_a_fully_applied_payment_has_no_unapplied_line() -> None:
    [item] = bc(payment("90.5", "70.5", "20"))
    assert item.operation is not None
    assert [row["amount"] for row in item.operation.children["customerPayments"]] == [-70.5, -20]


def test_a_payment_without_lines_is_one_unapplied_line() -> None:
    [item] = bc(payment("15"))
    assert item.operation is not None
    assert item.operation.children == {
        "customerPayments": [
            {**PAYMENT_BODY, "amount": -15, "description": "Unapplied payment PAY-7"}
        ]
    }


def test_a_zero_payment_is_an_error_with_a_plain_message() -> None:
    items = bc(payment("0", "5"))
    assert [(i.outcome, i.table) for i in items] == [
        ("error", "PaymentHeader"),
        ("error", "PaymentLine"),
    ]
    assert items[0].message == (
        "Missing payment amount. A payment needs a non-zero paidAmount. Resolution: Check the "
        "payment on the device; a zero payment cannot be posted. (PaymentHeader row p1; "
        "mapping bc-field-sales, tables.PaymentHeader.checks[0])"
    )


@pytest.mark.parametrize("table", ["CustomerActivity", "DocumentSerieUpdate", "SalesLineInventory"])
def test_ledger_only_tables_are_ignored(table: str) -> None:
    assert bc([rec(table, DMS_ROWID="x1")]) == [MappedItem(None, "ignored", table, "x1")]


def test_an_unknown_table_quarantines() -> None:
    [item] = bc([rec("TransferHeader", DMS_ROWID="t1", No="T1")])
    assert (item.outcome, item.message) == (
        "error",
        "Table TransferHeader is not in mapping bc-field-sales, whose unknown_tables policy "
        "is quarantine.",
    )


def test_a_deleted_order_record_is_a_delete_on_its_key() -> None:
    [item] = bc([rec("SalesHeader", Status.DELETE, DocumentType="0", No="SO-1")])
    assert item.operation is not None
    assert (item.operation.entity, item.operation.action, item.operation.key) == (
        "salesOrders",
        "delete",
        {"externalDocumentNumber": "SO-1"},
    )


# -- the vendor's real packets ---------------------------------------------------------------
def test_the_vendor_return_order_maps_to_a_credit_memo(map_vendor_packet: MapVendorPacket) -> None:
    items = map_vendor_packet("bc-field-sales", VENDOR_RETURN_ORDER)
    assert [(i.outcome, i.table) for i in items] == [
        ("ignored", "CustomerActivity"),
        ("ignored", "SalesLineInventory"),
        ("ignored", "SalesLineInventory"),
        ("ignored", "SalesLineInventory"),
        ("ignored", "SalesLineInventory"),
        ("mapped", "SalesHeader"),
    ]
    line = {"unitPrice": 0, "discountAmount": 0, "lineType": "Item"}
    # Codes become BC ids by look-up: payment terms, and the return reason (credit memos).
    codes = {
        name: (ref.path, ref.entity, ref.match, ref.value)
        for name, ref in items[-1].operation.lookups.items()
    }
    assert codes == {
        "paymentTermsId": (("body", "paymentTermsId"), "paymentTerms", "code", "00DAYS"),
        "customerReturnReasonId": (
            ("body", "customerReturnReasonId"),
            "customerReturnReasons",
            "code",
            "02",
        ),
    }
    assert replace(items[-1].operation, lookups={}) == Operation(
        entity="salesCreditMemos",
        action="create",
        key={"externalDocumentNumber": "RO-000018"},
        body={
            "externalDocumentNumber": "RO-000018",
            "customerNumber": "BG00002",
            "billToCustomerNumber": "BG00002",
            "discountAmount": 0,
            "creditMemoDate": "2021-07-14",
        },
        children={
            "salesCreditMemoLines": [
                {
                    "sequence": 1000,
                    "lineObjectNumber": "60105",
                    "quantity": 2,
                    "unitOfMeasureCode": "КГ",
                    **line,
                },
                {
                    "sequence": 2000,
                    "lineObjectNumber": "10017",
                    "quantity": 3,
                    "unitOfMeasureCode": "БР",
                    **line,
                },
                {
                    "sequence": 3000,
                    "lineObjectNumber": "60105",
                    "quantity": 2,
                    "unitOfMeasureCode": "КГ",
                    **line,
                },
                {
                    "sequence": 4000,
                    "lineObjectNumber": "60102",
                    "quantity": 3,
                    "unitOfMeasureCode": "КГ",
                    **line,
                },
            ]
        },
        source=[
            ("SalesHeader", "8f760948-7745-43e8-bf42-126ea9ca75a1"),
            ("SalesLine", "55caea85-10dc-4827-8926-ad9a4c3ae0f8"),
            ("SalesLine", "367818b7-1996-4ad3-8ce0-d71afee55618"),
            ("SalesLine", "edc285f9-7557-47e5-9658-d46d5c438c99"),
            ("SalesLine", "318bbcc3-e5d6-4041-a0f4-aedf74fcb946"),
        ],
    )


@pytest.mark.parametrize(
    ("packet_id", "table"),
    [
        (VENDOR_VISIT_START, "CustomerActivity"),
        (VENDOR_VISIT_END, "CustomerActivity"),
        (VENDOR_SERIES_UPDATE, "DocumentSerieUpdate"),
    ],
    ids=["visit-start", "visit-end", "series-update"],
)
def test_the_vendor_visit_and_counter_packets_are_ignored(
    map_vendor_packet: MapVendorPacket, packet_id: str, table: str
) -> None:
    items = map_vendor_packet("bc-field-sales", packet_id)
    assert [(i.outcome, i.table, i.operation) for i in items] == [("ignored", table, None)]
