"""The clock: one interval job per app area that only enqueues polls, and never dies of a
failed publish."""

from __future__ import annotations

import logging

from packetworker.pipeline.clock import app_areas, make_scheduler, send_poll
from packetworker.settings import Settings


def settings(**values) -> Settings:
    return Settings(_env_file=None, **values)


def test_app_areas_are_comma_separated():
    assert app_areas(settings(dm_app_area=" north, south ,,")) == ["north", "south"]


def test_one_job_per_app_area_that_never_overlaps_and_coalesces_missed_ticks():
    scheduler = make_scheduler(
        settings(dm_app_area="north,south", dm_poll_interval=12, dm_poll_jitter=2),
        send=lambda area: None,
    )

    jobs = {job.id: job for job in scheduler.get_jobs()}
    assert sorted(jobs) == ["poll:north", "poll:south"]
    job = jobs["poll:north"]
    assert (job.max_instances, job.coalesce, job.args) == (1, True, ("north",))
    assert (job.trigger.interval.total_seconds(), job.trigger.jitter) == (12, 2)


def test_a_tick_sends_one_poll():
    sent = []

    assert send_poll("north", send=sent.append) is True
    assert sent == ["north"]


def test_a_failed_publish_is_logged_not_raised(caplog):
    def broken(app_area: str) -> None:
        raise ConnectionError("redis is away")

    with caplog.at_level(logging.WARNING, logger="packetworker.pipeline.clock"):
        assert send_poll("north", send=broken) is False

    assert [(r.app_area, r.getMessage()) for r in caplog.records] == [
        ("north", "Could not enqueue a poll: redis is away")
    ]
