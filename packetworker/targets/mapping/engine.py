"""The mapper: packet records in, target operations and per-record outcomes out.

Pure: no network, no Redis, no Dramatiq. A target takes the `MappedItem`s, resolves
lookups, checks each operation's key and sends it.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from packetworker.packets.model import PacketHeader, Record, Status, Table
from packetworker.targets.mapping.config import (
    CheckSpec,
    FieldSpec,
    FormulaSpec,
    LookupSpec,
    Mapping,
    TableSpec,
)
from packetworker.targets.mapping.convert import KIND_WORDS, convert
from packetworker.targets.mapping.operations import (
    Action,
    LookupRef,
    MappedItem,
    MappingFault,
    Operation,
)

_ACTIONS: dict[Status, Action] = {
    Status.INSERT: "create",
    Status.UPDATE: "update",
    Status.DELETE: "delete",
    Status.UPSERT: "upsert",
}


class _RowError(Exception):
    """One row of a mapping could not be applied to one record; the message is for users,
    `fault` for the target."""

    def __init__(self, fault: MappingFault, message: str) -> None:
        super().__init__(message)
        self.fault = fault


@dataclass(frozen=True, slots=True)
class _Rows:
    """The effective rows for one record: a table's, a child's, or a table's with a route."""

    where: str  # the mapping path, e.g. "tables.SalesHeader"
    fields: dict[str, FieldSpec]
    static: dict[str, Any]
    formula: dict[str, FormulaSpec]
    lookups: dict[str, LookupSpec]
    required: list[str]
    checks: list[CheckSpec]
    drop: frozenset[str] = frozenset()
    routed: frozenset[str] = frozenset()  # targets a route case sets, found at `route_where`
    route_where: str = ""

    def at(self, section: str, target: str) -> str:
        """The mapping path of one row, for messages."""
        base = self.route_where if target in self.routed else self.where
        return f"{base}.{section}.{target}"


def _rows_of(spec: Any, where: str) -> _Rows:
    return _Rows(
        where, spec.fields, spec.static, spec.formula, spec.lookups, spec.required, spec.checks
    )


def _label(record: Record) -> str:
    rowid = record.dms_rowid
    return f"{record.table.name} row {rowid}" if rowid else f"{record.table.name} row"


def _first(fields: dict[str, str], names: list[str]) -> tuple[str | None, str | None]:
    """The first alias present in `fields` and its value."""
    for name in names:
        if name in fields:
            return name, fields[name]
    return None, None


def _absent(value: Any) -> bool:
    return value is None or value == ""


class Mapper:
    """Applies one `Mapping` to packets.

    Records of tables that collect children (a `SalesHeader` and its `SalesLine`s) are
    buffered until the end of the records given, because a child may come before or after
    its parent and a document must be sent whole (deep insert). The pipeline gives a big
    packet in batches of whole documents (`packets.assembly`), so that buffer spans one
    batch; records of every other table stream straight through.
    """

    def __init__(self, mapping: Mapping) -> None:
        self.mapping = mapping
        self._child_parent = mapping.child_parents()

    # -- packet -------------------------------------------------------------------------
    def map_packet(self, header: PacketHeader, records: Iterable[Record]) -> Iterator[MappedItem]:
        """Yield one `MappedItem` per record or document.

        Records of standalone tables are yielded as they arrive; documents (parents with
        their children) follow at the end, in the source order of their parents. Children
        whose parent is not in the packet come last, as errors.
        """
        documents: list[Record] = []
        waiting: dict[str, dict[str, list[Record]]] = {}
        for record in records:
            name = record.table.name
            spec = self.mapping.tables.get(name)
            if spec is not None and spec.children:
                documents.append(record)
            elif name in self._child_parent:
                item = self._hold_child(record, waiting)
                if item is not None:
                    yield item
            else:
                yield from self._map_record(header, record, {})
        for parent in documents:
            yield from self._map_record(header, parent, self._claim(parent, waiting))
        for by_key in waiting.values():
            for key, orphans in by_key.items():
                for orphan in orphans:
                    parent = self._child_parent[orphan.table.name]
                    yield MappedItem(
                        None,
                        "error",
                        orphan.table.name,
                        orphan.dms_rowid,
                        f"{_label(orphan)} belongs to {parent} {key!r}, which is not in this "
                        f"packet (mapping {self.mapping.name}, tables.{parent}.children).",
                        MappingFault.NO_PARENT,
                    )

    def _hold_child(
        self, record: Record, waiting: dict[str, dict[str, list[Record]]]
    ) -> MappedItem | None:
        name = record.table.name
        parent = self._child_parent[name]
        spec = self.mapping.tables[parent].children[name]
        _, key = _first(record.fields, spec.child_key)
        if _absent(key):
            aliases = " or ".join(spec.child_key)
            return MappedItem(
                None,
                "error",
                name,
                record.dms_rowid,
                f"{_label(record)} has no {aliases} to join it to its {parent} "
                f"(mapping {self.mapping.name}, tables.{parent}.children.{name}.child_key).",
                MappingFault.NO_PARENT,
            )
        waiting.setdefault(name, {}).setdefault(str(key), []).append(record)
        return None

    def _claim(
        self, parent: Record, waiting: dict[str, dict[str, list[Record]]]
    ) -> dict[str, list[Record]]:
        spec = self.mapping.tables[parent.table.name]
        claimed: dict[str, list[Record]] = {}
        for child_table, child in spec.children.items():
            _, key = _first(parent.fields, child.parent_key)
            found = [] if _absent(key) else waiting.get(child_table, {}).pop(str(key), [])
            claimed[child_table] = found
        return claimed

    # -- one record or document ---------------------------------------------------------
    def _map_record(
        self, header: PacketHeader, record: Record, children: dict[str, list[Record]]
    ) -> Iterator[MappedItem]:
        name = record.table.name
        every = [record, *(c for group in children.values() for c in group)]

        def each(
            outcome: Any, message: str | None = None, fault: MappingFault | None = None
        ) -> Iterator[MappedItem]:
            for r in every:
                yield MappedItem(None, outcome, r.table.name, r.dms_rowid, message, fault)

        if name in self.mapping.ignore_tables:
            yield from each("ignored")
            return
        spec = self.mapping.tables.get(name)
        if spec is None:
            if self.mapping.unknown_tables == "skip":
                yield from each("skipped", f"Table {name} is not in mapping {self.mapping.name}.")
            else:
                yield from each(
                    "error",
                    f"Table {name} is not in mapping {self.mapping.name}, "
                    "whose unknown_tables policy is quarantine.",
                    MappingFault.UNKNOWN_TABLE,
                )
            return
        if record.status is Status.READ:
            yield from each("skipped", f"{_label(record)} has status read; nothing to apply.")
            return
        try:
            context = self._context(header, record)
            where = f"tables.{name}.when"
            if spec.when is not None and not self._evaluate(spec.when, context, record, where):
                yield from each("filtered")
                return
            operation, filtered = self._operation(header, record, spec, context, children)
        except _RowError as exc:
            first = str(exc)
            yield MappedItem(None, "error", name, record.dms_rowid, first, exc.fault)
            for r in every[1:]:
                yield MappedItem(
                    None,
                    "error",
                    r.table.name,
                    r.dms_rowid,
                    f"{_label(r)} is part of {_label(record)}, which could not be mapped: {first}",
                    exc.fault,
                )
            return
        yield MappedItem(operation, "mapped", name, record.dms_rowid)
        for r in filtered:
            yield MappedItem(None, "filtered", r.table.name, r.dms_rowid)

    def _context(self, header: PacketHeader, record: Record, **extra: Any) -> dict[str, Any]:
        # Context names win over field names: `header` and `table` are documented names.
        context: dict[str, Any] = dict(record.fields)
        context["header"] = {"salesmancode": header.salesmancode, **header.attributes}
        context["table"] = {"name": record.table.name, **record.table.attributes}
        context.update(extra)
        return context

    def _operation(
        self,
        header: PacketHeader,
        record: Record,
        spec: TableSpec,
        context: dict[str, Any],
        children: dict[str, list[Record]],
    ) -> tuple[Operation, list[Record]]:
        name = record.table.name
        rows = _rows_of(spec, f"tables.{name}")
        entity = spec.entity
        collection_names = {t: c.collection for t, c in spec.children.items()}
        if spec.routes is not None:
            rows, entity, routed = self._route(record, spec, rows)
            collection_names.update(routed)
        assert entity is not None  # guaranteed by TableSpec validation
        action = self._action(spec, record)

        # Children are filtered first so the parent's formulas can read the kept ones
        # (`children.SalesLine[]`); rows are built after the parent body they may inherit.
        source: list[tuple[str, str | None]] = [(name, record.dms_rowid)]
        filtered: list[Record] = []
        kept: dict[str, list[Record]] = {}
        for child_table, child in spec.children.items():
            kept[child_table] = []
            where = f"tables.{name}.children.{child_table}.when"
            for child_record in children.get(child_table, []):
                child_context = self._context(header, child_record, parent=dict(record.fields))
                if child.when is not None and not self._evaluate(
                    child.when, child_context, child_record, where
                ):
                    filtered.append(child_record)
                else:
                    kept[child_table].append(child_record)
                    source.append((child_table, child_record.dms_rowid))
        context = dict(context)
        context["children"] = {t: [dict(r.fields) for r in group] for t, group in kept.items()}
        body, lookups = self._build(record, rows, context, skip_checks=action == "delete")

        out_children: dict[str, list[dict[str, Any]]] = {}
        for child_table, child in spec.children.items():
            if not child.emit:
                continue
            collection = collection_names[child_table]
            rows_out: list[dict[str, Any]] = []
            child_rows = _rows_of(child, f"tables.{name}.children.{child_table}")
            virtual = [
                Record(table=Table(child_table), status=record.status, fields=extra)
                for extra in self._extra_rows(record, child, context, child_table)
            ]
            for child_record in [*kept[child_table], *virtual]:
                child_context = self._context(header, child_record, parent=dict(record.fields))
                row, row_lookups = self._build(child_record, child_rows, child_context)
                self._add_row(rows_out, row, row_lookups, lookups, collection, body, child.inherit)
            if rows_out:
                out_children[collection] = rows_out

        for collection, expression in spec.collections.items():
            value = self._evaluate(expression, context, record, f"tables.{name}.collections")
            if value is None:
                continue
            if isinstance(value, dict):
                value = [value]
            if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
                raise _RowError(
                    MappingFault.EXPRESSION,
                    f"{_label(record)}: collection {collection} must be a list of objects "
                    f"(mapping {self.mapping.name}, tables.{name}.collections.{collection}).",
                )
            if value:
                out_children[collection] = value

        key: dict[str, Any] = {}
        for field in spec.key:
            if _absent(body.get(field)):
                raise _RowError(
                    MappingFault.MISSING_VALUE,
                    f"{_label(record)}: the key field {field} has no value "
                    f"(mapping {self.mapping.name}, tables.{name}.key).",
                )
            key[field] = body[field]
        operation = Operation(
            entity=entity,
            action=action,
            key=key,
            body=body,
            children=out_children,
            lookups=lookups,
            source=source,
            prevent_duplicate=spec.prevent_duplicate,
            duplicate_message=spec.duplicate_message,
            update_fields=list(spec.update_fields) if spec.update_fields is not None else None,
        )
        return operation, filtered

    @staticmethod
    def _add_row(
        rows_out: list[dict[str, Any]],
        row: dict[str, Any],
        row_lookups: dict[str, LookupRef],
        lookups: dict[str, LookupRef],
        collection: str,
        body: dict[str, Any],
        inherit: bool,
    ) -> None:
        index = len(rows_out)
        if inherit:
            row = {**body, **row}
        rows_out.append(row)
        for field, ref in row_lookups.items():
            lookups[f"{collection}/{index}/{field}"] = dataclasses.replace(
                ref, path=("children", collection, index, *ref.path[1:])
            )

    def _extra_rows(
        self, record: Record, child: Any, context: dict[str, Any], child_table: str
    ) -> list[dict[str, str]]:
        if child.append is None:
            return []
        where = f"tables.{record.table.name}.children.{child_table}.append"
        value = self._evaluate(child.append, context, record, where)
        if value is None or value is False:
            return []
        items = value if isinstance(value, list) else [value]
        if not all(isinstance(item, dict) for item in items):
            raise _RowError(
                MappingFault.EXPRESSION,
                f"{_label(record)}: the append expression must give objects "
                f"(mapping {self.mapping.name}, {where}).",
            )
        # Appended rows are source-shaped: stringify like packet text, drop nulls.
        return [
            {k: v if isinstance(v, str) else str(v) for k, v in item.items() if v is not None}
            for item in items
        ]

    def _route(
        self, record: Record, spec: TableSpec, rows: _Rows
    ) -> tuple[_Rows, str, dict[str, str]]:
        assert spec.routes is not None
        name = record.table.name
        alias, value = _first(record.fields, spec.routes.by)
        case = None if value is None else spec.routes.cases.get(value.strip())
        if case is None:
            field = alias or " or ".join(spec.routes.by)
            known = ", ".join(spec.routes.cases)
            shown = "no value" if value is None else repr(value)
            raise _RowError(
                MappingFault.BAD_VALUE,
                f"{_label(record)}: {field} has {shown}, which has no route (known: {known}) "
                f"(mapping {self.mapping.name}, tables.{name}.routes).",
            )
        overridden = set(case.fields) | set(case.static) | set(case.formula)
        drop = frozenset(case.drop) | overridden

        def keep(section: dict[str, Any]) -> dict[str, Any]:
            return {k: v for k, v in section.items() if k not in drop}

        merged = _Rows(
            where=rows.where,
            fields={**keep(rows.fields), **case.fields},
            static={**keep(rows.static), **case.static},
            formula={**keep(rows.formula), **case.formula},
            lookups=keep(rows.lookups),
            required=[r for r in rows.required if r not in case.drop],
            checks=rows.checks,
            routed=frozenset(overridden),
            route_where=f"tables.{name}.routes.cases.{value.strip()}",
        )
        return merged, case.entity, dict(case.collections)

    @staticmethod
    def _action(spec: TableSpec, record: Record) -> Action:
        if record.status is Status.DELETE:
            return "delete"
        if spec.operation == "status":
            return _ACTIONS[record.status]
        return spec.operation

    # -- rows ---------------------------------------------------------------------------
    def _evaluate(
        self, expression: Any, context: dict[str, Any], record: Record, where: str
    ) -> Any:
        try:
            return expression.search(context)
        except ValueError as exc:
            message = f"{_label(record)}: {exc} (mapping {self.mapping.name}, {where})."
            raise _RowError(MappingFault.EXPRESSION, message) from None

    def _build(
        self,
        record: Record,
        rows: _Rows,
        context: dict[str, Any],
        *,
        skip_checks: bool = False,
    ) -> tuple[dict[str, Any], dict[str, LookupRef]]:
        """Apply field, static, formula and lookup rows, then required and check rows."""
        body: dict[str, Any] = {}
        mapping = self.mapping.name

        def place(target: str, value: Any, into: str | None) -> None:
            if value is None:  # like the packet format: a null value is left out
                return
            if into:
                body.setdefault(into, {})[target] = value
            else:
                body[target] = value

        for target, spec in rows.fields.items():
            alias, value = _first(record.fields, spec.from_)
            if _absent(value) and spec.convert not in (None, "string"):
                value = None
            if value is None:
                value = spec.default
                if value is None:
                    continue
            elif spec.values is not None:
                if value not in spec.values:
                    known = ", ".join(spec.values)
                    raise _RowError(
                        MappingFault.BAD_VALUE,
                        f"{_label(record)}: {alias} has {value!r}, which has no translation "
                        f"(known: {known}) (mapping {mapping}, {rows.at('fields', target)}).",
                    )
                value = spec.values[value]
            try:
                value = convert(value, spec.convert, max_length=spec.max_length)
            except ValueError as exc:
                kind = KIND_WORDS.get(spec.convert or "", "a value")
                raise _RowError(
                    MappingFault.BAD_VALUE,
                    f"{_label(record)}: {alias or 'the default'} cannot be read as {kind} for "
                    f"{target}: {exc} (mapping {mapping}, {rows.at('fields', target)}).",
                ) from None
            place(target, value, spec.into)

        for target, value in rows.static.items():
            place(target, value, None)

        lookups: dict[str, LookupRef] = {}
        for target, formula in rows.formula.items():
            where = rows.at("formula", target)
            value = self._evaluate(formula.expr, context, record, where)
            if isinstance(value, dict) and set(value) == {"$lookup"}:
                # `lookup(value, entity, match)` in a formula: declared like a lookup row.
                marker = value["$lookup"]
                path = ("body", formula.into, target) if formula.into else ("body", target)
                lookups[target] = LookupRef(
                    path, marker["entity"], marker["match"], marker["value"]
                )
                continue
            if value is not None and (formula.convert or formula.max_length):
                if _absent(value) and formula.convert not in (None, "string"):
                    value = None
                else:
                    try:
                        value = convert(value, formula.convert, max_length=formula.max_length)
                    except ValueError as exc:
                        raise _RowError(
                            MappingFault.BAD_VALUE,
                            f"{_label(record)}: the formula for {target} gave a bad value: "
                            f"{exc} (mapping {mapping}, {where}).",
                        ) from None
            place(target, value, formula.into)

        for target in rows.drop:
            body.pop(target, None)

        for target, lookup in rows.lookups.items():
            _, value = _first(record.fields, lookup.from_)
            if _absent(value):
                continue
            path = ("body", lookup.into, target) if lookup.into else ("body", target)
            lookups[target] = LookupRef(
                path=path,
                entity=lookup.entity,
                match=lookup.match,
                value=value,
                bind=lookup.bind,
                message=lookup.message,
                where=self._lookup_where(record, rows, target, lookup),
            )

        if skip_checks:
            return body, lookups
        for target in rows.required:
            if _absent(body.get(target)) and target not in lookups:
                origin = self._origin(rows, target)
                raise _RowError(
                    MappingFault.MISSING_VALUE,
                    f"{_label(record)}: required field {target} has no value{origin} "
                    f"(mapping {mapping}, {rows.where}.required).",
                )
        for index, check in enumerate(rows.checks):
            if not self._passes(check, body, context, record, rows.where, index):
                raise _RowError(
                    MappingFault.RULE,
                    f"{check.sentence()} ({_label(record)}; mapping {mapping}, "
                    f"{rows.where}.checks[{index}])",
                )
        return body, lookups

    def _lookup_where(
        self, record: Record, rows: _Rows, target: str, lookup: LookupSpec
    ) -> tuple[tuple[str, Any], ...]:
        """The look-up's `where` values from `record`; one missing would widen the look-up
        to records of anything (another item's variant), so it is a missing value."""
        where = []
        for field, names in lookup.where.items():
            _, value = _first(record.fields, names)
            if _absent(value):
                raise _RowError(
                    MappingFault.MISSING_VALUE,
                    f"{_label(record)}: the look-up for {target} needs {' or '.join(names)} "
                    f"(mapping {self.mapping.name}, {rows.at('lookups', target)}.where.{field}).",
                )
            where.append((field, value))
        return tuple(where)

    @staticmethod
    def _origin(rows: _Rows, target: str) -> str:
        if target in rows.fields:
            return " (from " + " or ".join(rows.fields[target].from_) + ")"
        if target in rows.lookups:
            return " (from " + " or ".join(rows.lookups[target].from_) + ")"
        return ""

    def _passes(
        self,
        check: CheckSpec,
        body: dict[str, Any],
        context: dict[str, Any],
        record: Record,
        where: str,
        index: int,
    ) -> bool:
        if check.field is not None:
            value = body.get(check.field)
            if _absent(value):
                # An absent value fails `required`; a pattern only judges values given.
                if check.required:
                    return False
            elif check.pattern and not re.fullmatch(check.pattern, str(value)):
                return False
        if check.test is not None:
            test_where = f"{where}.checks[{index}].test"
            return bool(self._evaluate(check.test, context, record, test_where))
        return True
