"""The BC emulator refuses sales documents of blocked or missing customers as BC does
(business-central.md §3.4.2; Customer.CheckBlockedCustOnDocs), over real HTTP."""

from __future__ import annotations

import pytest

from packetworker.targets.bc import BCError

# (customer `blocked`, entity set) -> refused?  business-central.md §3.4.2, at creation.
RULES = {
    ("All", "salesOrders"): True,
    ("All", "salesInvoices"): True,
    ("All", "salesCreditMemos"): True,
    ("Invoice", "salesOrders"): True,
    ("Invoice", "salesInvoices"): True,
    ("Invoice", "salesCreditMemos"): False,
    ("Ship", "salesOrders"): True,
    ("Ship", "salesInvoices"): False,
    ("Ship", "salesCreditMemos"): False,
    (" ", "salesOrders"): False,
    (" ", "salesInvoices"): False,
    (" ", "salesCreditMemos"): False,
}


@pytest.mark.parametrize(("blocked", "entity_set"), list(RULES), ids=lambda v: v.strip() or "-")
def test_each_block_type_refuses_exactly_the_document_types_bc_refuses(
    sandbox, client, blocked, entity_set
):
    sandbox.add_customer(number="C-100", blocked=blocked)
    body = {"customerNumber": "C-100", "externalDocumentNumber": "M-1"}

    if RULES[(blocked, entity_set)]:
        with pytest.raises(BCError) as refused:
            client.create(entity_set, body)
        assert (refused.value.status, refused.value.code) == (400, "Application_DialogException")
        assert refused.value.bc_message.startswith(
            "You cannot create this type of document when Customer C-100 is blocked with type "
            f"{blocked}"
        )
        assert sandbox.store(None, entity_set) == []
    else:
        created = client.create(entity_set, body)
        assert created["customerNumber"] == "C-100"


def test_a_blocked_bill_to_customer_refuses_the_document_too(sandbox, client):
    sandbox.add_customer(number="C-1")
    sandbox.add_customer(number="C-2", blocked="All")

    with pytest.raises(BCError) as refused:
        client.create("salesOrders", {"customerNumber": "C-1", "billToCustomerNumber": "C-2"})

    assert "Customer C-2 is blocked with type All" in refused.value.bc_message


def test_a_missing_customer_is_refused_with_the_api_pages_message(sandbox, client):
    with pytest.raises(BCError) as sell_to:
        client.create("salesOrders", {"customerNumber": "C-404"})
    sandbox.add_customer(number="C-1")
    with pytest.raises(BCError) as bill_to:
        client.create("salesOrders", {"customerNumber": "C-1", "billToCustomerNumber": "C-404"})

    assert (sell_to.value.code, sell_to.value.bc_message.split("  CorrelationId")[0]) == (
        "Application_DialogException",
        "The sell-to customer cannot be found.",
    )
    assert bill_to.value.bc_message.startswith("The bill-to customer cannot be found.")


def test_a_document_is_accepted_once_its_customer_is_unblocked(sandbox, client):
    customer = sandbox.add_customer(number="C-100", blocked="All")
    with pytest.raises(BCError):
        client.create("salesOrders", {"customerNumber": "C-100"})

    client.update("customers", customer["id"], {"blocked": " "}, etag="*")
    created = client.create("salesOrders", {"customerNumber": "C-100"})

    assert created["customerNumber"] == "C-100"


def test_changing_other_fields_of_a_document_whose_customer_got_blocked_is_allowed(sandbox, client):
    customer = sandbox.add_customer(number="C-100")
    order = client.create("salesOrders", {"customerNumber": "C-100"})
    client.update("customers", customer["id"], {"blocked": "All"}, etag="*")

    changed = client.update("salesOrders", order["id"], {"externalDocumentNumber": "M-9"}, etag="*")

    assert changed["externalDocumentNumber"] == "M-9"


# Customer.CheckBlockedCustOnJnls for a Payment journal line: only All refuses it.
@pytest.mark.parametrize(
    ("blocked", "refused"), [("All", True), ("Invoice", False), ("Ship", False)]
)
def test_a_payment_line_is_refused_only_for_a_customer_blocked_all(
    sandbox, client, blocked, refused
):
    sandbox.add_customer(number="C-100", blocked=blocked)
    journal = sandbox.add("customerPaymentJournals", code="GENERAL")
    path = f"customerPaymentJournals({journal['id']})/customerPayments"
    body = {"customerNumber": "C-100", "amount": -10}

    if refused:
        with pytest.raises(BCError) as error:
            client.create(path, body)
        assert (error.value.status, error.value.code) == (400, "Application_DialogException")
        assert "Customer C-100 is blocked with type All" in error.value.bc_message
        assert sandbox.store(None, "customerPayments") == []
    else:
        assert client.create(path, body)["customerNumber"] == "C-100"


def test_a_payment_line_of_an_unknown_customer_is_refused_with_the_pages_message(sandbox, client):
    journal = sandbox.add("customerPaymentJournals", code="GENERAL")
    path = f"customerPaymentJournals({journal['id']})/customerPayments"

    with pytest.raises(BCError) as error:
        client.create(path, {"customerNumber": "C-404", "amount": -10})

    assert error.value.bc_message.startswith('The "customerNumber" does not match to a Customer.')


def test_with_the_switch_accepting_it_a_blocked_customers_payment_line_is_taken(sandbox, client):
    sandbox.blocked_payments = "accept"
    sandbox.add_customer(number="C-100", blocked="All")
    journal = sandbox.add("customerPaymentJournals", code="GENERAL")
    path = f"customerPaymentJournals({journal['id']})/customerPayments"

    created = client.create(path, {"customerNumber": "C-100", "amount": -10})

    assert created["customerNumber"] == "C-100"
