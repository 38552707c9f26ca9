"""The shipped CRM mappings: `dataverse-field-sales` and `crmaas-field-sales`."""

from __future__ import annotations

from packetworker.packets.model import Record
from packetworker.targets.mapping import LookupRef, MappedItem, Operation

from .conftest import VENDOR_RETURN_ORDER, VENDOR_VISIT_START, MapVendorPacket, rec, run
from .field_sales import APP_LINE, CUSTOMER, sales_lines

VISIT_START = rec(
    "CustomerActivity",
    DMS_ROWID="a1",
    CustomerNo="C0002",
    CustomerTitle="Corner Shop",
    VisitNo="R-1",
    OnDate="2021-07-14T10:29:05.226Z",
    Action="101",
)
ORDER = [
    rec("SalesHeader", DMS_ROWID="h1", no="SO-1", documentType="0", customerNo="C0002"),
    *sales_lines(
        APP_LINE, "SO-1", ("1000", "I1", "2", "1.5", "PCS"), ("2000", "I2", "3", "0.1", "KG")
    ),
]


def dataverse(records: list[Record]) -> list[MappedItem]:
    return run("dataverse-field-sales", records)


def crmaas(records: list[Record]) -> list[MappedItem]:
    return run("crmaas-field-sales", records)


# -- Dataverse ------------------------------------------------------------------------------
def test_dataverse_customer_is_an_account_upsert_with_its_primary_contact() -> None:
    [item] = dataverse([CUSTOMER])
    assert item.operation == Operation(
        entity="accounts",
        action="upsert",
        key={"accountnumber": "C0002"},
        body={
            "accountnumber": "C0002",
            "name": "Corner Shop",
            "address1_line1": "1 Main St",
            "address1_city": "Sofia",
            "telephone1": "+359 2 000",
            "address1_latitude": 42.6610964,
            "address1_longitude": 23.2916713,
            "primarycontactid": {"lastname": "Ivan Petrov"},
        },
        source=[("Customer", "c1")],
        update_fields=[
            "address1_line1",
            "address1_city",
            "telephone1",
            "emailaddress1",
            "address1_latitude",
            "address1_longitude",
        ],
    )


def test_dataverse_visit_is_an_appointment_keyed_by_the_mobile_row_id() -> None:
    [item] = dataverse([VISIT_START])
    assert item.operation == Operation(
        entity="appointments",
        action="upsert",
        key={"activityid": "a1"},
        body={
            "activityid": "a1",
            "scheduledstart": "2021-07-14T10:29:05.226Z",
            "scheduledend": "2021-07-14T10:29:05.226Z",
            "subject": "Visit start Corner Shop R-1",
        },
        lookups={
            "regardingobjectid_account_appointment@odata.bind": LookupRef(
                path=("body", "regardingobjectid_account_appointment@odata.bind"),
                entity="accounts",
                match="accountnumber",
                value="C0002",
                bind="/accounts({id})",
                message="The visited customer is not an account in Dataverse; sync the "
                "customer first.",
            )
        },
        source=[("CustomerActivity", "a1")],
    )


def test_dataverse_order_is_a_salesorder_with_details_and_lookups() -> None:
    [item] = dataverse(ORDER)
    assert item.operation is not None
    op = item.operation
    assert (op.entity, op.action, op.key, op.body, op.children) == (
        "salesorders",
        "create",
        {"salesorderid": "h1"},
        {"salesorderid": "h1", "name": "SO-1"},
        {
            "order_details": [
                {
                    "lineitemnumber": 1000,
                    "quantity": 2,
                    "priceperunit": 1.5,
                    "ispriceoverridden": True,
                },
                {
                    "lineitemnumber": 2000,
                    "quantity": 3,
                    "priceperunit": 0.1,
                    "ispriceoverridden": True,
                },
            ]
        },
    )
    assert {k: (r.entity, r.value) for k, r in op.lookups.items()} == {
        "customerid_account@odata.bind": ("accounts", "C0002"),
        "order_details/0/productid@odata.bind": ("products", "I1"),
        "order_details/0/uomid@odata.bind": ("uoms", "PCS"),
        "order_details/1/productid@odata.bind": ("products", "I2"),
        "order_details/1/uomid@odata.bind": ("uoms", "KG"),
    }


def test_dataverse_filters_invoices_and_returns() -> None:
    items = dataverse([rec("SalesHeader", DMS_ROWID="h9", no="RO-1", documentType="2")])
    assert [(i.outcome, i.dms_rowid) for i in items] == [("filtered", "h9")]


def test_dataverse_maps_the_vendor_visit_start(map_vendor_packet: MapVendorPacket) -> None:
    [item] = map_vendor_packet("dataverse-field-sales", VENDOR_VISIT_START)
    assert item.operation is not None
    assert (item.operation.entity, item.operation.key, item.operation.body["subject"]) == (
        "appointments",
        {"activityid": "9a7aeae2-e45f-4e38-84d8-d10aa4bee819"},
        "Visit start Виолета Желязкова Терзиева R-2107141614",
    )


def test_dataverse_maps_the_vendor_return_order_as_filtered(
    map_vendor_packet: MapVendorPacket,
) -> None:
    items = map_vendor_packet("dataverse-field-sales", VENDOR_RETURN_ORDER)
    assert [(i.outcome, i.table) for i in items] == [
        ("mapped", "CustomerActivity"),
        *[("ignored", "SalesLineInventory")] * 4,
        ("filtered", "SalesHeader"),
        *[("filtered", "SalesLine")] * 4,
    ]


# -- CRM as a Service -----------------------------------------------------------------------
def test_crmaas_customer_is_an_organization_with_its_contact() -> None:
    [item] = crmaas([CUSTOMER])
    assert item.operation == Operation(
        entity="organizations",
        action="upsert",
        key={"name": "Corner Shop"},
        body={
            "name": "Corner Shop",
            "customFields": {"customer_number": "C0002"},
            "address": "1 Main St, Sofia",
            "phone": [{"label": "Office", "value": "+359 2 000", "primary": True}],
        },
        children={"contacts": [{"name": "Ivan Petrov"}]},
        source=[("Customer", "c1")],
        update_fields=["address", "email", "phone"],
    )


def test_crmaas_visit_is_a_case_on_the_visited_organization() -> None:
    [item] = crmaas([VISIT_START])
    assert item.operation is not None
    op = item.operation
    assert (op.entity, op.key, op.body) == (
        "cases",
        {"title": "Visit start Corner Shop R-1 2021-07-14T10:29:05.226Z"},
        {
            "status": "open",
            "title": "Visit start Corner Shop R-1 2021-07-14T10:29:05.226Z",
            "expectedDate": "2021-07-14",
        },
    )
    assert op.lookups["organizationId"].value == "C0002"


def test_crmaas_order_is_an_opportunity_valued_by_its_lines() -> None:
    [item] = crmaas(ORDER)
    assert item.operation is not None
    op = item.operation
    assert (op.entity, op.body, op.children, op.source) == (
        "opportunities",
        {"title": "Order SO-1", "value": {"amount": 3.3, "code": "EUR"}},
        {},
        [("SalesHeader", "h1"), ("SalesLine", "l1"), ("SalesLine", "l2")],
    )


def test_crmaas_order_value_prefers_the_document_total() -> None:
    header = rec("SalesHeader", no="SO-2", documentType="0", customerNo="C1", totalAmount="99.9")
    [item] = crmaas([header])
    assert item.operation is not None
    assert item.operation.body["value"] == {"amount": 99.9, "code": "EUR"}


def test_crmaas_maps_the_vendor_return_order_as_an_opportunity(
    map_vendor_packet: MapVendorPacket,
) -> None:
    items = map_vendor_packet("crmaas-field-sales", VENDOR_RETURN_ORDER)
    assert [(i.outcome, i.table) for i in items] == [
        ("mapped", "CustomerActivity"),
        *[("ignored", "SalesLineInventory")] * 4,
        ("mapped", "SalesHeader"),
    ]
    assert items[-1].operation is not None
    assert items[-1].operation.body == {
        "title": "Order RO-000018",
        "value": {"amount": 0, "code": "EUR"},
    }
