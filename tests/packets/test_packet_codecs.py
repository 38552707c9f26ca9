"""Value formats (docs §4.3): parse what devices and the connector write, write what it reads."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from decimal import Decimal

import pytest

from packetworker.packets.codecs import (
    decode_base64,
    format_bool,
    format_date,
    format_datetime,
    format_decimal,
    format_time,
    parse_bool,
    parse_date,
    parse_datetime,
    parse_decimal,
    parse_time,
)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("2021-07-14T10:28:30.858Z", datetime(2021, 7, 14, 10, 28, 30, 858000, tzinfo=UTC)),
        ("2021-07-14T10:28:30Z", datetime(2021, 7, 14, 10, 28, 30, tzinfo=UTC)),
        ("2021-07-14T10:28:30.5Z", datetime(2021, 7, 14, 10, 28, 30, 500000, tzinfo=UTC)),
    ],
)
def test_parse_datetime(text: str, value: datetime) -> None:
    assert parse_datetime(text) == value


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "2021-07-14 10:28:30",
            "'2021-07-14 10:28:30' is not a UTC date-time like 2021-07-14T10:28:30.858Z",
        ),
        ("2021-02-30T10:28:30Z", "'2021-02-30T10:28:30Z' is not a valid date-time"),
    ],
)
def test_parse_datetime_refuses_other_shapes(text: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_datetime(text)
    assert str(caught.value) == message


def test_format_datetime_writes_utc_with_milliseconds() -> None:
    from datetime import timedelta, timezone

    sofia = timezone(timedelta(hours=3))
    assert format_datetime(datetime(2021, 7, 14, 13, 28, 30, 858900, tzinfo=sofia)) == (
        "2021-07-14T10:28:30.858Z"
    )


def test_date_round_trip_and_errors() -> None:
    assert parse_date("2026-03-11") == date(2026, 3, 11)
    assert format_date(date(2026, 3, 1)) == "2026-03-01"
    with pytest.raises(ValueError, match=r"'11\.03\.2026' is not a date like 2021-07-14"):
        parse_date("11.03.2026")


def test_time_round_trip_and_errors() -> None:
    assert parse_time("10:28:30.858Z") == time(10, 28, 30, 858000, tzinfo=UTC)
    assert parse_time("10:28:30Z") == time(10, 28, 30, tzinfo=UTC)
    assert format_time(time(9, 5, 7, 123000)) == "09:05:07Z"
    with pytest.raises(ValueError, match="'25:00:00Z' is not a valid time"):
        parse_time("25:00:00Z")


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0", Decimal(0)),
        ("6218", Decimal(6218)),
        ("23.2916713", Decimal("23.2916713")),
        ("-5.50", Decimal("-5.50")),
    ],
)
def test_parse_decimal(text: str, value: Decimal) -> None:
    assert parse_decimal(text) == value


@pytest.mark.parametrize("text", ["1,5", "1 000", "1e5", "", "+1", ".5", "NaN"])
def test_parse_decimal_refuses_other_notations(text: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_decimal(text)
    assert str(caught.value) == f"{text!r} is not a decimal number like -12.5"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal("10.090"), "10.09"),
        (Decimal("1E+2"), "100"),
        (Decimal("-0.0"), "0"),
        (24, "24"),
        (0.5, "0.5"),
    ],
)
def test_format_decimal(value, text: str) -> None:
    assert format_decimal(value) == text


@pytest.mark.parametrize(
    ("text", "value"), [("true", True), ("FALSE", False), ("1", True), ("0", False)]
)
def test_parse_bool(text: str, value: bool) -> None:
    assert parse_bool(text) is value


def test_parse_bool_refuses_other_words_and_format_bool_writes_words() -> None:
    with pytest.raises(ValueError, match=r"'yes' is not a boolean \(true, false, 1 or 0\)"):
        parse_bool("yes")
    assert (format_bool(True), format_bool(False)) == ("true", "false")


def test_decode_base64_drops_a_data_uri_head() -> None:
    assert decode_base64("data:image/png;base64,iVBORw0K") == b"\x89PNG\r\n"
    assert decode_base64("aGVs\nbG8=") == b"hello"
    with pytest.raises(ValueError, match="the value is not valid base64 text"):
        decode_base64("not base64!")
