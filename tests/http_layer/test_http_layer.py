"""The one HTTP layer (`packetworker.http`): what "never sent" means, and every client —
portal, Business Central, CRM — resending a create only when it certainly did not run.

Peers are the project's emulators over real HTTP; `FailOnce` stands in for the network
failing once, before the request leaves (a pool with no free connection) or after it was
sent (no answer read).
"""

from __future__ import annotations

import httpx
import pytest
from support.portal import DEMO_API_KEY

from packetworker.http import is_transient_status, never_sent, open_client
from packetworker.metrics import METRICS, TARGET_REQUESTS
from packetworker.portal import PortalClient
from packetworker.request_budget import SlotUnavailable
from packetworker.sandbox.bc import BCSandbox
from packetworker.sandbox.crmaas import CrmaasEmulator
from packetworker.targets.bc import BCAuth, BCClient
from packetworker.targets.bc.errors import NoAnswer, NotSent
from packetworker.targets.crmaas import CrmaasClient, CrmaasError, CrmaasNotFound, CrmaasUnavailable


class FailOnce(httpx.BaseTransport):
    """Raises `error` for the first POST; `after_sending` forwards it to the peer first (so
    the peer ran it and only the answer was lost). Everything else goes to the peer."""

    def __init__(self, error: httpx.TransportError, *, after_sending: bool = False) -> None:
        self.error, self.after_sending = error, after_sending
        self.failed = False
        self._inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and not self.failed:
            self.failed = True
            if self.after_sending:
                self._inner.handle_request(request).close()
            raise self.error
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()


@pytest.mark.parametrize(
    ("error", "unsent"),
    [
        (httpx.ConnectError("refused"), True),
        (httpx.ConnectTimeout("slow connect"), True),
        (httpx.PoolTimeout("no free connection"), True),
        (SlotUnavailable("no request slot", retry_after=1), True),
        (httpx.ReadTimeout("no answer"), False),
        (httpx.WriteTimeout("half sent"), False),
        (httpx.RemoteProtocolError("reset"), False),
    ],
)
def test_only_a_request_that_never_left_counts_as_never_sent(error, unsent):
    assert never_sent(error) is unsent


@pytest.mark.parametrize(
    ("status", "transient"),
    [(408, True), (429, True), (500, True), (503, True), (400, False), (404, False)],
)
def test_transient_statuses_are_throttling_timeouts_and_server_errors(status, transient):
    assert is_transient_status(status) is transient


JANE = {"name": "Jane Doe", "email": [{"label": "Work", "value": "jane@work.com", "primary": True}]}


@pytest.fixture
def crmaas():
    with CrmaasEmulator(primary_key="k1", secondary_key="k2") as emulator:
        yield emulator


def crmaas_client(crmaas: CrmaasEmulator, transport: httpx.BaseTransport) -> CrmaasClient:
    return CrmaasClient(
        crmaas.url, primary_key="k1", transport=transport, sleep=lambda _: None, attempts=3
    )


def test_a_crm_create_that_found_no_free_connection_is_sent_again(crmaas):
    with crmaas_client(crmaas, FailOnce(httpx.PoolTimeout("pool full"))) as client:
        client.contacts.create(JANE)

    assert [c["name"] for c in crmaas.records("contacts")] == ["Jane Doe"]


def test_a_crm_create_whose_answer_was_lost_is_not_sent_again(crmaas):
    transport = FailOnce(httpx.ReadTimeout("no answer"), after_sending=True)
    with crmaas_client(crmaas, transport) as client, pytest.raises(CrmaasUnavailable):
        client.contacts.create(JANE)

    assert [c["name"] for c in crmaas.records("contacts")] == ["Jane Doe"]


@pytest.fixture
def bc():
    with BCSandbox() as sandbox:
        yield sandbox


def bc_client(bc: BCSandbox, transport: httpx.BaseTransport) -> BCClient:
    auth = BCAuth(token_url=bc.token_url, client_id=bc.client_id, client_secret=bc.client_secret)
    return BCClient(
        api_url=bc.api_url,
        tenant=bc.tenant,
        environment=bc.environment,
        auth=auth,
        transport=transport,
        sleep=lambda _: None,
        retries=3,
    )


def test_a_bc_create_that_found_no_free_connection_is_sent_again(bc):
    with bc_client(bc, FailOnce(httpx.PoolTimeout("pool full"))) as client:
        client.create("customers", {"number": "C-1", "displayName": "One"})

    assert [c["number"] for c in bc.store(None, "customers")] == ["C-1"]


def test_a_bc_create_whose_answer_was_lost_is_a_typed_error_and_not_sent_again(bc):
    transport = FailOnce(httpx.ReadTimeout("no answer"), after_sending=True)
    with bc_client(bc, transport) as client, pytest.raises(NoAnswer) as raised:
        client.create("customers", {"number": "C-1", "displayName": "One"})

    assert raised.value.transient
    assert [c["number"] for c in bc.store(None, "customers")] == ["C-1"]


def test_a_bc_request_that_never_connects_ends_as_a_typed_error(bc):
    transport = httpx.HTTPTransport()
    with (
        BCClient(
            api_url="http://127.0.0.1:9",
            tenant="t",
            environment="e",
            auth=httpx.Auth(),
            transport=transport,
            sleep=lambda _: None,
            retries=2,
        ) as client,
        pytest.raises(NotSent),
    ):
        client.companies()


class CountingLimiter:
    """A request budget that counts the slots taken and still held."""

    def __init__(self) -> None:
        self.taken = 0
        self.held = 0

    def acquire(self):
        self.taken += 1
        self.held += 1

        def release() -> None:
            self.held -= 1

        return release


def test_a_client_on_a_budget_holds_a_slot_per_request_and_counts_it(crmaas):
    limiter = CountingLimiter()
    METRICS.drain()
    with open_client(service="crm-test", limiter=limiter, base_url=crmaas.url) as http:
        http.get("/directory/contacts", headers={"Ocp-Apim-Subscription-Key": "k1"})

    counted = {
        labels: value
        for (name, labels), value in METRICS.drain().items()
        if name == TARGET_REQUESTS
    }
    assert counted == {(("code", "200"), ("target", "crm-test")): 1}
    assert (limiter.taken, limiter.held) == (1, 0)


def test_a_crm_request_the_service_refused_is_not_sent_again(crmaas):
    with crmaas_client(crmaas, httpx.HTTPTransport()) as client:
        with pytest.raises(CrmaasError):
            client.contacts.create({"name": "No Email"})  # the emulator requires an email
        with pytest.raises(CrmaasNotFound):
            client.contacts.get("no-such-id")  # a read: idempotent, yet a 404 is final

    assert len(crmaas.requests_to("POST", "/directory/contacts")) == 1
    assert len(crmaas.requests_to("GET", "/directory/contacts/no-such-id")) == 1


class NoSlots:
    """A request budget that never has a slot free."""

    def __init__(self) -> None:
        self.asked = 0

    def acquire(self):
        self.asked += 1
        raise SlotUnavailable("no slot", retry_after=5)


def test_a_portal_call_without_a_budget_slot_is_handed_back_at_once(portal_sandbox):
    limiter = NoSlots()
    client = PortalClient(
        base_url=portal_sandbox.url,
        app_area="DEMO",
        api_key=DEMO_API_KEY,
        limiter=limiter,
        sleep=lambda _: None,
        retries=5,
    )
    with client, pytest.raises(SlotUnavailable) as raised:
        client.pull()

    assert raised.value.retry_after == 5
    assert limiter.asked == 1
