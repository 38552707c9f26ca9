"""A mapping's `prevent_duplicate`: a record whose key BC already holds fails with the
mapping's message instead of updating the existing entity."""

from __future__ import annotations

from packetworker.targets import Outcome
from packetworker.targets.mapping import load_mapping

from .conftest import api_requests, apply_records, rec


def customers_refused_when_known(make_target):
    mapping = load_mapping("bc-field-sales")
    customer = mapping.tables["Customer"].model_copy(
        update={"prevent_duplicate": True, "duplicate_message": "Customer exists: ask the office."}
    )
    tables = {**mapping.tables, "Customer": customer}
    return make_target(mapping=mapping.model_copy(update={"tables": tables}))


def test_a_known_customer_fails_with_the_mappings_message_and_is_not_updated(bc, make_target):
    target = customers_refused_when_known(make_target)

    [outcome] = apply_records(target, [rec("Customer", No="PV-01042", City="Варна")])

    assert outcome.outcome is Outcome.FAILED
    assert outcome.message == "Customer exists: ask the office."
    assert [c["city"] for c in bc.store(None, "customers") if c["number"] == "PV-01042"] == [
        "Пловдив"
    ]
    assert not [r for r in api_requests(bc) if r[0] in ("PATCH", "POST")]


def test_a_new_customer_is_still_created_when_duplicates_are_prevented(bc, make_target):
    target = customers_refused_when_known(make_target)

    [outcome] = apply_records(target, [rec("Customer", No="NEW-1", Name="Нов клиент")])

    assert outcome.outcome is Outcome.APPLIED
    assert [c["number"] for c in bc.store(None, "customers") if c["number"] == "NEW-1"] == ["NEW-1"]
