"""What the mapper produces: target operations and one outcome per source record.

`Operation.body` and the rows of `Operation.children` are plain JSON data. Values that can
only be known inside the target (the id of a related record) are declared as `LookupRef`s
in `Operation.lookups`; the target resolves them with `resolve_lookups` before sending.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, Literal

from packetworker.errors import PacketworkerError

Action = Literal["create", "update", "upsert", "delete"]
ItemOutcome = Literal["mapped", "skipped", "filtered", "ignored", "error"]


class MappingFault(StrEnum):
    """Why the mapper could not map a record: what a target decides on (its message is for
    people and may change)."""

    RULE = "rule"  # the record breaks a check row of the mapping (Missing Email, Invalid Email)
    MISSING_VALUE = "missing-value"  # a required or key field has no value
    BAD_VALUE = "bad-value"  # a value without translation or route, or that cannot be converted
    EXPRESSION = "expression"  # a filter, formula or collection expression failed
    UNKNOWN_TABLE = "unknown-table"  # a table the mapping does not name (policy quarantine)
    NO_PARENT = "no-parent"  # a child row whose parent is not in the packet


@dataclass(frozen=True, slots=True)
class LookupRef:
    """A value the target must resolve: "the id of the `entity` whose `match` is `value`".

    `path` says where the answer goes, from the operation: `("body", "customerid@odata.bind")`
    for a body field, `("children", "order_details", 0, "productid@odata.bind")` for a field
    of a child row (a field nested with `into` adds its object's name before the field).
    `bind` formats the resolved id (e.g. `/accounts({id})` for a Dataverse `@odata.bind`).
    `message` is the plain sentence reported when nothing matches. `where`: more (field,
    value) pairs the record must match too (a variant's item as well as its code).
    """

    path: tuple[str | int, ...]
    entity: str
    match: str
    value: Any
    bind: str = "{id}"
    message: str | None = None
    where: tuple[tuple[str, Any], ...] = ()

    def terms(self) -> tuple[tuple[str, Any], ...]:
        """Every (field, value) the record must match: `match` first, then `where`."""
        return ((self.match, self.value), *self.where)

    @property
    def field(self) -> str:
        return str(self.path[-1])


@dataclass(slots=True)
class Operation:
    """One request-sized unit of work for a target.

    `key` holds the idempotency key (target field → value) a target checks before it
    creates anything (e.g. BC `externalDocumentNumber`). `update_fields`, when set, names
    the body fields an upsert may change on a record that already exists; None means all.
    With `prevent_duplicate`, a target that finds the key already present reports an error
    (`duplicate_message`) instead of updating or skipping.
    `source` lists the (table, DMS_ROWID) of every packet record this operation covers.
    """

    entity: str
    action: Action
    key: dict[str, Any]
    body: dict[str, Any]
    children: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    lookups: dict[str, LookupRef] = field(default_factory=dict)
    source: list[tuple[str, str | None]] = field(default_factory=list)
    prevent_duplicate: bool = False
    update_fields: list[str] | None = None
    duplicate_message: str | None = None


@dataclass(slots=True)
class MappedItem:
    """The outcome of mapping one source record (or one document with its children).

    Every packet record is accounted for exactly once: as an item's own `table`/`dms_rowid`
    or in a mapped item's `operation.source`. `message` is a plain sentence naming the
    mapping row for `error` (and the reason for `skipped`); `fault` says which kind of
    error it is (the rows of a document share their header's).
    """

    operation: Operation | None
    outcome: ItemOutcome
    table: str
    dms_rowid: str | None
    message: str | None = None
    fault: MappingFault | None = None


class LookupNotFound(LookupError, PacketworkerError):
    """A declared lookup matched nothing in the target; `message` is the mapping's sentence."""

    def __init__(self, ref: LookupRef) -> None:
        self.ref = ref
        wanted = " and ".join(f"{field} = {value!r}" for field, value in ref.terms())
        self.message = (
            ref.message or f"No {ref.entity} record has {wanted} (needed for {ref.field})."
        )
        super().__init__(self.message)


Resolver = Callable[[LookupRef], str | None]


def resolve_lookups(operation: Operation, resolver: Resolver) -> Operation:
    """Return a copy of `operation` with every lookup resolved into its body or child rows.

    `resolver(ref)` answers the target id, or None when nothing matches, which raises
    `LookupNotFound` carrying the mapping's message.
    """
    body = copy.deepcopy(operation.body)
    children = copy.deepcopy(operation.children)
    for ref in operation.lookups.values():
        found = resolver(ref)
        if found is None:
            raise LookupNotFound(ref)
        node: Any = {"body": body, "children": children}
        for step in ref.path[:-1]:
            node = node[step] if isinstance(node, list) else node.setdefault(step, {})
        node[ref.path[-1]] = ref.bind.format(id=found)
    return replace(operation, body=body, children=children, lookups={})
