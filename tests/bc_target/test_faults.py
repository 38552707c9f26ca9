"""Tokens that expire mid-run and 429 storms cost retries, never a failed packet or a
duplicate; a storm longer than the client's patience is a transient error."""

from __future__ import annotations

import httpx
import pytest

from packetworker.targets import Outcome, TargetError

from .conftest import SAMPLES, apply_file, orders, payments


def test_a_token_expiring_between_packets_is_refreshed_without_a_failure(bc, target):
    apply_file(target, SAMPLES / "sales-order.xml")
    bc.expire_tokens()

    outcomes = apply_file(target, SAMPLES / "return-order.xml")

    assert Outcome.FAILED not in {o.outcome for o in outcomes}
    assert bc.token_grants == ["client_credentials", "client_credentials"]


class ExpireAfterLookup(httpx.HTTPTransport):
    """Expires every token right after the journal lines are looked up: `$batch` meets a 401."""

    def __init__(self, bc) -> None:
        super().__init__()
        self.bc = bc
        self.expired = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if request.url.path.endswith("/customerPayments") and not self.expired:
            self.expired = True
            self.bc.expire_tokens()
        return response


def test_a_token_expiring_mid_packet_is_refreshed_without_a_failure(bc, make_target):
    target = make_target(transport=ExpireAfterLookup(bc))

    outcomes = apply_file(target, SAMPLES / "payment.xml")

    assert [o.outcome for o in outcomes] == [Outcome.SKIPPED, *[Outcome.APPLIED] * 3]
    assert len(payments(bc)) == 3
    assert [r.status for r in bc.requests if r.path.endswith("$batch")] == [401, 200]


def test_a_429_storm_is_ridden_out_with_the_servers_retry_after(bc, target, sleeps):
    bc.throttle(4, retry_after=2)

    outcomes = apply_file(target, SAMPLES / "sales-order.xml")

    assert Outcome.FAILED not in {o.outcome for o in outcomes}
    assert list(orders(bc)) == ["BSO-000241"]
    assert sleeps == [2, 2, 2, 2]


def test_a_storm_longer_than_the_retries_is_transient_and_the_retry_creates_no_duplicate(
    bc, target
):
    apply_file(target, SAMPLES / "new-customer.xml")  # token and company are known now
    bc.throttle(5)

    with pytest.raises(TargetError) as caught:
        apply_file(target, SAMPLES / "sales-order.xml")
    assert caught.value.transient is True

    apply_file(target, SAMPLES / "sales-order.xml")
    assert list(orders(bc)) == ["BSO-000241"]


def test_refused_credentials_hold_the_packet_for_an_operator_instead_of_failing_it(make_target):
    target = make_target(client_secret="not-the-secret")

    with pytest.raises(TargetError, match="refused our credentials") as caught:
        apply_file(target, SAMPLES / "sales-order.xml")

    assert caught.value.transient  # retried once an operator fixes them, not quarantined
    assert "not-the-secret" not in caught.value.message
