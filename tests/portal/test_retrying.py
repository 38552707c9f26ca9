"""The shared HTTP retry policy (`packetworker.retrying`): Retry-After and waits (pure)."""

from __future__ import annotations

import pytest

from packetworker.retrying import parse_retry_after, retry_after_of, retrying

NOW = 1_700_000_000.0  # 2023-11-14T22:13:20Z


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        (" 7 ", 7.0),
        ("1.5", 1.5),
        ("0", 0.0),
        ("-3", 0.0),  # a negative delay means "now"
        ("Tue, 14 Nov 2023 22:14:20 GMT", 60.0),
        ("Tue, 14 Nov 2023 22:13:20 GMT", 0.0),
        ("Tue, 14 Nov 2023 22:00:00 GMT", 0.0),  # a date in the past: at once
        ("Tue, 14 Nov 2023 22:13:30 +0000", 10.0),
        ("Tue, 14 Nov 2023 23:13:30 +0100", 10.0),  # the zone is honoured
        ("Tue, 14 Nov 2023 22:13:30", 10.0),  # no zone: HTTP dates are GMT
    ],
)
def test_retry_after_is_seconds_from_delta_or_http_date(value, seconds):
    assert parse_retry_after(value, now=NOW) == seconds


@pytest.mark.parametrize("value", [None, "", "soon", "inf", "nan", "Someday, 99 Foo"])
def test_retry_after_that_cannot_be_read_is_none(value):
    assert parse_retry_after(value, now=NOW) is None


def test_retry_after_http_date_defaults_to_the_current_time():
    assert parse_retry_after("Mon, 01 Jan 2001 00:00:00 GMT") == 0.0


class Busy(Exception):
    def __init__(self, retry_after: float | None = None) -> None:
        super().__init__("busy")
        self.retry_after = retry_after


def test_retry_after_of_reads_the_errors_attribute():
    assert retry_after_of(Busy(3)) == 3.0
    assert retry_after_of(Busy()) is None
    assert retry_after_of(ValueError()) is None
    assert retry_after_of(None) is None


def failing(*errors: Exception):
    """A call that raises `errors` in turn, then answers "ok"; counts its calls."""
    pending = list(errors)
    calls = []

    def call() -> str:
        calls.append(1)
        if pending:
            raise pending.pop(0)
        return "ok"

    return call, calls


def policy(sleeps: list[float], **options):
    defaults = {
        "retry": lambda error: isinstance(error, Busy),
        "attempts": 4,
        "backoff_base": 1.0,
        "backoff_max": 10.0,
        "sleep": sleeps.append,
    }
    return retrying(**{**defaults, **options})


def test_retry_after_replaces_the_backoff():
    sleeps: list[float] = []
    call, calls = failing(Busy(4), Busy(2))

    assert policy(sleeps)(call) == "ok"
    assert (sleeps, len(calls)) == ([4.0, 2.0], 3)


def test_without_retry_after_the_backoff_is_jittered_and_capped():
    sleeps: list[float] = []
    call, _ = failing(Busy(), Busy(), Busy())

    policy(sleeps, backoff_max=2.0)(call)

    assert len(sleeps) == 3
    assert all(0 <= s <= 2.0 for s in sleeps)


def test_a_long_retry_after_gives_up_at_once_by_default():
    sleeps: list[float] = []
    call, calls = failing(Busy(60))

    with pytest.raises(Busy) as caught:
        policy(sleeps)(call)

    assert (caught.value.retry_after, sleeps, len(calls)) == (60, [], 1)


def test_a_long_retry_after_can_be_capped_instead():
    sleeps: list[float] = []
    call, _ = failing(Busy(60))

    assert policy(sleeps, long_waits="cap")(call) == "ok"
    assert sleeps == [10.0]


def test_retry_after_slept_out_by_the_caller_is_not_waited_again():
    sleeps: list[float] = []
    call, calls = failing(Busy(5), Busy())

    policy(sleeps, wait_retry_after=False)(call)

    assert len(calls) == 3
    assert len(sleeps) == 1  # only the backoff; the 0 s wait is not slept


def test_attempts_run_out_and_the_last_error_is_raised():
    sleeps: list[float] = []
    call, calls = failing(*(Busy(1) for _ in range(5)))

    with pytest.raises(Busy):
        policy(sleeps, attempts=3)(call)

    assert (len(calls), sleeps) == (3, [1.0, 1.0])


def test_errors_the_predicate_refuses_are_not_retried():
    sleeps: list[float] = []
    call, calls = failing(ValueError("bad"))

    with pytest.raises(ValueError):
        policy(sleeps)(call)

    assert (len(calls), sleeps) == (1, [])
