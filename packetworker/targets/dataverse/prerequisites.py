"""What a Dataverse org must have for the shipped mappings, and a check of a live org.

The list is data (`prerequisites.toml`, shipped next to this module): custom columns the
contact mapping writes, and the alternate keys the target uses when they exist.
`verify_org(client)` reads the org's metadata (`EntityDefinitions(LogicalName='…')/
Attributes` and `/Keys`, crm.md A.7) and answers one `Check` per item — a plain
(ok, message) pair an operator command can print.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import NamedTuple

from packetworker.targets.dataverse.client import DataverseClient
from packetworker.targets.dataverse.errors import DataverseError
from packetworker.targets.dataverse.odata import format_value


class Check(NamedTuple):
    """One verified prerequisite: whether the org has it, and a sentence saying what to do."""

    ok: bool
    message: str


@dataclass(frozen=True, slots=True)
class Column:
    table: str  # logical name: contact, account
    name: str
    type: str
    why: str


@dataclass(frozen=True, slots=True)
class AltKey:
    table: str
    columns: tuple[str, ...]
    required: bool
    why: str


@dataclass(frozen=True, slots=True)
class Prerequisites:
    columns: tuple[Column, ...]
    keys: tuple[AltKey, ...]


@cache
def load_prerequisites() -> Prerequisites:
    """The shipped `prerequisites.toml`."""
    text = resources.files(__package__).joinpath("prerequisites.toml").read_text("utf-8")
    data = tomllib.loads(text)
    return Prerequisites(
        columns=tuple(Column(**c) for c in data.get("columns", [])),
        keys=tuple(
            AltKey(k["table"], tuple(k["columns"]), bool(k.get("required")), k["why"])
            for k in data.get("keys", [])
        ),
    )


def verify_org(client: DataverseClient, prerequisites: Prerequisites | None = None) -> list[Check]:
    """One `Check` per column and alternate key the org needs; never raises for a missing
    item (a metadata request that fails is a failed check naming the error)."""
    wanted = prerequisites or load_prerequisites()
    checks: list[Check] = []
    tables = sorted({c.table for c in wanted.columns})
    for table in tables:
        try:
            present = _attributes(client, table)
        except DataverseError as error:
            checks.append(Check(False, f"cannot read the columns of {table}: {error.message}"))
            continue
        for column in (c for c in wanted.columns if c.table == table):
            if column.name in present:
                checks.append(Check(True, f"{table}.{column.name} exists"))
            else:
                checks.append(
                    Check(
                        False,
                        f"{table}.{column.name} is missing: create it as {column.type} "
                        f"({column.why}); until then Dataverse refuses these records (400).",
                    )
                )
    for key in wanted.keys:
        checks.append(_check_key(client, key))
    return checks


def _attributes(client: DataverseClient, table: str) -> set[str]:
    path = f"EntityDefinitions(LogicalName={format_value(table)})/Attributes"
    return {str(a["LogicalName"]) for a in client.query(path, select=["LogicalName"])}


def _check_key(client: DataverseClient, key: AltKey) -> Check:
    label = f"{key.table}({', '.join(key.columns)})"
    path = f"EntityDefinitions(LogicalName={format_value(key.table)})/Keys"
    try:
        keys = list(client.query(path, select=["KeyAttributes", "EntityKeyIndexStatus"]))
    except DataverseError as error:
        return Check(False, f"cannot read the alternate keys of {key.table}: {error.message}")
    found = next((k for k in keys if set(k.get("KeyAttributes") or ()) == set(key.columns)), None)
    if found is not None and found.get("EntityKeyIndexStatus") == "Active":
        return Check(True, f"alternate key {label} is active")
    need = "required" if key.required else "recommended"
    if found is not None:
        status = found.get("EntityKeyIndexStatus")
        return Check(
            False,
            f"alternate key {label} is {status}, not Active ({need}: {key.why}); until it is "
            "Active the target looks records up before creating them.",
        )
    return Check(
        False,
        f"no alternate key {label} ({need}: {key.why}); define one in the table's Keys. "
        "Until then the target looks records up before creating them.",
    )
