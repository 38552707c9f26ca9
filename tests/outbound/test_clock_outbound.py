"""The clock's outbound jobs: pushes per user, subscription checks, fallback polls."""

from __future__ import annotations

import logging

from packetworker.pipeline.clock import OutboundSends, make_scheduler, send_outbound
from packetworker.settings import Settings


def settings(**values) -> Settings:
    return Settings(_env_file=None, **values)


class Sent(list):
    def sends(self) -> OutboundSends:
        return OutboundSends(
            push=lambda user, mode: self.append(("push", user, mode)),
            renew=lambda: self.append(("renew",)),
            poll_changes=lambda resource: self.append(("poll", resource)),
        )


def jobs(scheduler) -> dict:
    return {job.id: job for job in scheduler.get_jobs()}


def test_no_outbound_jobs_without_outbound_settings():
    scheduler = make_scheduler(settings(dm_app_area="north"), send=lambda area: None)

    assert sorted(jobs(scheduler)) == ["poll:north"]


def test_one_push_job_per_user_every_outbound_interval():
    sent = Sent()
    scheduler = make_scheduler(
        settings(outbound_users="u1, u2", outbound_interval=120),
        send=lambda area: None,
        outbound=sent.sends(),
    )

    found = jobs(scheduler)
    assert sorted(found) == ["push:u1", "push:u2"]
    job = found["push:u1"]
    assert (job.max_instances, job.coalesce) == (1, True)
    assert job.trigger.interval.total_seconds() == 120
    job.func(*job.args)
    assert sent == [("push", "u1", "incremental")]


def test_a_webhook_url_adds_renewals_and_polls_of_document_resources():
    sent = Sent()
    scheduler = make_scheduler(
        settings(
            webhook_url="https://example.test/bc/webhook",
            webhook_resources="items,salesShipments,salesInvoices",
            webhook_check_interval=600,
            outbound_poll_interval=60,
        ),
        send=lambda area: None,
        outbound=sent.sends(),
    )

    found = jobs(scheduler)
    assert sorted(found) == [
        "poll-changes:salesInvoices",
        "poll-changes:salesShipments",
        "webhooks:renew",
    ]
    assert found["webhooks:renew"].trigger.interval.total_seconds() == 600
    assert found["poll-changes:salesShipments"].trigger.interval.total_seconds() == 60
    for job in found.values():
        job.func(*job.args)
    assert sorted(sent) == [("poll", "salesInvoices"), ("poll", "salesShipments"), ("renew",)]


def test_a_failed_outbound_publish_is_logged_not_raised(caplog):
    def broken(*args) -> None:
        raise ConnectionError("redis is away")

    with caplog.at_level(logging.WARNING, logger="packetworker.pipeline.clock"):
        assert send_outbound("push", broken, "u1", "incremental") is False

    assert [r.getMessage() for r in caplog.records] == ["Could not enqueue push: redis is away"]
