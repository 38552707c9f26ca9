"""Tables the Dataverse emulator knows, and the pure parsing of OData record addresses."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
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
class AlternateKey:
    """An alternate key as `EntityDefinitions(...)/Keys` lists it. Only an Active key can
    address records: its index is built by a background job first (crm.md A.7)."""

    columns: tuple[str, ...]
    status: str = "Active"  # Pending | InProgress | Active | Failed

    @property
    def active(self) -> bool:
        return self.status == "Active"


@dataclass(frozen=True, slots=True)
class EntityDef:
    """A table. `columns` are its attribute logical names; None means the emulator does not
    know them and accepts any name (tables the stock model leaves out)."""

    entity_set: str
    logical_name: str
    id_attr: str
    alternate_keys: tuple[AlternateKey, ...] = ()
    duplicate_rule: tuple[str, ...] = ()  # columns a duplicate-detection rule compares
    lookups: Mapping[str, Lookup] = field(default_factory=dict)
    columns: frozenset[str] | None = None

    def __post_init__(self) -> None:
        keys = tuple(
            k if isinstance(k, AlternateKey) else AlternateKey(tuple(k))
            for k in self.alternate_keys
        )
        object.__setattr__(self, "alternate_keys", keys)

    def active_keys(self) -> list[tuple[str, ...]]:
        return [key.columns for key in self.alternate_keys if key.active]

    def knows(self, column: str) -> bool:
        return self.columns is None or column in self.columns


# Stock columns (crm.md A.13, the contact/account entity references): what a create or
# update may name on an org nobody customised.
_ADDRESS_PARTS = (
    "line1",
    "line2",
    "line3",
    "city",
    "stateorprovince",
    "county",
    "postalcode",
    "country",
    "telephone1",
    "telephone2",
    "latitude",
    "longitude",
    "name",
)
_COMMON = {
    "emailaddress1",
    "emailaddress2",
    "emailaddress3",
    "telephone1",
    "telephone2",
    "telephone3",
    "description",
    "statecode",
    "statuscode",
    "versionnumber",
    "createdon",
    "modifiedon",
    *(f"address{n}_{part}" for n in (1, 2, 3) for part in _ADDRESS_PARTS),
}
STOCK_CONTACT_COLUMNS = frozenset(
    {
        "contactid",
        "firstname",
        "lastname",
        "middlename",
        "fullname",
        "jobtitle",
        "mobilephone",
        "parentcustomerid",
        *_COMMON,
    }
)
STOCK_ACCOUNT_COLUMNS = frozenset(
    {
        "accountid",
        "name",
        "accountnumber",
        "websiteurl",
        "primarycontactid",
        "parentaccountid",
        *_COMMON,
    }
)


def default_entities(
    *,
    custom_columns: Mapping[str, Iterable[str]] | None = None,
    account_number_key: str | None = None,
) -> dict[str, EntityDef]:
    """contacts and accounts as an org has them.

    A stock org has no alternate keys (crm.md A.7); `account_number_key` defines one on
    `accountnumber` with that index status ("Active", "Pending", ...). `custom_columns`
    ({logical name: columns}) are the columns a deployment created; by default the ones
    the shipped Dataverse prerequisites ask for (an org prepared as the README says).
    """
    if custom_columns is None:
        custom_columns = _prerequisite_columns()
    keys = (AlternateKey(("accountnumber",), account_number_key),) if account_number_key else ()
    return {
        "accounts": EntityDef(
            "accounts",
            "account",
            "accountid",
            alternate_keys=keys,
            duplicate_rule=("emailaddress1",),  # crm.md A.9: shipped rules compare email
            lookups={
                "primarycontactid": Lookup("contacts", "primarycontactid"),
                "parentaccountid": Lookup("accounts", "parentaccountid"),
            },
            columns=STOCK_ACCOUNT_COLUMNS | set(custom_columns.get("account", ())),
        ),
        "contacts": EntityDef(
            "contacts",
            "contact",
            "contactid",
            duplicate_rule=("emailaddress1",),  # crm.md A.9: "same emailaddress1"
            lookups={
                "parentcustomerid_account": Lookup("accounts", "parentcustomerid"),
                "parentcustomerid_contact": Lookup("contacts", "parentcustomerid"),
            },
            columns=STOCK_CONTACT_COLUMNS | set(custom_columns.get("contact", ())),
        ),
    }


def _prerequisite_columns() -> dict[str, list[str]]:
    """The columns the shipped prerequisites ask a deployment to create, by table."""
    from packetworker.targets.dataverse.prerequisites import load_prerequisites

    found: dict[str, list[str]] = {}
    for column in load_prerequisites().columns:
        found.setdefault(column.table, []).append(column.name)
    return found


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
    # crm.md A.7: only a defined (and Active) alternate key can address a record.
    if not any(set(key) == set(pairs) for key in entity.active_keys()):
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
