"""Tables the Dataverse emulator knows, and the pure parsing of OData record addresses."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field


class ODataFault(Exception):
    """An error answer: HTTP status, Dataverse hex code ("" when Dataverse sends none)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Lookup:
    """A single-valued navigation property: which table it points at and the lookup column
    it fills (`parentcustomerid_account` → accounts, read back as `_parentcustomerid_value`)."""

    target: str
    attribute: str


@dataclass(frozen=True, slots=True)
class EntityDef:
    entity_set: str
    logical_name: str
    id_attr: str
    alternate_keys: tuple[tuple[str, ...], ...] = ()
    duplicate_rule: tuple[str, ...] = ()  # columns a duplicate-detection rule compares
    lookups: Mapping[str, Lookup] = field(default_factory=dict)


def default_entities() -> dict[str, EntityDef]:
    """contacts and accounts as a stock environment has them, plus an `accountnumber` key."""
    return {
        "accounts": EntityDef(
            "accounts",
            "account",
            "accountid",
            alternate_keys=(("accountnumber",),),
            duplicate_rule=("accountnumber",),
            lookups={
                "primarycontactid": Lookup("contacts", "primarycontactid"),
                "parentaccountid": Lookup("accounts", "parentaccountid"),
            },
        ),
        "contacts": EntityDef(
            "contacts",
            "contact",
            "contactid",
            duplicate_rule=("emailaddress1",),
            lookups={
                "parentcustomerid_account": Lookup("accounts", "parentcustomerid"),
                "parentcustomerid_contact": Lookup("contacts", "parentcustomerid"),
            },
        ),
    }


_ADDRESS_RE = re.compile(r"^(?P<set>[A-Za-z_][\w]*)(?:\((?P<key>.*)\))?$")
_PAIR_RE = re.compile(r"\s*(\w+)\s*=\s*('(?:[^']|'')*'|[^,]+)\s*(?:,|$)")


def split_address(path: str) -> tuple[str, str | None]:
    """`accounts(x)` → ("accounts", "x"); `accounts` → ("accounts", None)."""
    match = _ADDRESS_RE.match(path)
    if not match:
        raise ODataFault(404, "", f"Resource not found for the segment '{path}'.")
    return match.group("set"), match.group("key")


def parse_key(text: str, entity: EntityDef) -> dict[str, object] | str:
    """A GUID (str) or {column: value} for an alternate key the table defines."""
    text = text.strip()
    if _is_guid(text):
        return text.lower()
    pairs: dict[str, object] = {}
    position = 0
    while position < len(text):
        match = _PAIR_RE.match(text, position)
        if not match:
            raise ODataFault(400, "0x80060888", f"Bad key syntax: ({text})")
        name, raw = match.group(1), match.group(2).strip()
        if raw.startswith("'"):
            pairs[name] = raw[1:-1].replace("''", "'")
        elif _is_guid(raw):
            pairs[name] = raw.lower()
        else:
            try:
                pairs[name] = int(raw)
            except ValueError:
                pairs[name] = float(raw)
        position = match.end()
    if list(pairs) == [entity.id_attr] and isinstance(pairs[entity.id_attr], str):
        return str(pairs[entity.id_attr])
    if not any(set(key) == set(pairs) for key in entity.alternate_keys):
        raise ODataFault(
            400,
            "0x80060888",
            f"The key in the request URI is not valid for resource "
            f"'Microsoft.Dynamics.CRM.{entity.logical_name}'. Ensure that the names and number "
            f"of key properties match the declared or alternate key properties for the resource.",
        )
    return pairs


def _is_guid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return len(text) == 36
