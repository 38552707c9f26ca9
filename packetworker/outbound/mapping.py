"""The BC → mobile mapping (a TOML data file) and the pure conversion of one BC entity to a
packet `Record`.

Field expressions are JMESPath, compiled once: a deployment renames or adds packet fields in
the data file without touching code (docs/dynamics-mobile.md §5: every app has its own model).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

import jmespath
from jmespath.parser import ParsedResult

from packetworker.errors import PacketworkerError
from packetworker.packets import Record, Status, Table

SHIPPED_MAPPING = "mapping.toml"


class MappingError(ValueError, PacketworkerError):
    """The mapping file is unusable (unknown key, bad expression, missing entity set)."""


@dataclass(frozen=True)
class FieldMap:
    """Packet field name → compiled JMESPath over the BC entity."""

    expressions: dict[str, ParsedResult]

    def apply(self, context: Mapping[str, Any]) -> dict[str, str]:
        out: dict[str, str] = {}
        for name, expression in self.expressions.items():
            value = format_value(expression.search(context))
            if value is not None:
                out[name] = value
        return out


@dataclass(frozen=True)
class MasterTable:
    """One table of the master-data push."""

    table: Table
    entity_set: str
    fields: FieldMap
    option: str | None = None
    user_filter: str | None = None
    key: tuple[str, ...] = ()  # packet fields a `delete` record carries (none: no deletes)
    stock_field: str | None = None  # the packet field the stock refresh keeps current


@dataclass(frozen=True)
class DocumentMap:
    """A document (header + lines) pushed to the user its salesperson maps to."""

    entity_set: str
    table: Table
    fields: FieldMap
    lines: str
    line_table: Table
    line_fields: FieldMap
    user_field: str


@dataclass(frozen=True)
class OutboundMapping:
    master: tuple[MasterTable, ...]
    documents: dict[str, DocumentMap] = field(default_factory=dict)

    def master_tables(self, *, options: frozenset[str] = frozenset()) -> list[MasterTable]:
        """The master tables to push, in packet order, given the options switched on."""
        return [t for t in self.master if t.option is None or t.option in options]

    def master_entity_sets(self) -> set[str]:
        return {t.entity_set for t in self.master}


def load_mapping(path: Path | str | None = None) -> OutboundMapping:
    """Read a mapping file; None reads the shipped Field Sales mapping."""
    if path is None:
        raw = resources.files(__package__).joinpath(SHIPPED_MAPPING).read_bytes()
        name = SHIPPED_MAPPING
    else:
        raw = Path(path).read_bytes()
        name = str(path)
    try:
        data = tomllib.loads(raw.decode("utf-8"))
        return parse_mapping(data)
    except (tomllib.TOMLDecodeError, MappingError) as exc:
        raise MappingError(f"{name}: {exc}") from None


def parse_mapping(data: Mapping[str, Any]) -> OutboundMapping:
    _only(data, {"master", "documents"}, "top level")
    master = []
    for name, spec in data.get("master", {}).items():
        where = f"master.{name}"
        _only(spec, {"entity_set", "fields", "option", "user_filter", "key", "stock"}, where)
        fields = _fields(spec.get("fields"), where)
        key = spec.get("key", [])
        if not isinstance(key, list) or not set(key) <= set(fields.expressions):
            raise MappingError(f"{where}: `key` must list packet fields of the table")
        if "SystemId" in fields.expressions:
            key = ["SystemId", *key]
        stock = spec.get("stock")
        if stock is not None and stock not in fields.expressions:
            raise MappingError(f"{where}: `stock` must name a packet field of the table")
        master.append(
            MasterTable(
                table=Table(name),
                entity_set=_required(spec, "entity_set", where),
                fields=fields,
                option=spec.get("option"),
                user_filter=spec.get("user_filter"),
                key=tuple(dict.fromkeys(key)),
                stock_field=stock,
            )
        )
    documents = {}
    for entity_set, spec in data.get("documents", {}).items():
        where = f"documents.{entity_set}"
        _only(spec, {"table", "fields", "lines", "line_table", "line_fields", "user_field"}, where)
        documents[entity_set] = DocumentMap(
            entity_set=entity_set,
            table=Table(_required(spec, "table", where)),
            fields=_fields(spec.get("fields"), where),
            lines=_required(spec, "lines", where),
            line_table=Table(_required(spec, "line_table", where)),
            line_fields=_fields(spec.get("line_fields"), f"{where}.line_fields"),
            user_field=_required(spec, "user_field", where),
        )
    return OutboundMapping(master=tuple(master), documents=documents)


def to_record(
    table: Table,
    fields: FieldMap,
    entity: Mapping[str, Any],
    *,
    status: Status = Status.INSERT,
    extra: Mapping[str, Any] | None = None,
) -> Record:
    """One BC entity as a packet record. `extra` adds context keys (`_company`, `_header`).

    The vendor's connector writes every outbound record as `status="inserted"` (docs §4.2);
    `Status.INSERT` without a raw status is written exactly so.
    """
    context = {**entity, **extra} if extra else entity
    return Record(table=table, status=status, fields=fields.apply(context))


def format_value(value: Any) -> str | None:
    """A JSON value as packet text (docs §4.3): booleans true/false, plain decimals, no nulls."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        # Decimal(str(...)) keeps what BC sent (0.1 stays 0.1) and `f` never writes exponents.
        text = format(Decimal(str(value)), "f")
        return text[:-2] if text.endswith(".0") else text
    if isinstance(value, str):
        return value if value.strip() else None
    raise MappingError(f"a field expression produced {type(value).__name__}, not a value")


def _fields(spec: Any, where: str) -> FieldMap:
    if not isinstance(spec, Mapping) or not spec:
        raise MappingError(f"{where}: `fields` must be a non-empty table")
    compiled = {}
    for name, expression in spec.items():
        if not isinstance(expression, str):
            raise MappingError(f"{where}.{name}: expression must be a string")
        try:
            compiled[name] = jmespath.compile(expression)
        except jmespath.exceptions.ParseError as exc:
            raise MappingError(f"{where}.{name}: {exc}") from None
    return FieldMap(compiled)


def _required(spec: Mapping[str, Any], key: str, where: str) -> str:
    value = spec.get(key)
    if not isinstance(value, str) or not value:
        raise MappingError(f"{where}: `{key}` is required")
    return value


def _only(spec: Any, allowed: set[str], where: str) -> None:
    if not isinstance(spec, Mapping):
        raise MappingError(f"{where}: expected a table")
    unknown = set(spec) - allowed
    if unknown:
        raise MappingError(f"{where}: unknown keys {sorted(unknown)}")
