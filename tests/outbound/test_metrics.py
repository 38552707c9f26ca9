"""`/metrics` collected from real Redis: outbound counters, ledger states, subscriptions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from packetworker.outbound import SubscriptionRecord
from packetworker.settings import Settings
from packetworker.web import collect_metrics


def test_metrics_read_counters_ledger_and_subscriptions(outbound_state):
    namespace = outbound_state.prefix.rsplit(":", 1)[0]
    settings = Settings(_env_file=None, ledger_namespace=namespace)
    outbound_state.count("push_complete", 3)
    expires = (datetime.now(UTC) + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    outbound_state.put_subscription(SubscriptionRecord("items", "webhook", "s1", "e", expires))
    outbound_state.put_subscription(SubscriptionRecord("salesShipments", "polling"))

    samples = list(collect_metrics(settings, outbound_state.client, outbound_state, ["DEMO"]))

    by_key = {(name, tuple(sorted(labels.items()))): value for name, _, labels, value in samples}
    assert by_key[("packetworker_outbound_events_total", (("event", "push_complete"),))] == 3
    assert by_key[("packetworker_packets", (("app_area", "DEMO"), ("state", "applied")))] == 0
    assert by_key[("packetworker_webhook_polling", (("resource", "salesShipments"),))] == 1
    assert by_key[("packetworker_webhook_polling", (("resource", "items"),))] == 0
    left = by_key[("packetworker_webhook_seconds_left", (("resource", "items"),))]
    assert 2 * 86400 - 60 < left <= 2 * 86400
