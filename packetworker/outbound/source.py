"""Reading Business Central for outbound packets: paged, lazy, filtered by change time.

Everything here is a generator over `BCClient.list`, which follows `@odata.nextLink` page by
page, so a push never holds more than one BC page in memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from packetworker.targets.bc import BCClient

MODIFIED = "lastModifiedDateTime"


def changed_since(mark: str | None) -> str | None:
    """The OData filter for records changed at or after `mark` (None: no filter).

    `ge`, not `gt`: BC stamps milliseconds, so a record changed in the same millisecond as
    the last one sent, but committed after the read, would be missed forever. Callers skip
    what they already sent at that instant (`same_instant`)."""
    if not mark:
        return None
    return f"{MODIFIED} ge {_literal(mark)}"


def _literal(mark: str) -> str:
    """A BC timestamp as an unquoted DateTimeOffset literal, re-rendered from the parsed
    value so a stored string cannot smuggle other filter syntax into a query."""
    # isoformat, not strftime: glibc's %Y does not pad year 1 (the EPOCH mark) to 4 digits.
    moment = _parse(mark).astimezone(UTC)
    return moment.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def same_instant(a: str | None, b: str | None) -> bool:
    """Whether two BC timestamps name the same instant (either may be None)."""
    return bool(a and b) and _parse(a) == _parse(b)


def any_of(field: str, values: Iterable[str]) -> str | None:
    """`(field eq 'a' or field eq 'b')`, quotes doubled as OData wants; None for no values."""
    terms = [f"{field} eq '{value.replace(chr(39), chr(39) * 2)}'" for value in values]
    if not terms:
        return None
    return f"({' or '.join(terms)})"


def both(*filters: str | None) -> str | None:
    parts = [f for f in filters if f]
    return " and ".join(parts) or None


def later(a: str | None, b: str | None) -> str | None:
    """The later of two BC timestamps (either may be None)."""
    if not a:
        return b
    if not b:
        return a
    return b if _parse(b) > _parse(a) else a


def _parse(mark: str) -> datetime:
    return datetime.fromisoformat(mark.replace("Z", "+00:00"))


class BCSource:
    """The reads an outbound push needs, on one `BCClient`."""

    def __init__(self, client: BCClient) -> None:
        self.client = client
        self._company: dict[str, Any] | None = None

    @property
    def company(self) -> dict[str, Any]:
        """The configured company's record (id, name, displayName), read once."""
        if self._company is None:
            cid = self.client.company_id
            self._company = next(c for c in self.client.companies() if c["id"] == cid)
        return self._company

    def rows(self, entity_set: str, *, filter: str | None = None) -> Iterator[dict]:
        return self.client.list(entity_set, filter=filter)

    def latest_change(self, entity_set: str) -> str | None:
        """The newest `lastModifiedDateTime` in `entity_set` (None when it is empty)."""
        newest = next(iter(self.client.list(entity_set, orderby=f"{MODIFIED} desc", top=1)), None)
        return newest.get(MODIFIED) if newest else None

    def newest(self, entity_set: str) -> tuple[str | None, set[str]]:
        """The newest `lastModifiedDateTime` in `entity_set` and the ids changed at exactly
        that instant ((None, set()) when it is empty): where a poll starts."""
        mark = self.latest_change(entity_set)
        if mark is None:
            return None, set()
        at_mark = self.client.list(entity_set, filter=f"{MODIFIED} eq {_literal(mark)}")
        return mark, {str(row["id"]) for row in at_mark}

    def get(self, entity_set: str, entity_id: str) -> dict:
        return self.client.get(entity_set, entity_id)

    def lines(self, entity_set: str, entity_id: str, navigation: str) -> Iterator[dict]:
        return self.client.list(f"{entity_set}({entity_id})/{navigation}")

    def changed(self, entity_set: str, *, since: str | None) -> Iterator[dict]:
        """Records changed after `since`, oldest change first, so a caller can advance its
        mark record by record and a failure midway loses no progress."""
        return self.client.list(entity_set, filter=changed_since(since), orderby=f"{MODIFIED} asc")
