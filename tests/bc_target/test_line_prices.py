"""Line prices as Business Central treats them (business-central.md §3.5.1): the target sends
the packet's price after item, unit and quantity, reads the lines back and patches those BC
repriced, in every way the emulator can be switched; a unit the item lacks fails the
document; a stale etag retries the packet instead of failing or forcing the write."""

from __future__ import annotations

import httpx
import pytest

from packetworker.targets import Outcome, TargetError
from packetworker.targets.mapping import load_mapping

from .conftest import CrashAfter, SimulatedCrash, apply_file, apply_records, rec, vendor_packet

VENDOR_RETURN = "438a12ad-d3cf-43e3-aa5e-f6dbea35224a"
EMULATOR_MODES = [
    pytest.param("json", True, id="json-order"),
    pytest.param("page", True, id="page-order"),
    pytest.param("json", False, id="json-order-zero-fires-nothing"),
    pytest.param("page", False, id="page-order-zero-fires-nothing"),
]


def line_prices(bc, lines: str = "salesCreditMemoLines") -> list[tuple]:
    stored = sorted(bc.store(None, lines), key=lambda line: line["sequence"])
    return [(line["lineObjectNumber"], line["unitPrice"]) for line in stored]


def batches(bc) -> int:
    """`$batch` calls: one creates the document; another one patches prices."""
    return sum(1 for r in bc.requests if r.path.endswith("/$batch"))


def order_with_one_line(**line: str) -> list:
    return [
        rec("SalesHeader", DMS_ROWID="h1", documentType="0", no="SO-P1", customerNo="BG00002"),
        rec("SalesLine", DMS_ROWID="l1", documentNo="SO-P1", lineNo="1000", **line),
    ]


@pytest.mark.parametrize(("order", "zero_fires"), EMULATOR_MODES)
def test_the_vendor_return_keeps_its_zero_prices_when_the_packet_s_price_wins(
    bc, target, order, zero_fires
):
    bc.line_field_order, bc.unchanged_fires = order, zero_fires

    outcomes = apply_file(target, vendor_packet(VENDOR_RETURN))

    assert line_prices(bc) == [("60105", 0), ("10017", 0), ("60105", 0), ("60102", 0)]
    assert bc.store(None, "salesCreditMemos")[0]["totalAmountExcludingTax"] == 0
    assert Outcome.FAILED not in {o.outcome for o in outcomes}
    # Lines are patched only where BC repriced them: in JSON order, with 0 registering,
    # the price sent last is kept and no second `$batch` is needed.
    assert batches(bc) == (1 if (order, zero_fires) == ("json", True) else 2)


def test_a_price_sent_after_a_non_base_unit_is_kept_without_a_correction(bc, target):
    bc.add_item_unit("60105", "КАШОН", 10)  # a carton of 10 kg: BC would price it 98.00

    apply_records(
        target,
        order_with_one_line(no="60105", quantity="2", unitPrice="7.5", unitOfMeasure="КАШОН"),
    )

    assert line_prices(bc, "salesOrderLines") == [("60105", 7.5)]
    assert batches(bc) == 1


def test_bc_s_price_list_wins_when_the_mapping_says_so(bc, make_target):
    mapping = load_mapping("bc-field-sales")
    target = make_target(
        mapping=mapping.model_copy(
            update={"options": {**mapping.options, "line_prices": "price-list"}}
        )
    )

    apply_file(target, vendor_packet(VENDOR_RETURN))

    assert line_prices(bc) == [("60105", 9.8), ("10017", 1.1), ("60105", 9.8), ("60102", 14.2)]
    assert batches(bc) == 1


def test_an_unknown_line_prices_option_is_refused_when_the_target_starts(make_target):
    mapping = load_mapping("bc-field-sales")

    with pytest.raises(ValueError, match="line_prices = 'cheapest'"):
        make_target(
            mapping=mapping.model_copy(
                update={"options": {**mapping.options, "line_prices": "cheapest"}}
            )
        )


def test_a_crash_before_the_price_correction_is_healed_by_the_retry(bc, make_target):
    bc.line_field_order = "page"  # credit memo lines price before quantity: BC reprices
    crashing = make_target(transport=CrashAfter(limit=1))  # the create goes, then it dies

    with pytest.raises(SimulatedCrash):
        apply_file(crashing, vendor_packet(VENDOR_RETURN))
    assert line_prices(bc) == [("60105", 9.8), ("10017", 1.1), ("60105", 9.8), ("60102", 14.2)]

    outcomes = apply_file(make_target(), vendor_packet(VENDOR_RETURN))

    assert line_prices(bc) == [("60105", 0), ("10017", 0), ("60105", 0), ("60102", 0)]
    assert len(bc.store(None, "salesCreditMemos")) == 1
    memo = [o for o in outcomes if o.table in ("SalesHeader", "SalesLine")]
    assert {o.outcome for o in memo} == {Outcome.APPLIED}


def test_a_unit_the_item_does_not_have_fails_the_document_with_bc_s_error(bc, target):
    outcomes = apply_records(
        target, order_with_one_line(no="60105", quantity="1", unitOfMeasure="ПАЛЕТ")
    )

    assert [o.outcome for o in outcomes] == [Outcome.FAILED, Outcome.FAILED]
    assert "(400 Internal_InvalidTableRelation)" in outcomes[0].message
    assert "(ПАЛЕТ)" in outcomes[0].message
    assert bc.store(None, "salesOrders") == []


class ChangesCustomerFirst(httpx.BaseTransport):
    """Someone edits the customer in BC between the target's look-up and its `$batch`."""

    def __init__(self, bc, number: str) -> None:
        self.bc, self.number, self.done = bc, number, False
        self._inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/$batch") and not self.done:
            self.done = True
            with self.bc.db.lock:
                cid = self.bc.company()["id"]
                row = next(
                    c
                    for c in self.bc.db.table(cid, "customers").values()
                    if c["number"] == self.number
                )
                self.bc.db.update(cid, "customers", row["id"], {"phoneNumber": "+359 2 000"}, "*")
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()


@pytest.mark.parametrize("status", [409, 412])
def test_a_customer_changed_since_its_look_up_is_re_read_not_overwritten_blindly(
    bc, make_target, status
):
    bc.etag_conflict_status = status
    packet = [rec("Customer", DMS_ROWID="c1", No="BG00002", Name="Витоша", City="Перник")]
    racing = make_target(transport=ChangesCustomerFirst(bc, "BG00002"))

    with pytest.raises(TargetError) as info:
        apply_records(racing, packet)
    assert info.value.transient
    assert {c["number"]: c["city"] for c in bc.store(None, "customers")}["BG00002"] == "София"

    outcomes = apply_records(make_target(), packet)

    assert [o.outcome for o in outcomes] == [Outcome.APPLIED]
    customer = next(c for c in bc.store(None, "customers") if c["number"] == "BG00002")
    assert (customer["city"], customer["phoneNumber"]) == ("Перник", "+359 2 000")
