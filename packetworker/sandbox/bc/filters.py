"""A strict parser for the `$filter` subset integrations use, compiled to a predicate.

Supported: `field op literal` with eq/ne/gt/ge/lt/le, combined with `and`/`or`, `not`-free,
with parentheses. Literals: 'strings' ('' escapes a quote), numbers, true/false/null, dates
(2024-05-01), datetimes (2024-05-01T10:00:00Z) and GUIDs. Anything else is a `FilterError`
(the server answers 400 `BadRequest_NotFound`, as BC does for query syntax it rejects).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from datetime import date, datetime

Predicate = Callable[[dict], bool]


class FilterError(ValueError):
    pass


_TOKEN = re.compile(
    r"""\s*(?:
    (?P<string>'(?:[^']|'')*')
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2}))
  | (?P<guid>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})
  | (?P<date>\d{4}-\d{2}-\d{2})
  | (?P<number>-?\d+(?:\.\d+)?)
  | (?P<paren>[()])
  | (?P<word>[A-Za-z_][A-Za-z0-9_/]*)
  )""",
    re.VERBOSE,
)

_OPS = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "ge": operator.ge,
    "lt": operator.lt,
    "le": operator.le,
}


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens, pos = [], 0
    text = text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise FilterError(f"unsupported $filter syntax at {text[pos : pos + 20]!r}")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        pos = match.end()
    return tokens


def _literal(kind: str, text: str) -> object:
    if kind == "string":
        return text[1:-1].replace("''", "'")
    if kind == "number":
        return float(text) if "." in text else int(text)
    if kind == "datetime":
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    if kind == "date":
        return date.fromisoformat(text)
    if kind == "guid":
        return text.lower()
    if kind == "word" and text in ("true", "false"):
        return text == "true"
    if kind == "word" and text == "null":
        return None
    raise FilterError(f"expected a literal, found {text!r}")


def _coerce(value: object, literal: object) -> object:
    """Bring the stored value to the literal's type, so dates compare as dates."""
    if value is None or literal is None:
        return value
    try:
        if isinstance(literal, datetime) and isinstance(value, str):
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        if (
            isinstance(literal, date)
            and not isinstance(literal, datetime)
            and isinstance(value, str)
        ):
            return date.fromisoformat(value[:10])
        if isinstance(literal, str) and isinstance(value, str) and _looks_guid(literal):
            return value.lower()
    except ValueError:
        return value
    return value


def _looks_guid(text: str) -> bool:
    return len(text) == 36 and text.count("-") == 4


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens = tokens
        self.pos = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise FilterError("unexpected end of $filter")
        self.pos += 1
        return token

    def parse(self) -> Predicate:
        predicate = self.or_expr()
        if self.peek() is not None:
            raise FilterError(f"unexpected {self.peek()[1]!r} in $filter")
        return predicate

    def or_expr(self) -> Predicate:
        left = self.and_expr()
        while self.peek() == ("word", "or"):
            self.take()
            right, first = self.and_expr(), left
            left = lambda row, a=first, b=right: a(row) or b(row)  # noqa: E731
        return left

    def and_expr(self) -> Predicate:
        left = self.term()
        while self.peek() == ("word", "and"):
            self.take()
            right, first = self.term(), left
            left = lambda row, a=first, b=right: a(row) and b(row)  # noqa: E731
        return left

    def term(self) -> Predicate:
        if self.peek() == ("paren", "("):
            self.take()
            inner = self.or_expr()
            if self.take() != ("paren", ")"):
                raise FilterError("missing ')' in $filter")
            return inner
        kind, field = self.take()
        if kind != "word" or field in _OPS or field in ("and", "or"):
            raise FilterError(f"expected a property name, found {field!r}")
        kind, op = self.take()
        if op not in _OPS:
            raise FilterError(f"unsupported operator {op!r} (supported: {', '.join(_OPS)})")
        literal = _literal(*self.take())
        compare = _OPS[op]

        def predicate(row: dict) -> bool:
            if field not in row:
                raise FilterError(f"Could not find a property named '{field}'")
            value = _coerce(row[field], literal)
            if op in ("eq", "ne"):
                return compare(value, literal)
            if value is None or literal is None:
                return False
            try:
                return compare(value, literal)
            except TypeError:
                raise FilterError(f"cannot compare {field} with {literal!r}") from None

        return predicate


def compile_filter(text: str) -> Predicate:
    """Parse `text` into a predicate over entity dicts; raises `FilterError`."""
    return _Parser(_tokenize(text)).parse()
