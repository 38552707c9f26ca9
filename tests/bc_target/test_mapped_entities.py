"""The entity sets BC's target treats in their own way come from the mapping's
`[options.entities]` (data, not code): which documents a blocked customer holds, and a
mapping without the section is refused naming file and path."""

from __future__ import annotations

import pytest

from packetworker.targets import Outcome
from packetworker.targets.mapping import MappingError, parse_mapping
from packetworker.targets.mapping.config import read_mapping_file

from .conftest import apply_records, rec

ALL = (
    'All = ["salesQuotes", "salesOrders", "salesInvoices", "salesCreditMemos", '
    '"customerPayments"]\n'
)


def test_which_documents_a_blocked_customer_holds_is_the_mappings(make_target):
    text, source = read_mapping_file("bc-field-sales")
    assert ALL in text
    orders_not_held = ALL.replace('"salesOrders", ', "")
    target = make_target(mapping=parse_mapping(text.replace(ALL, orders_not_held), source=source))
    packet = [
        rec("Customer", DMS_ROWID="c1", no="NEW-1", name="Kiosk"),  # created blocked (All)
        rec("SalesHeader", DMS_ROWID="h1", no="SO-1", documentType="0", customerNo="NEW-1"),
        rec("SalesLine", DMS_ROWID="l1", documentNo="SO-1", no="W-1001", quantity="2"),
    ]

    outcomes = apply_records(target, packet)

    # BC still refuses the order; the mapping says "All" does not refuse orders, so the
    # customer does not explain the refusal: failed, not held.
    assert [o.outcome for o in outcomes] == [Outcome.APPLIED, Outcome.FAILED, Outcome.FAILED]


def test_a_mapping_without_its_entities_is_refused_naming_file_and_path(make_target):
    text, source = read_mapping_file("bc-field-sales")
    start = text.index("[options.entities]")
    end = text.index("# -- Sales documents")
    without = text[:start] + text[end:]

    with pytest.raises(MappingError) as caught:
        make_target(mapping=parse_mapping(without, source=source))

    assert (caught.value.source, caught.value.path) == ("bc-field-sales.toml", "options.entities")
