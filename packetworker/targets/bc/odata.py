"""OData query text for idempotency look-ups (pure: no I/O).

BC refuses `or` across *different* fields and `in (...)` needs `$schemaversion=2.1`, so a
look-up of many keys is `field eq 'a' or field eq 'b' ...` on one field, split into chunks
that keep the URL well under the limits proxies put on it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

# ~40 keys of up to 35 characters keep a URL around 2 KB, safe behind any proxy.
MAX_KEYS_PER_FILTER = 40


def literal(value: Any) -> str:
    """An OData literal: strings quoted with `'` doubled, numbers and booleans bare."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def any_of(field: str, values: Iterable[Any], *, size: int = MAX_KEYS_PER_FILTER) -> Iterator[str]:
    """`$filter` texts matching `field` against each of `values` (deduplicated), in chunks."""
    unique = list(dict.fromkeys(str(v) for v in values if v not in (None, "")))
    for start in range(0, len(unique), size):
        chunk = unique[start : start + size]
        yield " or ".join(f"{field} eq {literal(v)}" for v in chunk)


def key_of(row: dict[str, Any], fields: Iterable[str]) -> tuple[str, ...]:
    """A comparable key: BC compares Code fields case-insensitively, so we do too."""
    return tuple(str(row.get(f, "")).lower() for f in fields)
