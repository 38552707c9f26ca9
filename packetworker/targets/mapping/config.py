"""Mapping files: TOML data, validated on load into typed models.

One file describes how one app's packet tables map to one target's entities (see the
shipped files in `packetworker/mapping_files/`). Loading checks everything a mapping
can get wrong without seeing a packet — unknown options, bad conversions, JMESPath syntax,
key/required fields that no row produces — and names the file, table and key at fault.
The outbound mapping (`outbound/mapping.py`) is read by the same `read_mapping_file` and
`validate_mapping`, so both directions fail with one error type: `MappingError`.
"""

from __future__ import annotations

import re
import tomllib
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from packetworker.errors import PacketworkerError
from packetworker.packets.assembly import DocumentShape, Join
from packetworker.targets.mapping.convert import ConvertName
from packetworker.targets.mapping.expressions import Expression, compile_expression

SHIPPED_PACKAGE = "packetworker"
SHIPPED_FOLDER = "mapping_files"  # the data files; this package (`targets/mapping/`) is code


class MappingError(ValueError, PacketworkerError):
    """A mapping file cannot be used; the message names the file and the path in it.

    `source` is the file (a shipped name or a path), `path` the dotted place in it
    (`tables.SalesHeader.key`); either may be None when unknown.
    """

    def __init__(self, detail: str, *, source: str | None = None, path: str | None = None):
        self.detail = detail
        self.source = source
        self.path = path
        super().__init__(": ".join(part for part in (source, path, detail) if part))

    def in_file(self, source: str) -> MappingError:
        """This error, naming `source` as its file (when it named none)."""
        return self if self.source else MappingError(self.detail, source=source, path=self.path)


def _expression(value: Any) -> Any:
    return compile_expression(value) if isinstance(value, str) else value


def _names(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


Expr = Annotated[Expression, BeforeValidator(_expression)]
Names = Annotated[list[str], BeforeValidator(_names)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


class FieldSpec(_Model):
    """`target = { from = ["SelltoCustomerNo", "customerNo"], convert = "string" }`.

    `from` lists source field aliases; the first one present in the record is used, so one
    file accepts both name styles. `values` translates source values before conversion;
    `default` applies when no alias is present; `into` nests the value under an object.
    """

    from_: Names = Field(alias="from", min_length=1)
    convert: ConvertName | None = None
    max_length: int | None = Field(default=None, gt=0)
    values: dict[str, Any] | None = None
    default: Any = None
    into: str | None = None


class FormulaSpec(_Model):
    """`target = { expr = "concat(a, ' ', b)", convert = "decimal" }` or just the string."""

    expr: Expr
    convert: ConvertName | None = None
    max_length: int | None = Field(default=None, gt=0)
    into: str | None = None


class LookupSpec(_Model):
    """A field whose value is the id of another target record, resolved by the target."""

    from_: Names = Field(alias="from", min_length=1)
    entity: str
    match: str
    # More fields the record must match, each from the source record's value, e.g. an item
    # variant's `itemNumber` from the line's item: `where = { itemNumber = ["No", "no"] }`.
    where: dict[str, Names] = {}
    bind: str = "{id}"
    message: str | None = None
    into: str | None = None


class CheckSpec(_Model):
    """A validation rule with the plain-language error a user sees when it fails.

    `required`/`pattern` look at the mapped target `field`; `test` is a JMESPath expression
    on the source record that must be truthy.
    """

    field: str | None = None
    required: bool = False
    pattern: str | None = None
    test: Expr | None = None
    error: str
    summary: str | None = None
    description: str | None = None
    resolution: str | None = None

    @field_validator("pattern")
    @classmethod
    def _compile_pattern(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"invalid regular expression {value!r}: {exc}") from None
        return value

    @model_validator(mode="after")
    def _one_rule(self) -> CheckSpec:
        if not (self.required or self.pattern or self.test):
            raise ValueError("a check needs `required = true`, a `pattern` or a `test`")
        if (self.required or self.pattern) and not self.field:
            raise ValueError("`required` and `pattern` checks need the target `field`")
        return self

    def sentence(self) -> str:
        parts = [f"{self.error}: {self.summary}" if self.summary else f"{self.error}."]
        if self.description:
            parts.append(self.description)
        if self.resolution:
            parts.append(f"Resolution: {self.resolution}")
        return " ".join(parts)


def _shorthand_fields(value: Any) -> Any:
    # `target = "Source"` and `target = ["A", "B"]` are shorthands for `{ from = ... }`.
    if isinstance(value, dict):
        return {k: {"from": v} if isinstance(v, str | list) else v for k, v in value.items()}
    return value


def _shorthand_formulas(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: {"expr": v} if isinstance(v, str) else v for k, v in value.items()}
    return value


class FieldSet(_Model):
    """The rows that turn one source record into one target object."""

    when: Expr | None = None
    fields: Annotated[dict[str, FieldSpec], BeforeValidator(_shorthand_fields)] = {}
    static: dict[str, Any] = {}
    formula: Annotated[dict[str, FormulaSpec], BeforeValidator(_shorthand_formulas)] = {}
    lookups: dict[str, LookupSpec] = {}
    required: list[str] = []
    checks: list[CheckSpec] = []

    def targets(self) -> set[str]:
        """Every target field some row of this set can produce (lookups included)."""
        return set(self.fields) | set(self.static) | set(self.formula) | set(self.lookups)

    @model_validator(mode="after")
    def _each_target_once(self) -> FieldSet:
        seen: dict[str, str] = {}
        for section in ("fields", "static", "formula", "lookups"):
            for name in getattr(self, section):
                if name in seen:
                    raise ValueError(
                        f"target field {name!r} is set by both `{seen[name]}` and `{section}`"
                    )
                seen[name] = section
        return self

    def _check_required(self, extra: set[str]) -> None:
        missing = [n for n in self.required if n not in self.targets() and n not in extra]
        if missing:
            raise ValueError(f"required field(s) {missing} are not produced by any row")


class ChildSpec(FieldSet):
    """Records of another table attached to their parent record as a collection.

    A child joins its parent when the child's `child_key` value equals the parent's
    `parent_key` value (both alias lists). `inherit` copies the parent's body into every
    row (for targets that post rows one by one, such as journal lines). `append` is a
    JMESPath expression over the parent (with `children.<Table>`: the kept child records)
    that yields extra source-shaped rows, mapped like the others. `emit = false` attaches
    the children (they are covered by the operation, parent formulas can read them) but
    sends no collection.
    """

    collection: str
    parent_key: Names = Field(min_length=1)
    child_key: Names = Field(min_length=1)
    inherit: bool = False
    append: Expr | None = None
    emit: bool = True

    @model_validator(mode="after")
    def _required_produced(self) -> ChildSpec:
        self._check_required(set())
        return self


class RouteCase(_Model):
    """One branch of a route: the entity, its collection names, and field differences."""

    entity: str
    collections: dict[str, str] = {}
    fields: Annotated[dict[str, FieldSpec], BeforeValidator(_shorthand_fields)] = {}
    static: dict[str, Any] = {}
    formula: Annotated[dict[str, FormulaSpec], BeforeValidator(_shorthand_formulas)] = {}
    drop: list[str] = []


class Routes(_Model):
    """Send one packet table to different entities by the value of a discriminator field."""

    by: Names = Field(min_length=1)
    cases: dict[str, RouteCase] = Field(min_length=1)


Policy = Literal["create", "update", "upsert", "delete", "status"]


class TableSpec(FieldSet):
    """How one packet table maps: entity, key, operation policy, rows, children, routes.

    `operation = "status"` follows each record's status (insert → create, update → update,
    delete → delete, none → upsert). A fixed policy applies to every record except
    `delete` records, which always become deletes; `read` records are always skipped.
    """

    entity: str | None = None
    operation: Policy = "status"
    key: list[str] = []
    update_fields: list[str] | None = None
    prevent_duplicate: bool = False
    duplicate_message: str | None = None
    children: dict[str, ChildSpec] = {}
    collections: dict[str, Expr] = {}
    routes: Routes | None = None

    @model_validator(mode="after")
    def _consistent(self) -> TableSpec:
        if self.entity is None and self.routes is None:
            raise ValueError("a table needs an `entity` or `routes`")
        targets = self.targets()
        route_targets: set[str] = set()
        if self.routes is not None:
            for case in self.routes.cases.values():
                route_targets |= set(case.fields) | set(case.static) | set(case.formula)
                unknown = set(case.collections) - set(self.children)
                if unknown:
                    raise ValueError(f"route collections name unknown children {sorted(unknown)}")
        self._check_required(route_targets)
        for option in ("key", "update_fields"):
            names = getattr(self, option) or []
            missing = [n for n in names if n not in targets and n not in route_targets]
            if missing:
                raise ValueError(f"{option} field(s) {missing} are not produced by any row")
        clash = set(self.collections) & {c.collection for c in self.children.values()}
        if clash:
            raise ValueError(f"collections {sorted(clash)} are also child collections")
        return self


class ContactFields(_Model):
    """`[contact_fields]` of a contact mapping: which of the fields it produces are the
    contact's number, names and email, where its custom fields, company and addresses are.
    A CRM stores every other field by its own `[contact_columns]`."""

    number: str
    first_name: str
    last_name: str
    email: str
    custom: str | None = None  # an object of custom fields, stored like the other fields
    company: str | None = None  # the lookup row naming the contact's company
    addresses: str | None = None  # the child collection of the contact's addresses
    address_once: str | None = None  # a row flag: the same address twice is written once


class LookupAt(_Model):
    """Where a target keeps the records a neutral lookup entity (`company`) names."""

    entity: str
    match: str


class ContactColumns(_Model):
    """`[contact_columns]` of a CRM's mapping: where that CRM keeps a contact produced by
    the contact mapping (`CONTACT_MAPPING`). Column names are the org's or instance's own:
    a deployment with another publisher prefix or other custom field ids edits them here."""

    entity: str = "contacts"
    number: str  # holds the contact's number; looked up before every insert
    email: str | None = None  # holds its email; looked up before an insert, after the number
    rowid: str | None = None  # holds the mobile row a contact came from (CRM as a Service)
    columns: dict[str, str] = {}  # contact field (custom ones included) → column
    address_columns: dict[str, str] = {}  # address field → column (in each address slot)
    address_slots: int = Field(default=1, ge=1)  # how many addresses a contact holds
    address_column: str = "{column}"  # the column of a slot, e.g. "address{slot}_{column}"
    company_bind: str | None = None  # the column binding the company's id

    @field_validator("address_column")
    @classmethod
    def _formats(cls, value: str) -> str:
        try:
            value.format(slot=1, column="c")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"use {{slot}} and {{column}} only: {exc}") from None
        return value


class Mapping(_Model):
    """A whole mapping file."""

    name: str
    description: str = ""
    unknown_tables: Literal["skip", "quarantine"] = "quarantine"
    ignore_tables: list[str] = []
    tables: dict[str, TableSpec] = {}
    options: dict[str, Any] = {}  # target-specific switches; the target checks their values
    # neutral entity names lookups use (`company`) → where this target keeps those records
    lookup_entities: dict[str, LookupAt] = {}
    contact_fields: ContactFields | None = None  # a contact mapping's meaning of its fields
    contact_columns: ContactColumns | None = None  # where a CRM keeps contacts
    source: str | None = None  # the file it was loaded from (set by load_mapping)

    @model_validator(mode="after")
    def _tables_once(self) -> Mapping:
        owners: dict[str, str] = {}
        for parent, spec in self.tables.items():
            for child in spec.children:
                if child in self.tables:
                    raise ValueError(f"table {child!r} is both a table and a child of {parent!r}")
                if child in owners:
                    raise ValueError(
                        f"table {child!r} is a child of both {owners[child]!r} and {parent!r}"
                    )
                owners[child] = parent
        for name in self.ignore_tables:
            if name in self.tables or name in owners:
                raise ValueError(f"table {name!r} is both ignored and mapped")
        return self

    def child_parents(self) -> dict[str, str]:
        """Child table name → the parent table that collects it."""
        return {c: p for p, spec in self.tables.items() for c in spec.children}

    def document_shape(self) -> DocumentShape:
        """Which tables are children of which, for assembling documents from a packet
        (`packets.assembly`): the mapper needs a parent and its children in one batch."""
        return DocumentShape(
            {
                child: Join(parent, tuple(spec.parent_key), tuple(spec.child_key))
                for parent, table in self.tables.items()
                for child, spec in table.children.items()
            }
        )


ModelT = TypeVar("ModelT", bound=BaseModel)


def _where(error: dict[str, Any]) -> str:
    return ".".join(str(part) for part in error["loc"] if part not in ("", None))


def _message(error: dict[str, Any]) -> str:
    return str(error["msg"]).removeprefix("Value error, ")


def read_toml(text: str, *, source: str) -> dict[str, Any]:
    """Parse mapping `text` as TOML; `MappingError` names `source`."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise MappingError(f"not valid TOML: {exc}", source=source) from None


def validate_mapping(
    model: type[ModelT], data: dict[str, Any], *, source: str, at: str = ""
) -> ModelT:
    """`data` (found at path `at` of the file) validated as `model`; `MappingError` names
    `source` and the path at fault (every fault is listed in the message)."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)

        def where(error: dict[str, Any]) -> str:
            return ".".join(p for p in (at, _where(error)) if p)

        if len(errors) == 1:
            path = where(errors[0]) or None
            raise MappingError(_message(errors[0]), source=source, path=path) from None
        details = "; ".join(
            f"{where(e)}: {_message(e)}" if where(e) else _message(e) for e in errors
        )
        raise MappingError(details, source=source) from None


def parse_mapping(text: str, *, source: str) -> Mapping:
    """Validate TOML `text`; `source` names the file in error messages."""
    data = read_toml(text, source=source)
    data.setdefault("name", Path(source).stem)
    data["source"] = source
    return validate_mapping(Mapping, data, source=source)


def shipped_mappings(folder: str = "") -> list[str]:
    """Names of the mapping files shipped with packetworker (in `folder`, e.g. `outbound`)."""
    root = resources.files(SHIPPED_PACKAGE).joinpath(SHIPPED_FOLDER)
    if folder:
        root = root.joinpath(folder)
    names = (p.name for p in root.iterdir())
    return sorted(n.removesuffix(".toml") for n in names if n.endswith(".toml"))


def read_mapping_file(name_or_path: str | Path, *, folder: str = "") -> tuple[str, str]:
    """(text, source) of a shipped mapping by name (`"bc-field-sales"`, looked for in
    `mapping_files/<folder>`) or of any mapping file by path."""
    text_name = str(name_or_path)
    if isinstance(name_or_path, Path) or text_name.endswith(".toml") or "/" in text_name:
        path = Path(name_or_path)
        try:
            return path.read_text(encoding="utf-8"), str(path)
        except OSError as exc:
            raise MappingError(
                f"cannot read mapping file: {exc.strerror}", source=str(path)
            ) from None
    root = resources.files(SHIPPED_PACKAGE).joinpath(SHIPPED_FOLDER)
    resource = (root.joinpath(folder) if folder else root).joinpath(f"{text_name}.toml")
    if not resource.is_file():
        known = ", ".join(shipped_mappings(folder)) or "none"
        raise MappingError(f"no shipped mapping named {text_name!r} (shipped: {known})")
    return resource.read_text(encoding="utf-8"), f"{text_name}.toml"


def load_mapping(name_or_path: str | Path) -> Mapping:
    """Load a shipped mapping by name (`"bc-field-sales"`) or any mapping file by path."""
    text, source = read_mapping_file(name_or_path)
    return parse_mapping(text, source=source)
