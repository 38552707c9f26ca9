"""The BC emulator refuses a sales document whose payment terms, shipment method or currency
match no record, as the OnValidate triggers of APIV2SalesOrders/SalesInvoices/
SalesCreditMemos.Page.al do (over real HTTP)."""

from __future__ import annotations

import pytest

from packetworker.sandbox.bc.entities import EMPTY_GUID, ENTITY_SETS
from packetworker.targets.bc import BCError

DOCUMENTS = ("salesOrders", "salesInvoices", "salesCreditMemos")
UNKNOWN = "5b1e6f0a-0000-4000-8000-000000000001"


@pytest.fixture
def known(sandbox) -> dict[str, str]:
    sandbox.add_customer(number="C-1")
    return {
        "paymentTermsId": sandbox.add("paymentTerms", code="14D", displayName="14 days")["id"],
        "shipmentMethodId": sandbox.add("shipmentMethods", code="PICKUP", displayName="Pick-up")[
            "id"
        ],
        "currencyId": sandbox.add("currencies", code="EUR", displayName="Euro")["id"],
    }


def fields_of(entity_set: str) -> set[str]:
    """The properties `entity_set` has in the emulator (as in Microsoft's v2.0 reference)."""
    return set(ENTITY_SETS[entity_set].fields)


@pytest.mark.parametrize("entity_set", DOCUMENTS)
@pytest.mark.parametrize(
    ("field", "value", "label"),
    [
        ("paymentTermsId", UNKNOWN, "Payment Terms"),
        ("shipmentMethodId", UNKNOWN, "Shipment Method"),
        ("currencyId", UNKNOWN, "Currency"),
        ("currencyCode", "XYZ", "Currency"),
    ],
)
def test_an_unknown_reference_refuses_the_document_with_the_pages_error(
    sandbox, client, known, entity_set, field, value, label
):
    assert field in fields_of(entity_set)  # every document page has it (APIV2 pages)

    with pytest.raises(BCError) as refused:
        client.create(entity_set, {"customerNumber": "C-1", field: value})

    assert (refused.value.status, refused.value.code) == (400, "Application_DialogException")
    assert refused.value.bc_message.startswith(f'The "{field}" does not match to a {label}.')
    assert sandbox.store(None, entity_set) == []


@pytest.mark.parametrize("entity_set", DOCUMENTS)
def test_known_references_and_blank_ones_are_taken(sandbox, client, known, entity_set):
    body = {k: v for k, v in known.items() if k in fields_of(entity_set)}

    created = client.create(entity_set, {"customerNumber": "C-1", **body, "currencyCode": "EUR"})
    blank = client.create(
        entity_set,
        {"customerNumber": "C-1", **dict.fromkeys(body, EMPTY_GUID), "currencyCode": ""},
    )

    assert {k: created[k] for k in body} == body
    assert {k: blank[k] for k in body} == dict.fromkeys(body, EMPTY_GUID)


def test_a_patch_to_an_unknown_payment_terms_is_refused_and_changes_nothing(sandbox, client, known):
    order = client.create("salesOrders", {"customerNumber": "C-1", **known})

    with pytest.raises(BCError, match="does not match to a Payment Terms"):
        client.update(
            "salesOrders", order["id"], {"paymentTermsId": UNKNOWN}, etag=order["@odata.etag"]
        )

    [stored] = sandbox.store(None, "salesOrders")
    assert stored["paymentTermsId"] == known["paymentTermsId"]


def test_the_local_currency_code_is_taken_though_no_currency_has_it(sandbox, client, known):
    # The local currency is not a `currencies` row (business-central.md §3.12); the page
    # translates its code to '' (GraphMgtGeneralTools.TranslateCurrencyCodeToNAVCurrencyCode).
    company = sandbox.company()["id"]
    with sandbox.db.lock:
        [info] = sandbox.db.table(company, "companyInformation").values()
        info["currencyCode"] = "BGN"

    created = client.create("salesOrders", {"customerNumber": "C-1", "currencyCode": "BGN"})

    assert created["customerNumber"] == "C-1"
