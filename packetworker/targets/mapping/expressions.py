"""JMESPath for mapping filters and formulas, with the few functions mappings need.

Expressions come from data files, so they must never be executed as code: JMESPath is a
query language with no side effects (no `eval`, no home-made parser). An expression sees
the record's fields as a JSON object, plus `header`, `table`, and (for documents) `parent`
or `children`. Packet values are text, so the number helpers work on decimal strings and
answer exact decimal strings (`dec_sub('10.10', '0.1')` → `'10'`); a field's `convert`
turns the result into a JSON number.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal, InvalidOperation
from typing import Any

import jmespath
from jmespath import exceptions as jmespath_errors
from jmespath import functions

ANY: dict[str, list[str]] = {"types": []}


def _decimal(value: Any) -> Decimal:
    if isinstance(value, bool) or value is None:
        raise jmespath_errors.JMESPathError(f"not a number: {value!r}")
    try:
        return Decimal(str(value).strip())
    except InvalidOperation:
        raise jmespath_errors.JMESPathError(f"not a number: {value!r}") from None


def _text(value: Decimal) -> str:
    # normalize() alone turns 100 into '1E+2'; quantize back to plain notation.
    normal = value.normalize()
    return format(normal, "f") if normal != 0 else "0"


def _find_custom_field(container: Any, name: str) -> Any:
    """Read one custom field from a dict, a list of name/value pairs, or JSON text of either."""
    if isinstance(container, str):
        try:
            container = json.loads(container)
        except ValueError:
            return None
    if isinstance(container, dict):
        return container.get(name)
    if isinstance(container, list):
        for item in container:
            if not isinstance(item, dict):
                continue
            label = item.get("Name", item.get("name", item.get("Key", item.get("key"))))
            if label == name:
                return item.get("Value", item.get("value"))
    return None


class MappingFunctions(functions.Functions):
    """Custom JMESPath functions. Every one answers null for a null input, so a missing
    packet field flows through a formula as "absent" instead of failing it."""

    @functions.signature(ANY, {"types": ["string"]})
    def _func_custom_field(self, container: Any, name: str) -> Any:
        return _find_custom_field(container, name)

    @functions.signature(ANY)
    def _func_lower(self, value: Any) -> Any:
        return None if value is None else str(value).lower()

    @functions.signature(ANY)
    def _func_upper(self, value: Any) -> Any:
        return None if value is None else str(value).upper()

    @functions.signature(ANY)
    def _func_trim(self, value: Any) -> Any:
        return None if value is None else str(value).strip()

    @functions.signature({"types": [], "variadic": True})
    def _func_concat(self, *values: Any) -> str:
        # Null parts are left out, like a missing packet field.
        return "".join(str(value) for value in values if value is not None)

    @functions.signature(ANY, ANY)
    def _func_default(self, value: Any, fallback: Any) -> Any:
        return fallback if value is None or value == "" else value

    @functions.signature(ANY, {"types": ["object"]}, ANY)
    def _func_choose(self, value: Any, choices: dict[str, Any], fallback: Any) -> Any:
        if value is None:
            return fallback
        return choices.get(str(value), fallback)

    @functions.signature(ANY, {"types": ["string"]}, {"types": ["string"]})
    def _func_lookup(self, value: Any, entity: str, match: str) -> Any:
        # A placeholder the mapper turns into a LookupRef that the target resolves.
        if value is None or value == "":
            return None
        return {"$lookup": {"entity": entity, "match": match, "value": value}}

    @functions.signature(ANY, ANY)
    def _func_dec_add(self, left: Any, right: Any) -> Any:
        if left is None or right is None:
            return None
        return _text(_decimal(left) + _decimal(right))

    @functions.signature(ANY, ANY)
    def _func_dec_sub(self, left: Any, right: Any) -> Any:
        if left is None or right is None:
            return None
        return _text(_decimal(left) - _decimal(right))

    @functions.signature(ANY, ANY)
    def _func_dec_mul(self, left: Any, right: Any) -> Any:
        if left is None or right is None:
            return None
        return _text(_decimal(left) * _decimal(right))

    @functions.signature(ANY)
    def _func_dec_neg(self, value: Any) -> Any:
        return None if value is None else _text(-_decimal(value))

    @functions.signature({"types": ["array", "null"]})
    def _func_dec_sum(self, values: list[Any] | None) -> str:
        return _text(sum((_decimal(v) for v in values or () if v is not None), Decimal(0)))


_OPTIONS = jmespath.Options(custom_functions=MappingFunctions())


class Expression:
    """A compiled JMESPath expression and its source text (kept for error messages)."""

    __slots__ = ("_parsed", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self._parsed = jmespath.compile(text)  # raises jmespath ParseError

    def search(self, data: dict[str, Any]) -> Any:
        """Evaluate against `data`; raises `ValueError` with the expression on failure."""
        try:
            return self._parsed.search(data, options=_OPTIONS)
        except jmespath_errors.JMESPathError as exc:
            raise ValueError(f"expression {self.text!r} failed: {exc}") from None

    def __repr__(self) -> str:
        return f"Expression({self.text!r})"


# `Type == "Person"` is valid JMESPath that compares two *fields* and is always false for a
# record without a `Person` field — the user's mapping documents write filters that way. Refuse it.
_DOUBLE_QUOTED_OPERAND = re.compile(r'(==|!=|<=|>=|<|>)\s*"([^"]*)"')


def compile_expression(text: str) -> Expression:
    """Compile `text`; raises `ValueError` naming the problem (for load-time validation)."""
    quoted = _DOUBLE_QUOTED_OPERAND.search(text)
    if quoted:
        raise ValueError(
            f'in {text!r}, "{quoted[2]}" is a field name in JMESPath; write the text '
            f"'{quoted[2]}' in single quotes to compare with it"
        )
    try:
        return Expression(text)
    except jmespath_errors.JMESPathError as exc:
        raise ValueError(f"invalid JMESPath expression {text!r}: {exc}") from None
