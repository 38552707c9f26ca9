"""One CRM operation on its way: what it became (`OpResult`, or `RecordRefused` for a record
the CRM or the mapping's rules refuse), and the names a create is journalled and looked up by.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from packetworker.errors import PacketworkerError
from packetworker.targets.base import Outcome
from packetworker.targets.mapping import LookupNotFound, LookupRef, Operation, resolve_lookups


class RecordRefused(PacketworkerError):
    """One record cannot be applied because of its data; governed by the error policy."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(slots=True)
class OpResult:
    """What happened to one operation. `refs` optionally gives the target id of each
    covered source record (same order as `Operation.source`); else every one gets `ref`."""

    outcome: Outcome
    ref: str | None = None
    message: str | None = None
    refs: list[str | None] | None = None


@dataclass(slots=True)
class Job:
    """An operation to send, whether it came from the contact mapping, and its result."""

    operation: Operation
    contact: bool = False
    result: OpResult | RecordRefused | None = None


def lookup_message(ref: LookupRef) -> str:
    """The mapping's plain sentence for a lookup that found nothing."""
    return LookupNotFound(ref).message


def resolve_or_refuse(
    operation: Operation, resolver: Callable[[LookupRef], str | None]
) -> Operation:
    """`operation` with its lookups resolved; a lookup that finds nothing refuses the record."""
    try:
        return resolve_lookups(operation, resolver)
    except LookupNotFound as missing:
        raise RecordRefused(missing.message) from None


def operation_label(operation: Operation) -> str:
    """How `describe` names a created record: its key, else its entity."""
    return ", ".join(f"{k}={v}" for k, v in operation.key.items()) or operation.entity


def write_key(operation: Operation, entity: str | None = None) -> str:
    """Names a create within its packet's journal: its entity and key values, else (no key
    to look it up by) its first source row."""
    label = ",".join(f"{k}={v}" for k, v in operation.key.items())
    if not label:
        table, rowid = operation.source[0] if operation.source else ("", None)
        label = f"row={table}/{rowid or '-'}"
    return f"{entity or operation.entity} {label}"


def lookup_keys(operation: Operation) -> dict[str, str]:
    """What a look-up finds the record of `operation` by (journalled with its write)."""
    return {k: str(v) for k, v in operation.key.items()}
