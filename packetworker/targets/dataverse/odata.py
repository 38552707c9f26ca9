"""Pure OData helpers: record addresses, alternate keys, lookup binds, entity ids.

A record is addressed by its GUID (`accounts(<guid>)`) or, when the table has an alternate
key defined, by the key's columns (`accounts(accountnumber='A1')`). Callers pass a GUID string
or a mapping of key columns; everything here is string building, no I/O.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from urllib.parse import quote

Key = str | Mapping[str, str | int | float | bool]

_KEY_SAFE = "=',-."  # kept literal in the URL so keys stay readable in logs
_ENTITY_ID_RE = re.compile(r"\(([^()]*)\)\s*$")


def format_value(value: str | int | float | bool) -> str:
    """An OData literal: strings single-quoted with `'` doubled, numbers and booleans bare."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def is_guid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def format_key(key: Key) -> str:
    """The part between the parentheses: a bare GUID or `col='v',col2=1`."""
    if isinstance(key, str):
        if not is_guid(key):
            raise ValueError(f"not a GUID: {key!r}; pass alternate keys as a mapping")
        return key
    if not key:
        raise ValueError("an alternate key needs at least one column")
    return ",".join(f"{column}={format_value(value)}" for column, value in key.items())


def record_path(entity_set: str, key: Key) -> str:
    """`accounts(<guid>)` or `accounts(accountnumber='A1')`, URL-escaped for a request line."""
    return f"{entity_set}({quote(format_key(key), safe=_KEY_SAFE)})"


def bind(entity_set: str, key: Key) -> str:
    """The value of an `<navprop>@odata.bind` annotation (a lookup to an existing record)."""
    return f"/{entity_set}({format_key(key)})"


def entity_id(uri: str) -> str:
    """The GUID from an `OData-EntityId` / `Location` URI such as `.../accounts(<guid>)`."""
    match = _ENTITY_ID_RE.search(uri)
    if not match or not is_guid(match.group(1)):
        raise ValueError(f"no record id in {uri!r}")
    return match.group(1)
