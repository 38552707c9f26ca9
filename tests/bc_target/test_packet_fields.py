"""The fields of the real Field Sales packets reach Business Central: the vendor's return
order becomes a credit memo checked field by field, and a document's payment terms,
shipment method and currency codes become the fields BC takes (over real HTTP, emulator)."""

from __future__ import annotations

import json

import httpx

from packetworker.targets.base import ApplyContext, Outcome

from .conftest import api_requests, apply_file, apply_records, rec, vendor_packet

VENDOR_RETURN_ORDER = "438a12ad-d3cf-43e3-aa5e-f6dbea35224a"


class Recorder(httpx.BaseTransport):
    """A real transport that keeps the JSON body of every `$batch` operation it sends."""

    def __init__(self) -> None:
        self.operations: list[dict] = []
        self._inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/$batch"):
            self.operations += json.loads(request.read())["requests"]
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()

    def posted(self, entity_set: str) -> list[dict]:
        return [
            op["body"]
            for op in self.operations
            if op["method"] == "POST" and op["url"].split("?")[0].endswith(entity_set)
        ]


def id_of(bc, entity_set: str, code: str) -> str:
    [row] = [r for r in bc.store(None, entity_set) if r["code"] == code]
    return row["id"]


def test_the_vendor_return_order_becomes_a_credit_memo_field_by_field(bc, make_target):
    sent = Recorder()
    target = make_target(transport=sent)

    outcomes = apply_file(target, vendor_packet(VENDOR_RETURN_ORDER))

    assert [o.outcome for o in outcomes if o.table == "SalesHeader"] == [Outcome.APPLIED]
    [memo] = bc.store(None, "salesCreditMemos")
    assert {k: memo[k] for k in HEADER_FIELDS} == {
        "externalDocumentNumber": "RO-000018",
        "customerNumber": "BG00002",
        "billToCustomerNumber": "BG00002",
        "creditMemoDate": "2021-07-14",
        "paymentTermsId": id_of(bc, "paymentTerms", "00DAYS"),
        "customerReturnReasonId": id_of(bc, "customerReturnReasons", "02"),
        "discountAmount": 0,
    }
    stored = bc.store(None, "salesCreditMemoLines")
    lines = sorted((ln for ln in stored if ln["documentId"] == memo["id"]), key=_sequence)
    fields = ("sequence", "lineType", "lineObjectNumber", "quantity", "unitOfMeasureCode")
    assert [tuple(ln[f] for f in fields) for ln in lines] == [
        (1000, "Item", "60105", 2, "КГ"),
        (2000, "Item", "10017", 3, "БР"),
        (3000, "Item", "60105", 2, "КГ"),
        (4000, "Item", "60102", 3, "КГ"),
    ]
    # Prices and discounts as the mapping sends them: the packet's 0 on every line.
    [body] = sent.posted("salesCreditMemos")
    assert [
        (line["lineObjectNumber"], line["quantity"], line["unitPrice"], line["discountAmount"])
        for line in body["salesCreditMemoLines"]
    ] == [("60105", 2, 0, 0), ("10017", 3, 0, 0), ("60105", 2, 0, 0), ("60102", 3, 0, 0)]


def _sequence(line: dict) -> int:
    return line["sequence"]


HEADER_FIELDS = (
    "externalDocumentNumber",
    "customerNumber",
    "billToCustomerNumber",
    "creditMemoDate",
    "paymentTermsId",
    "customerReturnReasonId",
    "discountAmount",
)


def order(**header: str) -> list:
    """An order on the real SLA packets' model, with one line."""
    fields = {
        "no": "SO-77",
        "documentType": "0",
        "dateCreated": "2026-07-01T08:00:00Z",
        "customerNo": "BG00002",
        "invoiceAccount": "BG00002",
        **header,
    }
    line = {"no": "10017", "lineNo": "1000", "documentNo": "SO-77", "quantity": "4"}
    return [rec("SalesHeader", DMS_ROWID="h-77", **fields), rec("SalesLine", **line)]


def test_payment_terms_shipment_method_and_currency_reach_the_order(bc, make_target):
    sent = Recorder()
    target = make_target(transport=sent)

    outcomes = apply_records(
        target, order(paymentTerm="14DAYS", shipmentMethod="PICKUP", currencyCode="EUR")
    )

    assert [o.outcome for o in outcomes if o.table == "SalesHeader"] == [Outcome.APPLIED]
    [stored] = bc.store(None, "salesOrders")
    assert stored["paymentTermsId"] == id_of(bc, "paymentTerms", "14DAYS")
    assert stored["shipmentMethodId"] == id_of(bc, "shipmentMethods", "PICKUP")
    assert stored["currencyCode"] == "EUR"
    # An order has no return reason field: none is sent even when the packet has a reason.
    [body] = sent.posted("salesOrders")
    assert "customerReturnReasonId" not in body


def test_an_order_with_a_reason_sends_no_return_reason(bc, make_target):
    sent = Recorder()
    target = make_target(transport=sent)

    apply_records(target, order(reason="02"))

    [body] = sent.posted("salesOrders")
    assert "customerReturnReasonId" not in body
    assert len(bc.store(None, "salesOrders")) == 1


def test_unknown_payment_terms_fail_the_document_with_the_mappings_sentence(bc, target):
    outcomes = apply_records(target, order(paymentTerm="99DAYS"))

    [header] = [o for o in outcomes if o.table == "SalesHeader"]
    assert header.outcome == Outcome.FAILED
    assert "payment terms code is not in Business Central" in header.message
    assert bc.store(None, "salesOrders") == []


def test_a_group_looks_each_code_up_once_found_or_not(bc, target):
    packets = []
    for n, terms in enumerate(["14DAYS", "14DAYS", "99DAYS", "99DAYS"]):
        records = order(no=f"SO-{n}", paymentTerm=terms)
        records[0].fields["DMS_ROWID"] = f"h-{n}"
        records[1].fields["documentNo"] = f"SO-{n}"
        ctx = ApplyContext(app_area="TEST", packet_id=f"p{n}", user="rep-1")
        packets.append((records, ctx))
    bc.requests.clear()

    results = target.apply_group(packets)

    assert [[o.outcome for o in r if o.table == "SalesHeader"] for r in results] == [
        [Outcome.APPLIED],
        [Outcome.APPLIED],
        [Outcome.FAILED],
        [Outcome.FAILED],
    ]
    assert api_requests(bc).count(("GET", "paymentTerms")) == 2  # one per code, not per order
