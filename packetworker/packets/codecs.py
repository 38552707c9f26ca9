"""Value formats of sync packets (docs §4.3): every field is text; these turn it into values.

Readers never convert: fields stay exactly the text of the packet so round trips are exact.
Mappings call these when a target needs a typed value. Each `parse_*` raises `ValueError`
with a plain sentence naming the bad text.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation

# yyyy-MM-ddTHH:mm:ss[.fff]Z — what the vendor's connector reads. Mobile apps send ms.
_DATETIME = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,3}))?Z")
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_TIME = re.compile(r"(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,3}))?Z")
# `.` as separator, no thousands separator, optional leading `-`.
_DECIMAL = re.compile(r"-?\d+(?:\.\d+)?")
_TRUE = frozenset({"true", "1"})
_FALSE = frozenset({"false", "0"})


def _millis(fraction: str | None) -> int:
    return int(fraction.ljust(3, "0")) * 1000 if fraction else 0


def parse_datetime(text: str) -> datetime:
    """`2021-07-14T10:28:30.858Z` → an aware UTC datetime."""
    m = _DATETIME.fullmatch(text)
    if not m:
        raise ValueError(f"{text!r} is not a UTC date-time like 2021-07-14T10:28:30.858Z")
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    try:
        return datetime(year, month, day, hour, minute, second, _millis(m[7]), tzinfo=UTC)
    except ValueError:
        raise ValueError(f"{text!r} is not a valid date-time") from None


def format_datetime(value: datetime) -> str:
    """An aware or naive-UTC datetime → `yyyy-MM-ddTHH:mm:ss.fffZ` (mobile style, ms kept)."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def parse_date(text: str) -> date:
    """`2021-07-14` → a date (exactly 10 characters, as the connector expects)."""
    m = _DATE.fullmatch(text)
    if not m:
        raise ValueError(f"{text!r} is not a date like 2021-07-14")
    try:
        return date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:
        raise ValueError(f"{text!r} is not a valid date") from None


def format_date(value: date) -> str:
    return f"{value.year:04d}-{value.month:02d}-{value.day:02d}"


def parse_time(text: str) -> time:
    """`10:28:30Z` or `10:28:30.858Z` → a UTC time."""
    m = _TIME.fullmatch(text)
    if not m:
        raise ValueError(f"{text!r} is not a UTC time like 10:28:30Z")
    try:
        return time(int(m[1]), int(m[2]), int(m[3]), _millis(m[4]), tzinfo=UTC)
    except ValueError:
        raise ValueError(f"{text!r} is not a valid time") from None


def format_time(value: time) -> str:
    """A time → `HH:mm:ssZ`, the connector's output style."""
    return f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}Z"


def parse_decimal(text: str) -> Decimal:
    """`23.2916713`, `-5`, `0` → Decimal. No exponents, commas or thousands separators."""
    if not _DECIMAL.fullmatch(text):
        raise ValueError(f"{text!r} is not a decimal number like -12.5")
    try:
        return Decimal(text)
    except InvalidOperation:  # pragma: no cover - the pattern admits only valid literals
        raise ValueError(f"{text!r} is not a decimal number") from None


def format_decimal(value: Decimal | int | float) -> str:
    """A number → plain text with `.` and no exponent (`1E+2` becomes `100`)."""
    d = value if isinstance(value, Decimal) else Decimal(str(value))
    if not d.is_finite():
        raise ValueError(f"{value!r} is not a finite number")
    text = format(d, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def parse_bool(text: str) -> bool:
    """`true/false/TRUE/FALSE/1/0` → bool, as the connector accepts."""
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(f"{text!r} is not a boolean (true, false, 1 or 0)")


def format_bool(value: bool) -> str:
    return "true" if value else "false"


def decode_base64(text: str) -> bytes:
    """Base64 text → bytes, dropping an optional `prefix,` head (e.g. `data:image/png;base64,`)."""
    _, _, data = text.rpartition(",")
    try:
        return base64.b64decode("".join(data.split()), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the value is not valid base64 text") from None
