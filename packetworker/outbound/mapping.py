"""The BC → mobile mapping (a TOML data file) and the pure conversion of one BC entity to a
packet `Record`.

Field expressions are JMESPath, compiled once: a deployment renames or adds packet fields in
the data file without touching code (docs/dynamics-mobile.md §5: every app has its own model).
The shipped file is `packetworker/mapping_files/outbound/bc-field-sales.toml`. It is read and
validated by the one mapping engine (`targets/mapping/config.py`): the same loader, the same
JMESPath functions, the same `MappingError` naming the file and the path at fault.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from packetworker.packets import Record, Status, Table
from packetworker.targets.mapping.config import (
    Expr,
    MappingError,
    read_mapping_file,
    read_toml,
    validate_mapping,
)
from packetworker.targets.mapping.expressions import Expression

SHIPPED_MAPPING = "bc-field-sales"  # in mapping_files/outbound/
FOLDER = "outbound"


@dataclass(frozen=True)
class FieldMap:
    """Packet field name → compiled JMESPath over the BC entity."""

    expressions: dict[str, Expression]

    def apply(self, context: Mapping[str, Any]) -> dict[str, str]:
        out: dict[str, str] = {}
        for name, expression in self.expressions.items():
            value = format_value(expression.search(dict(context)))
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


# -- the file, as validated data ----------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


def _text_only(value: Any) -> Any:
    if isinstance(value, dict):
        for name, expression in value.items():
            if not isinstance(expression, str):
                raise ValueError(f"{name}: expression must be a string")
    return value


Fields = Annotated[dict[str, Expr], BeforeValidator(_text_only), Field(min_length=1)]
Name = Annotated[str, Field(min_length=1)]


class MasterSpec(_Model):
    """`[master.<Table>]`: one table of the master-data push."""

    entity_set: Name
    fields: Fields
    option: str | None = None
    user_filter: str | None = None
    key: list[str] = []
    stock: str | None = None

    @model_validator(mode="after")
    def _names_fields(self) -> MasterSpec:
        if not set(self.key) <= set(self.fields):
            raise ValueError("`key` must list packet fields of the table")
        if self.stock is not None and self.stock not in self.fields:
            raise ValueError("`stock` must name a packet field of the table")
        return self


class DocumentSpec(_Model):
    """`[documents.<entity set>]`: a document pushed to the user of its salesperson."""

    table: Name
    fields: Fields
    lines: Name
    line_table: Name
    line_fields: Fields
    user_field: Name


class OutboundFile(_Model):
    master: dict[str, MasterSpec] = {}
    documents: dict[str, DocumentSpec] = {}


def load_mapping(path: Path | str | None = None) -> OutboundMapping:
    """Read a mapping file; None reads the shipped Field Sales mapping."""
    text, source = read_mapping_file(path or SHIPPED_MAPPING, folder=FOLDER)
    return parse_mapping(read_toml(text, source=source), source=source)


def parse_mapping(data: Mapping[str, Any], *, source: str = "outbound mapping") -> OutboundMapping:
    """Validate the file's data; `MappingError` names `source` and the path at fault."""
    spec = validate_mapping(OutboundFile, dict(data), source=source)
    master = []
    for name, table in spec.master.items():
        key = ["SystemId", *table.key] if "SystemId" in table.fields else table.key
        master.append(
            MasterTable(
                table=Table(name),
                entity_set=table.entity_set,
                fields=FieldMap(dict(table.fields)),
                option=table.option,
                user_filter=table.user_filter,
                key=tuple(dict.fromkeys(key)),
                stock_field=table.stock,
            )
        )
    documents = {
        entity_set: DocumentMap(
            entity_set=entity_set,
            table=Table(doc.table),
            fields=FieldMap(dict(doc.fields)),
            lines=doc.lines,
            line_table=Table(doc.line_table),
            line_fields=FieldMap(dict(doc.line_fields)),
            user_field=doc.user_field,
        )
        for entity_set, doc in spec.documents.items()
    }
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
