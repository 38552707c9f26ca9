"""Value conversions a mapping field can ask for: packet text in, JSON-ready value out.

Packet fields are text (docs §4.3). Targets speak JSON, so every result here is a plain
JSON value: decimals become `int` when whole and `float` otherwise (exact for the up to 15
significant digits packets carry), dates and date-times become ISO text. Each converter
raises `ValueError` with a plain sentence, which the mapper turns into an error outcome.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Literal

from packetworker.packets.codecs import (
    decode_base64,
    format_date,
    format_datetime,
    parse_bool,
    parse_date,
    parse_datetime,
    parse_decimal,
)

ConvertName = Literal["string", "int", "decimal", "bool", "date", "datetime", "base64"]


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float | Decimal):
        return str(value)
    raise ValueError(f"{value!r} is not a single value")


def to_number(value: Decimal) -> int | float:
    """A Decimal as a JSON number: `int` when it is whole, else `float`."""
    if value == value.to_integral_value():
        return int(value)
    return float(value)


def _decimal(value: Any) -> int | float:
    return to_number(parse_decimal(_text(value).strip()))


def _int(value: Any) -> int:
    text = _text(value).strip()
    number = parse_decimal(text)
    if number != number.to_integral_value():
        raise ValueError(f"{text!r} is not a whole number")
    return int(number)


def _bool(value: Any) -> bool:
    return value if isinstance(value, bool) else parse_bool(_text(value))


def _date(value: Any) -> str:
    text = _text(value).strip()
    try:
        return format_date(parse_date(text))
    except ValueError:
        pass
    # Mobile apps stamp documents with a UTC date-time (`dateCreated`); its UTC date is
    # the document date, as the vendor's connector reads it.
    try:
        return format_date(parse_datetime(text).date())
    except ValueError:
        raise ValueError(f"{text!r} is not a date like 2021-07-14") from None


def _datetime(value: Any) -> str:
    return format_datetime(parse_datetime(_text(value).strip()))


def _base64(value: Any) -> str:
    # Validate and drop the optional `prefix,` head; targets want bare base64.
    return base64.b64encode(decode_base64(_text(value))).decode("ascii")


CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "string": _text,
    "int": _int,
    "decimal": _decimal,
    "bool": _bool,
    "date": _date,
    "datetime": _datetime,
    "base64": _base64,
}

KIND_WORDS = {
    "string": "text",
    "int": "a whole number",
    "decimal": "a decimal number",
    "bool": "a boolean",
    "date": "a date",
    "datetime": "a date-time",
    "base64": "base64 data",
}


def convert(value: Any, kind: str | None, *, max_length: int | None = None) -> Any:
    """Convert `value` to `kind` (None keeps it as it is); check `max_length` on text."""
    result = value if kind is None else CONVERTERS[kind](value)
    if max_length is not None and isinstance(result, str) and len(result) > max_length:
        raise ValueError(f"{result!r} is longer than {max_length} characters")
    return result
