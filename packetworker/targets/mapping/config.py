"""Mapping files: TOML data, validated on load into typed models.

One file describes how one app's packet tables map to one target's entities (see the
shipped files in `packetworker/targets/mappings/`). Loading checks everything a mapping
can get wrong without seeing a packet — unknown options, bad conversions, JMESPath syntax,
key/required fields that no row produces — and names the file, table and key at fault.
"""

from __future__ import annotations

import re
import tomllib
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

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
from packetworker.targets.mapping.convert import ConvertName
from packetworker.targets.mapping.expressions import Expression, compile_expression

SHIPPED_PACKAGE = "packetworker.targets"
SHIPPED_FOLDER = "mappings"


class MappingConfigError(ValueError, PacketworkerError):
    """A mapping file cannot be used; the message names the file, table and key."""


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


class Mapping(_Model):
    """A whole mapping file."""

    name: str
    description: str = ""
    unknown_tables: Literal["skip", "quarantine"] = "quarantine"
    ignore_tables: list[str] = []
    tables: dict[str, TableSpec] = {}
    options: dict[str, Any] = {}  # target-specific switches; the target checks their values
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


def _describe(error: dict[str, Any]) -> str:
    where = ".".join(str(part) for part in error["loc"] if part not in ("", None))
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


def parse_mapping(text: str, *, source: str) -> Mapping:
    """Validate TOML `text`; `source` names the file in error messages."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise MappingConfigError(f"{source}: not valid TOML: {exc}") from None
    data.setdefault("name", Path(source).stem)
    data["source"] = source
    try:
        return Mapping.model_validate(data)
    except ValidationError as exc:
        details = "; ".join(_describe(e) for e in exc.errors(include_url=False))
        raise MappingConfigError(f"{source}: {details}") from None


def shipped_mappings() -> list[str]:
    """Names of the mapping files shipped with packetworker."""
    folder = resources.files(SHIPPED_PACKAGE).joinpath(SHIPPED_FOLDER)
    names = (p.name for p in folder.iterdir())
    return sorted(n.removesuffix(".toml") for n in names if n.endswith(".toml"))


def load_mapping(name_or_path: str | Path) -> Mapping:
    """Load a shipped mapping by name (`"bc-field-sales"`) or any mapping file by path."""
    text_name = str(name_or_path)
    if isinstance(name_or_path, Path) or text_name.endswith(".toml") or "/" in text_name:
        path = Path(name_or_path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise MappingConfigError(f"{path}: cannot read mapping file: {exc.strerror}") from None
        return parse_mapping(text, source=str(path))
    resource = resources.files(SHIPPED_PACKAGE).joinpath(SHIPPED_FOLDER, f"{text_name}.toml")
    if not resource.is_file():
        known = ", ".join(shipped_mappings()) or "none"
        raise MappingConfigError(f"no shipped mapping named {text_name!r} (shipped: {known})")
    return parse_mapping(resource.read_text(encoding="utf-8"), source=f"{text_name}.toml")
