"""Entity routes: companies and the company-scoped entity sets, with OData query options
(`$filter`, `$select`, `$expand`, `$orderby`, `$top`, `$skip`) and server-driven paging, and
the bound actions that post documents (`Microsoft.NAV.shipAndInvoice`, `Microsoft.NAV.post`)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from packetworker.sandbox.bc.entities import ENTITY_SETS
from packetworker.sandbox.bc.errors import ODataError
from packetworker.sandbox.bc.filters import FilterError, compile_filter
from packetworker.sandbox.bc.odata import int_arg, path_segments
from packetworker.sandbox.bc.store import Change, Store

_BOUND = "Microsoft.NAV."


class EntityRoutes:
    """Answers one operation on the store as (status, headers, payload)."""

    def __init__(self, db: Store, *, page_size: int, base_url: Callable[[], str]) -> None:
        self.db = db
        self.page_size = page_size
        self.base_url = base_url  # known once the server listens

    def committed(
        self, method: str, path: str, args: dict, headers: dict, body: Any
    ) -> tuple[int, dict, Any, list[Change]]:
        """Run one operation under the store lock; also return the changes it committed."""
        with self.db.lock:
            mark = len(self.db.changes)
            status, out_headers, payload = self.dispatch(method, path, args, headers, body)
            changes = self.db.changes[mark:]
            del self.db.changes[mark:]
        return status, out_headers, payload, changes

    def dispatch(self, method, path, args, headers, body) -> tuple[int, dict, Any]:
        segments = path_segments(path)
        if not segments:
            sets = [{"name": name, "kind": "EntitySet", "url": name} for name in ENTITY_SETS]
            return 200, {}, {"value": [{"name": "companies", "url": "companies"}, *sets]}
        name, key = segments[0]
        if name == "companies":
            if key is None:
                if len(segments) > 1:
                    raise ODataError(
                        400, "BadRequest_InvalidRequestUrl", "A company key is needed."
                    )
                companies = list(self.db.companies.values())
                return self._collection("companies", companies, args, headers, path)
            company = self.db.company(key)
            rest = segments[1:]
        else:
            company_key = args.get("company") or headers.get("Company")
            if not company_key:
                raise ODataError(
                    400, "BadRequest_InvalidRequestUrl", "A company must be specified."
                )
            company = self.db.company(company_key)
            rest = segments
        if not rest:
            return 200, {}, dict(company)
        return self._entity(method, company["id"], rest, args, headers, body, path)

    def _entity(self, method, cid, rest, args, headers, body, path):
        db = self.db
        (set_name, key), *nav = rest
        if set_name not in ENTITY_SETS:
            raise ODataError(
                404,
                "BadRequest_NotFound",
                f"No HTTP resource was found that matches the request URI '{set_name}'.",
            )
        spec = ENTITY_SETS[set_name]
        parent_id = None
        if nav and nav[0][0].startswith(_BOUND):
            # Bound actions (doc §3.4, §3.7): POST {set}({id})/Microsoft.NAV.{action} → 204.
            if method != "POST" or key is None or len(nav) > 1:
                raise ODataError(
                    405, "BadRequest_MethodNotAllowed", f"'{method}' on {path} is not allowed."
                )
            db.act(cid, set_name, key, nav[0][0][len(_BOUND) :])
            return 204, {}, None
        if nav:
            if key is None or len(nav) > 1 or nav[0][0] not in spec.children:
                raise ODataError(400, "BadRequest_InvalidRequestUrl", f"Unsupported path {path}.")
            db.get(cid, set_name, key)  # 404 if the parent is missing
            parent_id = key.lower()
            set_name, key = spec.children[nav[0][0]], nav[0][1]
            spec = ENTITY_SETS[set_name]
        if_match = headers.get("If-Match") or headers.get("if-match")
        if key is None:
            if method == "GET":
                if parent_id:
                    rows = db.children(cid, set_name, parent_id)
                else:
                    rows = list(db.table(cid, set_name).values())
                return self._collection(set_name, rows, args, headers, path, cid=cid)
            if method == "POST":
                if not isinstance(body, dict):
                    raise ODataError(400, "BadRequest", "A JSON object body is required.")
                row = db.insert(cid, set_name, body, parent_id=parent_id)
                return (
                    201,
                    {"Location": f"{set_name}({row['id']})"},
                    self._shape(cid, spec, row, args),
                )
            raise ODataError(
                405, "BadRequest_MethodNotAllowed", f"'{method}' on a collection is not allowed."
            )
        if method == "GET":
            return 200, {}, self._shape(cid, spec, db.get(cid, set_name, key), args)
        if method == "PATCH":
            if not isinstance(body, dict):
                raise ODataError(400, "BadRequest", "A JSON object body is required.")
            row = db.update(cid, set_name, key, body, if_match)
            return 200, {}, self._shape(cid, spec, row, args)
        if method == "DELETE":
            db.delete(cid, set_name, key, if_match)
            return 204, {}, None
        raise ODataError(405, "BadRequest_MethodNotAllowed", f"'{method}' is not allowed.")

    def _collection(self, set_name, rows, args, headers, path, *, cid=None):
        unknown = set(args) - {
            "$filter", "$select", "$expand", "$top", "$skip", "$skiptoken", "$orderby",
            "company", "$count", "$schemaversion",
        }  # fmt: skip
        if unknown:
            raise ODataError(400, "BadRequest_NotFound", f"Unsupported query option {unknown}.")
        if "$filter" in args:
            try:
                predicate = compile_filter(args["$filter"])
                rows = [r for r in rows if predicate(r)]
            except FilterError as exc:
                raise ODataError(400, "BadRequest_NotFound", str(exc)) from None
        if "$orderby" in args:
            for part in reversed(args["$orderby"].split(",")):
                field, _, direction = part.strip().partition(" ")
                rows.sort(
                    key=lambda r, f=field: (r.get(f) is None, r.get(f)), reverse=direction == "desc"
                )
        start = int_arg(args, "$skip") + int_arg(args, "$skiptoken")
        end = len(rows)
        if "$top" in args:
            end = min(end, int_arg(args, "$skip") + int_arg(args, "$top"))
        page = self.page_size
        prefer = headers.get("Prefer", "")
        match = re.search(r"odata\.maxpagesize=(\d+)", prefer)
        if match:
            page = min(page, max(1, int(match.group(1))))
        chunk = rows[start : min(end, start + page)]
        spec = ENTITY_SETS.get(set_name)
        value = [self._shape(cid, spec, r, args, envelope=False) for r in chunk]
        result: dict[str, Any] = {
            "@odata.context": f"{self.base_url()}/$metadata#{set_name}",
            "value": value,
        }
        if start + page < end:
            query = {k: v for k, v in args.items() if k != "$skiptoken"}
            query["$skiptoken"] = str(start + page - int_arg(args, "$skip"))
            result["@odata.nextLink"] = f"{self.base_url()}/{path}?{urlencode(query)}"
        return 200, {}, result

    def _shape(self, cid, spec, row, args, *, envelope=True) -> dict:
        out = dict(row)
        if spec is not None and "$expand" in args:
            for nav in filter(None, (n.strip() for n in args["$expand"].split(","))):
                if nav not in spec.children:
                    raise ODataError(400, "BadRequest_NotFound", f"Cannot expand '{nav}'.")
                child = ENTITY_SETS[spec.children[nav]]
                out[nav] = [dict(r) for r in self.db.children(cid, child.name, row["id"])]
        if "$select" in args:
            keep = {s.strip() for s in args["$select"].split(",")} | {"@odata.etag"}
            if spec is not None:
                keep |= set(spec.children)
            out = {k: v for k, v in out.items() if k in keep}
        return out
