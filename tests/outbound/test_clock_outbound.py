"""The clock's outbound jobs: pushes per user, subscription checks, fallback polls."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest

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
        settings(
            outbound_users="u1, u2",
            outbound_interval=120,
            outbound_complete_cron="",
            outbound_stock_interval=0,
        ),
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


def test_each_user_gets_a_nightly_complete_push_and_a_stock_refresh():
    sent = Sent()
    scheduler = make_scheduler(
        settings(
            outbound_users="u1",
            outbound_complete_cron="30 1 * * *",
            outbound_stock_interval=600,
        ),
        send=lambda area: None,
        outbound=sent.sends(),
    )

    found = jobs(scheduler)
    assert sorted(found) == ["push-complete:u1", "push-stock:u1", "push:u1"]
    complete = found["push-complete:u1"]
    after = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)
    assert complete.trigger.get_next_fire_time(None, after) == datetime(
        2026, 3, 5, 1, 30, tzinfo=UTC
    )
    assert found["push-stock:u1"].trigger.interval.total_seconds() == 600
    complete.func(*complete.args)
    stock = found["push-stock:u1"]
    stock.func(*stock.args)
    assert sent == [("push", "u1", "complete"), ("push", "u1", "stock")]


def test_a_malformed_complete_push_schedule_is_a_clear_error():
    with pytest.raises(ValueError, match="OUTBOUND_COMPLETE_CRON 'nightly' is not a crontab"):
        make_scheduler(
            settings(outbound_users="u1", outbound_complete_cron="nightly"),
            send=lambda area: None,
            outbound=Sent().sends(),
        )


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
