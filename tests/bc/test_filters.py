"""The emulator's strict $filter subset (pure)."""

from __future__ import annotations

import pytest

from packetworker.sandbox.bc.filters import FilterError, compile_filter

ROWS = [
    {"number": "A", "unitPrice": 5, "lastModifiedDateTime": "2024-05-01T10:00:00.000Z"},
    {"number": "B", "unitPrice": 15, "lastModifiedDateTime": "2024-05-02T10:00:00.000Z"},
    {"number": "O'Neil", "unitPrice": 25, "lastModifiedDateTime": "2024-05-03T10:00:00.000Z"},
]


def numbers(text: str) -> list[str]:
    predicate = compile_filter(text)
    return [r["number"] for r in ROWS if predicate(r)]


def test_datetime_comparison_for_delta_polling():
    assert numbers("lastModifiedDateTime gt 2024-05-01T12:00:00Z") == ["B", "O'Neil"]


def test_and_or_with_parentheses():
    assert numbers("(number eq 'A' or number eq 'B') and unitPrice ge 10") == ["B"]


def test_doubled_quote_escapes_a_quote():
    assert numbers("number eq 'O''Neil'") == ["O'Neil"]


@pytest.mark.parametrize(
    "text", ["contains(number,'A')", "number in ('A')", "number eq", "unitPrice lt 5 xor"]
)
def test_unsupported_syntax_is_refused(text):
    with pytest.raises(FilterError):
        numbers(text)


def test_unknown_property_is_refused():
    with pytest.raises(FilterError, match="nope"):
        numbers("nope eq 1")
