"""A CRM as a Service emulator over real HTTP, for tests and demos.

Enforces what the client must cope with: the `Ocp-Apim-Subscription-Key` header (APIM
answers 401 to an unknown key; either of the two instance keys works), `page`/`size`
paging with an `items` envelope, lead archive/convert, opportunity status/stage, merges,
bulk deletes, and (via `faults`) 429 with `Retry-After`.

Contact rules (invalid or missing email, the same email twice, an unknown
`organizationId`) are NOT documented by seed 003: its ERRORS section only says 2xx is
success, 4xx "failed given the information provided" (some with "an error code that
briefly explains the error", format unstated) and 5xx a server error. So how they are
answered is a switch, `contact_errors`, and the client must work with every variant:

- "plain" (default): each refusal is a 400 whose body is only a message;
- "coded": 400 `invalid_email`/`missing_email`, 409 `duplicate_contact`, 404
  `organization_not_found`, bodies `{"statusCode", "code", "message"}` (invented);
- "lenient": nothing is checked; the CRM stores whatever it is sent.
"""

from __future__ import annotations

import re
import secrets
import threading
from datetime import UTC, datetime
from typing import Any, Literal

from werkzeug.wrappers import Request, Response

from packetworker.sandbox.crm_http import Emulator, json_response

COLLECTIONS = {
    "/pipeline/leads": "leads",
    "/pipeline/opportunities": "opportunities",
    "/directory/contacts": "contacts",
    "/directory/organizations": "organizations",
    "/cases/cases": "cases",
    "/cases/types/cases": "case_types",
    "/pipeline/tags/leads": "tags_leads",
    "/pipeline/tags/opportunities": "tags_opportunities",
    "/directory/tags/contacts": "tags_contacts",
    "/directory/tags/organizations": "tags_organizations",
    "/cases/tags/cases": "tags_cases",
}
FORMS = (
    "/pipeline/forms/opportunities",
    "/directory/forms/contacts",
    "/directory/forms/organizations",
)
BULK = {
    "/pipeline/bulk-actions": {"lead": "leads", "opportunity": "opportunities"},
    "/directory/bulk-actions": {"contact": "contacts", "organization": "organizations"},
    "/cases/bulk-actions": {"case": "cases"},
}
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_ACTION_RE = re.compile(r"^(?P<base>/[a-z]+/[a-z]+)/(?P<id>[^/]+)/(?P<action>[A-Za-z]+)$")
DEFAULT_PAGE_SIZE = 10
ContactErrors = Literal["plain", "coded", "lenient"]
# How each undocumented contact refusal is answered per variant: (status, code).
_CODED = {
    "missing_email": (400, "missing_email"),
    "invalid_email": (400, "invalid_email"),
    "duplicate_contact": (409, "duplicate_contact"),
    "organization_not_found": (404, "organization_not_found"),
}


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class CrmaasEmulator(Emulator):
    """`with CrmaasEmulator(primary_key="k1", secondary_key="k2") as crm: ... crm.url ...`"""

    def __init__(
        self,
        *,
        primary_key: str = "primary-key",
        secondary_key: str = "secondary-key",
        unique_contact_email: bool = True,
        contact_errors: ContactErrors = "plain",
    ) -> None:
        super().__init__()
        self.keys = {"primary": primary_key, "secondary": secondary_key}
        self.accepted_keys: list[str] = []  # "primary"/"secondary", one per accepted request
        self.unique_contact_email = unique_contact_email
        self.contact_errors = contact_errors
        self.tables: dict[str, dict[str, dict[str, Any]]] = {n: {} for n in COLLECTIONS.values()}
        self.forms: dict[str, list[dict[str, Any]]] = {path: [] for path in FORMS}
        self.pipelines = [
            {
                "id": "pipeline-1",
                "name": "Sales",
                "stages": [
                    {"key": "qualify", "label": "Qualify"},
                    {"key": "propose", "label": "Propose"},
                ],
            }
        ]
        self._next_id = 0
        self._store = threading.RLock()

    # --- test helpers -----------------------------------------------------------------------

    def records(self, table: str) -> list[dict[str, Any]]:
        with self._store:
            return [dict(r) for r in self.tables[table].values()]

    def seed(self, table: str, **fields: Any) -> str:
        with self._store:
            record = self._new(table, fields)
        return record["id"]

    def regenerate(self, which: str) -> None:
        """Replace the "primary" or "secondary" key, as an admin rotating keys does."""
        self.keys[which] = secrets.token_hex(8)

    # --- HTTP -------------------------------------------------------------------------------

    def throttled(self, retry_after: int) -> Response:
        return json_response(
            429,
            {
                "statusCode": 429,
                "message": f"Rate limit is exceeded. Try again in {retry_after} seconds.",
            },
            {"Retry-After": str(retry_after)},
        )

    def late_dropped(self) -> Response:
        # seed 003 ERRORS: "5xx ... an error with CRM's servers"; APIM's gateway timeout.
        return json_response(504, {"statusCode": 504, "message": "Gateway Timeout"})

    def dispatch(self, request: Request) -> Response:
        key = request.headers.get("Ocp-Apim-Subscription-Key") or request.args.get(
            "subscription-key"
        )
        which = next((name for name, value in self.keys.items() if key and key == value), None)
        if which is None:
            return json_response(
                401,
                {
                    "statusCode": 401,
                    "message": "Access denied due to invalid subscription key. Make sure to "
                    "provide a valid key for an active subscription.",
                },
            )
        self.accepted_keys.append(which)
        try:
            body = request.get_json(silent=True) if request.get_data() else None
            with self._store:
                status, payload = self._route(request.method, request.path, request.args, body)
        except ApiError as error:
            status = error.status
            payload = {"statusCode": error.status, "message": error.message}
            if error.code:
                payload["code"] = error.code
        return json_response(status, payload)

    def _route(self, method: str, path: str, args, body) -> tuple[int, Any]:
        path = path.rstrip("/")
        if path in COLLECTIONS:
            table = COLLECTIONS[path]
            if method == "GET":
                return 200, self._list(table, args)
            if method == "POST":
                return 201, {"item": self._create(table, _object(body))}
        if path in FORMS:
            if method == "GET":
                return 200, {"items": self.forms[path]}
            if method == "PUT":
                self.forms[path] = list(_object(body).get("fields") or [])
                return 200, {"item": {"fields": self.forms[path]}}
        if path in BULK and method == "POST":
            return self._bulk(path, _object(body))
        if path == "/pipeline/pipelines/opportunities" and method == "GET":
            return 200, {"items": self.pipelines}
        action = _ACTION_RE.match(path)
        if action:
            return self._action(method, action["base"], action["id"], action["action"], body)
        base, _, record_id = path.rpartition("/")
        if base == "/pipeline/pipelines/opportunities" and method == "GET":
            found = next((p for p in self.pipelines if p["id"] == record_id), None)
            if found is None:
                raise ApiError(404, "not_found", f"Pipeline {record_id} not found")
            return 200, {"item": found}
        if base in COLLECTIONS:
            table = COLLECTIONS[base]
            record = self._get(table, record_id)
            if method == "GET":
                return 200, {"item": record}
            if method == "PATCH":
                return 200, {"item": self._update(table, record, _object(body))}
            if method == "DELETE":
                del self.tables[table][record_id]
                return 204, None
        raise ApiError(404, "not_found", f"No route for {method} {path}")

    # --- records ----------------------------------------------------------------------------

    def _list(self, table: str, args) -> dict[str, Any]:
        page = max(1, int(args.get("page", 1)))
        size = max(1, int(args.get("size", DEFAULT_PAGE_SIZE)))
        rows = list(self.tables[table].values())
        for name, value in args.items():
            if name in ("page", "size", "sort", "orderBy", "searchValue", "offset"):
                continue
            rows = [r for r in rows if _matches(r, name, value)]
        if args.get("orderBy"):
            column = args["orderBy"]
            rows.sort(
                key=lambda r: str(r.get(column, "")),
                reverse=args.get("sort", "asc").lower() == "desc",
            )
        start = (page - 1) * size
        return {"items": rows[start : start + size], "total": len(rows), "page": page, "size": size}

    def _get(self, table: str, record_id: str) -> dict[str, Any]:
        record = self.tables[table].get(record_id)
        if record is None:
            raise ApiError(404, "not_found", f"{table[:-1].capitalize()} {record_id} not found")
        return record

    def _create(self, table: str, body: dict[str, Any]) -> dict[str, Any]:
        self._validate(table, body, record_id=None, creating=True)
        return self._new(table, body)

    def _new(self, table: str, fields: dict[str, Any]) -> dict[str, Any]:
        self._next_id += 1
        now = _now()
        record = {**fields, "id": str(self._next_id), "createdOn": now, "lastUpdatedOn": now}
        self.tables[table][record["id"]] = record
        return record

    def _update(self, table: str, record: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        self._validate(table, body, record_id=record["id"], creating=False)
        record.update({k: v for k, v in body.items() if k not in ("id", "createdOn")})
        record["lastUpdatedOn"] = _now()
        return record

    def _validate(
        self, table: str, body: dict[str, Any], *, record_id: str | None, creating: bool
    ) -> None:
        if self.contact_errors == "lenient":  # seed 003 documents none of these rules
            return
        if table in ("contacts", "organizations") and (creating or "email" in body):
            emails = [e.get("value") if isinstance(e, dict) else e for e in body.get("email") or []]
            emails = [e for e in emails if e not in (None, "")]
            if table == "contacts" and not emails:
                self._refuse("missing_email", "email is required")
            for value in emails:
                if not isinstance(value, str) or not EMAIL_RE.match(value):
                    self._refuse("invalid_email", f"email '{value}' is not a valid email address")
            if table == "contacts" and self.unique_contact_email:
                wanted = {e.casefold() for e in emails}
                for other in self.tables["contacts"].values():
                    if other["id"] != record_id and wanted & _emails(other):
                        self._refuse(
                            "duplicate_contact",
                            f"A contact with this email already exists (id {other['id']})",
                        )
        org = body.get("organizationId")
        if org not in (None, "") and str(org) not in self.tables["organizations"]:
            self._refuse("organization_not_found", f"Organization {org} not found")

    def _refuse(self, rule: str, message: str) -> None:
        """seed 003 ERRORS: a 4xx; its status and code per the `contact_errors` variant."""
        if self.contact_errors == "coded":
            status, code = _CODED[rule]
            raise ApiError(status, code, message)
        raise ApiError(400, "", message)

    # --- actions ----------------------------------------------------------------------------

    def _action(self, method: str, base: str, record_id: str, action: str, body) -> tuple[int, Any]:
        body = body if isinstance(body, dict) else {}
        if base == "/pipeline/leads" and method == "PATCH" and action in ("archive", "unarchive"):
            lead = self._get("leads", record_id)
            lead["isArchived"] = action == "archive"
            return 200, {"item": lead}
        if base == "/pipeline/leads" and method == "POST" and action == "convert":
            lead = self._get("leads", record_id)
            if lead.get("isConverted"):
                raise ApiError(409, "already_converted", f"Lead {record_id} is already converted")
            fields = {
                k: v
                for k, v in lead.items()
                if k not in ("id", "createdOn", "lastUpdatedOn", "isArchived")
            }
            opportunity = self._new(
                "opportunities", {**fields, "leadId": record_id, "status": "open"}
            )
            lead["isConverted"] = True
            return 200, {"item": opportunity}
        if base == "/pipeline/opportunities" and method == "PATCH" and action == "updateStatus":
            opportunity = self._get("opportunities", record_id)
            if not body.get("status"):
                raise ApiError(400, "invalid_status", "status is required")
            opportunity.update(
                {k: v for k, v in body.items() if k in ("status", "lostReason", "lastUpdatedBy")}
            )
            return 200, {"item": opportunity}
        if base == "/pipeline/opportunities" and method == "PATCH" and action == "updateStage":
            opportunity = self._get("opportunities", record_id)
            stages = {s["key"] for p in self.pipelines for s in p["stages"]}
            if body.get("stage") not in stages:
                raise ApiError(400, "invalid_stage", f"Unknown stage {body.get('stage')!r}")
            opportunity["stage"] = body["stage"]
            return 200, {"item": opportunity}
        if (
            base in ("/directory/contacts", "/directory/organizations")
            and method == "POST"
            and action == "merge"
        ):
            table = COLLECTIONS[base]
            target = self._get(table, record_id)
            sources = [self._get(table, str(s)) for s in body.get("sourceId") or []]
            for source in sources:
                for name, value in source.items():
                    if name in ("email", "phone"):
                        seen = {str(e.get("value")).casefold() for e in target.get(name) or []}
                        extra = [
                            dict(e, primary=False)
                            for e in value or []
                            if str(e.get("value")).casefold() not in seen
                        ]
                        target[name] = list(target.get(name) or []) + extra
                    elif target.get(name) in (None, "", [], {}):
                        target[name] = value
                del self.tables[table][source["id"]]
            return 200, {"item": target}
        raise ApiError(404, "not_found", f"No route for {method} {base}/{record_id}/{action}")

    def _bulk(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        tables = BULK[path]
        if body.get("entity") not in tables:
            raise ApiError(400, "invalid_entity", f"entity must be one of {sorted(tables)}")
        if body.get("action") != "delete":
            raise ApiError(400, "invalid_action", "only the 'delete' action is supported")
        table = tables[body["entity"]]
        for record_id in body.get("ids") or []:
            self.tables[table].pop(str(record_id), None)
        return 204, None


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_body", "a JSON object is required")
    return body


def _emails(record: dict[str, Any]) -> set[str]:
    return {
        str(e.get("value") if isinstance(e, dict) else e).casefold()
        for e in record.get("email") or []
    }


def _matches(record: dict[str, Any], name: str, value: str) -> bool:
    if name == "email":
        return value.casefold() in _emails(record)
    if name in ("ids",):
        return record["id"] in value.split(",")
    if name in ("title", "name"):
        return value.casefold() in str(record.get(name, "")).casefold()
    if name in ("contactId", "organizationId", "ownerId"):
        return str(record.get(name, "")) in value.split(",")
    actual = record.get(name)
    if isinstance(actual, bool):
        return actual == (value.lower() == "true")
    return str(actual) == value if actual is not None else value.lower() in ("false", "")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
