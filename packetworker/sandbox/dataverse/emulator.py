"""A Dataverse Web API v9.2 emulator over real HTTP, for tests and demos.

It enforces what the service enforces and the client must cope with: bearer tokens from
its own client-credentials token endpoint (401 otherwise), upsert semantics (`If-Match: *`
→ 404 when missing, `If-None-Match: *` → 412 when present), columns the table lacks (400),
alternate keys only where defined and Active, duplicate keys (`0x80040237`), duplicate
detection only when asked for (`MSCRM.SuppressDuplicateDetection: false` → `0x80040333`),
`@odata.bind` lookups (unknown target → 404 `0x80040217`), `$select`/simple `$filter`,
paging by `Prefer: odata.maxpagesize` and `@odata.nextLink`, table metadata
(`EntityDefinitions(LogicalName='…')/Attributes` and `/Keys`), `$batch` (CRLF only, at most
1,000 operations, stop at the first failure unless `Prefer: odata.continue-on-error`, atomic
change sets, `Content-ID` references), and (via `faults`) 429 storms with `Retry-After`.
Every rule names its source (docs/crm.md section) where it is enforced.

The store is a dict per entity set, readable by tests (`records("contacts")`).
"""

from __future__ import annotations

import copy
import json
import re
import secrets
import threading
import time
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

from werkzeug.datastructures import Headers
from werkzeug.wrappers import Request, Response

from packetworker.sandbox.crm_http import Emulator, json_response
from packetworker.sandbox.dataverse.batch_wire import (
    API_PREFIX,
    changeset_part,
    parse_batch,
    parse_request,
    response_part,
)
from packetworker.sandbox.dataverse.model import (
    EntityDef,
    ODataFault,
    default_entities,
    parse_key,
    split_address,
)

DUPLICATE_KEY = "0x80040237"
DUPLICATE_DETECTED = "0x80040333"
DOES_NOT_EXIST = "0x80040217"
MAX_PAGE_SIZE = 5000
MAX_BATCH_OPERATIONS = 1000  # crm.md A.11: up to 1000 individual requests per batch
INVALID_PAYLOAD = "0x80048d19"
_METADATA_RE = re.compile(
    r"^EntityDefinitions\(LogicalName='(?P<table>[^']+)'\)/(?P<kind>Attributes|Keys)$"
)
_TOKEN_PATH_RE = re.compile(r"^/(?P<tenant>[^/]+)/oauth2/v2\.0/token$")
_FILTER_RE = re.compile(r"^\s*(\w+)\s+eq\s+('(?:[^']|'')*'|[-\w.]+)\s*$")

Answer = tuple[int, dict[str, str], Any]  # status, headers, JSON payload (or None)


class DataverseEmulator(Emulator):
    """`with DataverseEmulator(clients={"app": "secret"}) as dv: ... dv.url ...`"""

    def __init__(
        self,
        *,
        clients: Mapping[str, str] | None = None,
        tenant: str = "tenant-1",
        entities: Mapping[str, EntityDef] | None = None,
        token_lifetime: int = 3599,
        max_batch_operations: int = MAX_BATCH_OPERATIONS,
    ) -> None:
        super().__init__()
        self.clients = dict(clients or {"app-id": "app-secret"})
        self.tenant = tenant
        self.entities = dict(entities or default_entities())
        self.token_lifetime = token_lifetime
        self.max_batch_operations = max_batch_operations
        self.tables: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in self.entities}
        self.tokens: dict[str, float] = {}  # access token -> expiry (epoch seconds)
        self.token_requests: list[dict[str, str]] = []  # form fields, secret masked
        self._store = threading.RLock()
        self._version = 1000
        self.identity = {  # what WhoAmI answers (crm.md A.12)
            "BusinessUnitId": str(uuid.uuid4()),
            "UserId": str(uuid.uuid4()),
            "OrganizationId": str(uuid.uuid4()),
        }

    # --- test helpers -----------------------------------------------------------------------

    @property
    def token_url(self) -> str:
        return f"{self.url}/{self.tenant}/oauth2/v2.0/token"

    def records(self, entity_set: str) -> list[dict[str, Any]]:
        with self._store:
            return [dict(r) for r in self.tables[entity_set].values()]

    def seed(self, entity_set: str, **columns: Any) -> str:
        """Insert a record directly (no checks); returns its id."""
        entity = self.entities[entity_set]
        with self._store:
            record_id = str(columns.pop(entity.id_attr, uuid.uuid4()))
            self.tables[entity_set][record_id] = {entity.id_attr: record_id, **columns}
            self._touch(self.tables[entity_set][record_id])
        return record_id

    def revoke_tokens(self) -> None:
        """Invalidate every issued token (the next API call answers 401)."""
        self.tokens.clear()

    # --- HTTP -------------------------------------------------------------------------------

    def is_api(self, request: Request) -> bool:
        return request.path.startswith(API_PREFIX)

    def throttled(self, retry_after: int) -> Response:
        return json_response(
            429,
            {
                "error": {
                    "code": "0x80072322",
                    "message": "Number of requests exceeded the limit of 6000 over time window "
                    "of 300 seconds.",
                }
            },
            {"Retry-After": str(retry_after)},
        )

    def late_dropped(self) -> Response:
        # crm.md A.3: 503 Service Unavailable is Dataverse's documented "try again" status.
        return json_response(
            503, {"error": {"code": "", "message": "The request was not completed in time."}}
        )

    def dispatch(self, request: Request) -> Response:
        match = _TOKEN_PATH_RE.match(request.path)
        if match and request.method == "POST":
            return self._token(request, match.group("tenant"))
        if not request.path.startswith(API_PREFIX):
            return json_response(404, {"error": {"code": "", "message": "Not found"}})
        if not self._authorized(request):
            return Response(status=401, headers={"WWW-Authenticate": "Bearer"})
        base = request.host_url.rstrip("/") + API_PREFIX
        target = request.full_path[len(API_PREFIX) :].rstrip("?")
        if target == "$batch" and request.method == "POST":
            return self._batch(request, base)
        status, headers, payload = self.handle(
            request.method, target, request.headers, request.get_data(), base=base, refs={}
        )
        return json_response(status, payload, headers)

    def _token(self, request: Request, tenant: str) -> Response:
        form = request.form
        self.token_requests.append(
            {k: ("***" if k == "client_secret" else v) for k, v in form.items()}
        )
        if tenant != self.tenant:
            return json_response(
                400, {"error": "invalid_tenant", "error_description": "AADSTS90002"}
            )
        if form.get("grant_type") != "client_credentials":
            return json_response(400, {"error": "unsupported_grant_type"})
        client_id = form.get("client_id", "")
        if client_id not in self.clients or self.clients[client_id] != form.get("client_secret"):
            return json_response(
                401,
                {"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client."},
            )
        if not form.get("scope", "").endswith("/.default"):
            return json_response(400, {"error": "invalid_scope"})
        token = secrets.token_urlsafe(24)
        self.tokens[token] = time.time() + self.token_lifetime
        return json_response(
            200,
            {"token_type": "Bearer", "expires_in": self.token_lifetime, "access_token": token},
        )

    def _authorized(self, request: Request) -> bool:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        expiry = self.tokens.get(token)
        return scheme.lower() == "bearer" and expiry is not None and expiry > time.time()

    # --- one operation ----------------------------------------------------------------------

    def handle(
        self,
        method: str,
        target: str,
        headers: Mapping[str, str] | Headers,
        body: bytes,
        *,
        base: str,
        refs: dict[str, tuple[str, str]],
    ) -> Answer:
        """Run one request against the store. `refs` maps change-set Content-IDs to the
        (entity set, id) they created."""
        try:
            with self._store:
                return self._handle(method, target, headers, body, base=base, refs=refs)
        except ODataFault as fault:
            return fault.status, {}, {"error": {"code": fault.code, "message": fault.message}}
        except ValueError as exc:  # malformed JSON body or key literal
            return 400, {}, {"error": {"code": "0x80060891", "message": f"Bad request: {exc}"}}

    def _handle(self, method, target, headers, body, *, base, refs) -> Answer:
        path, _, query = target.partition("?")
        path = unquote(path)
        if path.startswith("$") and path[1:] in refs:
            entity_set, record_id = refs[path[1:]]
            path = f"{entity_set}({record_id})"
        if path == "WhoAmI" and method == "GET":  # crm.md A.12: the smoke-test function
            return 200, {}, dict(self.identity)
        metadata = _METADATA_RE.match(path)
        if metadata and method == "GET":
            return self._metadata(metadata.group("table"), metadata.group("kind"))
        entity_set, key_text = split_address(path)
        entity = self.entities.get(entity_set)
        if entity is None:
            raise ODataFault(
                404, "0x80060888", f"Resource not found for the segment '{entity_set}'."
            )
        options = {k: v[0] for k, v in parse_qs(query, keep_blank_values=True).items()}
        data = json.loads(body) if body.strip() else {}
        if key_text is None:
            if method == "POST":
                return self._create(entity, data, headers, base=base, refs=refs)
            if method == "GET":
                return self._query(entity, options, headers, base=base)
            raise ODataFault(405, "0x80060888", f"{method} is not supported on a collection.")
        key = parse_key(key_text, entity)
        if method == "GET":
            return 200, {}, self._shape(entity, self._find(entity, key, must=True), options, base)
        if method == "PATCH":
            return self._upsert(entity, key, data, headers, base=base, refs=refs)
        if method == "DELETE":
            record = self._find(entity, key, must=True)
            del self.tables[entity.entity_set][record[entity.id_attr]]
            return 204, {}, None
        raise ODataFault(405, "0x80060888", f"{method} is not supported on a record.")

    def _metadata(self, logical_name: str, kind: str) -> Answer:
        """crm.md A.7: `EntityDefinitions(LogicalName='…')/Attributes` and `/Keys`."""
        entity = next((e for e in self.entities.values() if e.logical_name == logical_name), None)
        if entity is None:
            raise ODataFault(404, "0x80040217", f"Could not find entity {logical_name!r}.")
        if kind == "Keys":
            rows = [
                {
                    "LogicalName": f"{logical_name}_{'_'.join(key.columns)}",
                    "KeyAttributes": list(key.columns),
                    "EntityKeyIndexStatus": key.status,
                }
                for key in entity.alternate_keys
            ]
        else:
            rows = [{"LogicalName": name} for name in sorted(entity.columns or ())]
        return 200, {}, {"value": rows}

    def _create(self, entity, data, headers, *, base, refs) -> Answer:
        record_id = str(data.pop(entity.id_attr, "") or uuid.uuid4()).lower()
        if record_id in self.tables[entity.entity_set]:
            raise ODataFault(
                412, DUPLICATE_KEY, "A record with matching key values already exists."
            )
        record = {entity.id_attr: record_id}
        self._write(entity, record, data, headers, refs=refs, creating=True)
        return self._written(entity, record, headers, base, created=True)

    def _upsert(self, entity, key, data, headers, *, base, refs) -> Answer:
        existing = self._find(entity, key, must=False)
        if headers.get("If-Match") == "*" and existing is None:
            raise ODataFault(
                404,
                DOES_NOT_EXIST,
                f"{entity.logical_name} With Id = {_key_text(key)} Does Not Exist",
            )
        if headers.get("If-None-Match") == "*" and existing is not None:
            raise ODataFault(412, "", "A record with matching key values already exists.")
        if existing is not None:
            self._write(entity, existing, data, headers, refs=refs, creating=False)
            return self._written(entity, existing, headers, base, created=False)
        record_id = key if isinstance(key, str) else str(uuid.uuid4())
        record = {entity.id_attr: record_id}
        if isinstance(key, dict):
            data = {**data, **key}  # key values are applied to the new record
        self._write(entity, record, data, headers, refs=refs, creating=True)
        return self._written(entity, record, headers, base, created=True)

    def _write(self, entity, record, data, headers, *, refs, creating) -> None:
        """Validate `data` against the table and apply it to `record` (new or existing)."""
        changes: dict[str, Any] = {}
        for name, value in data.items():
            if name.endswith("@odata.bind"):
                nav = name[: -len("@odata.bind")]
                lookup = entity.lookups.get(nav)
                if lookup is None:  # crm.md A.5: a lookup's logical name is not a nav property
                    raise ODataFault(
                        400,
                        INVALID_PAYLOAD,
                        f"An error occurred while validating input parameters: An undeclared "
                        f"property '{nav}' which only has property annotations in the payload "
                        f"but no property value was found in the payload.",
                    )
                changes[f"_{lookup.attribute}_value"] = (
                    None if value is None else self._resolve_bind(lookup.target, value, refs)
                )
            elif not name.startswith("@"):
                if not entity.knows(name):  # crm.md A.5: undeclared properties are refused
                    raise ODataFault(
                        400,
                        "0x0",
                        f"Invalid property '{name}' was found in entity "
                        f"'Microsoft.Dynamics.CRM.{entity.logical_name}'.",
                    )
                changes[name] = value
        candidate = {**record, **changes}
        others = [
            r
            for r in self.tables[entity.entity_set].values()
            if r[entity.id_attr] != record[entity.id_attr]
        ]
        # crm.md A.9: the Web API suppresses duplicate detection on create and update unless
        # the request sends `MSCRM.SuppressDuplicateDetection: false`.
        detect = (headers.get("MSCRM.SuppressDuplicateDetection") or "").lower() == "false"
        if (
            detect
            and entity.duplicate_rule
            and _matches_any(candidate, others, entity.duplicate_rule)
        ):
            raise ODataFault(
                500,
                DUPLICATE_DETECTED,
                "A record was not created or updated because a duplicate of the current record "
                "already exists.",
            )
        for key in entity.active_keys():  # crm.md A.4: 0x80040237 duplicate key
            if all(candidate.get(c) is not None for c in key) and any(
                all(r.get(c) == candidate[c] for c in key) for r in others
            ):
                raise ODataFault(
                    412, DUPLICATE_KEY, "A record with matching key values already exists."
                )
        record.update(changes)
        self.tables[entity.entity_set][record[entity.id_attr]] = record
        self._touch(record)

    def _resolve_bind(self, target_set: str, value: str, refs) -> str:
        text = str(value).strip()
        if text.startswith("$") and text[1:] in refs:
            ref_set, ref_id = refs[text[1:]]
            if ref_set != target_set:
                raise ODataFault(400, "0x80060888", f"'{text}' does not refer to {target_set}.")
            return ref_id
        path = urlsplit(text).path if "://" in text else text
        path = unquote(path)
        if API_PREFIX in path:
            path = path.split(API_PREFIX, 1)[1]
        entity_set, key_text = split_address(path.lstrip("/"))
        if entity_set != target_set or key_text is None:
            raise ODataFault(400, "0x80060888", f"Invalid @odata.bind value '{text}'.")
        entity = self.entities[target_set]
        return self._find(entity, parse_key(key_text, entity), must=True)[entity.id_attr]

    def _find(self, entity: EntityDef, key, *, must: bool) -> dict[str, Any] | None:
        table = self.tables[entity.entity_set]
        if isinstance(key, str):
            found = table.get(key)
        else:
            found = next(
                (r for r in table.values() if all(r.get(c) == v for c, v in key.items())), None
            )
        if found is None and must:
            raise ODataFault(
                404,
                DOES_NOT_EXIST,
                f"{entity.logical_name} With Id = {_key_text(key)} Does Not Exist",
            )
        return found

    def _written(self, entity, record, headers, base, *, created: bool) -> Answer:
        if "return=representation" in headers.get("Prefer", ""):
            return (201 if created else 200), {}, self._shape(entity, record, {}, base)
        uri = f"{base}{entity.entity_set}({record[entity.id_attr]})"
        return 204, {"OData-EntityId": uri, "Location": uri}, None

    def _shape(self, entity, record, options, base) -> dict[str, Any]:
        select = [c.strip() for c in options.get("$select", "").split(",") if c.strip()]
        for column in select:
            _known_column(entity, column)
        columns = {c: record.get(c) for c in select} if select else dict(record)
        columns[entity.id_attr] = record[entity.id_attr]
        return {"@odata.etag": f'W/"{record["versionnumber"]}"', **columns}

    def _query(self, entity, options, headers, *, base) -> Answer:
        rows = list(self.tables[entity.entity_set].values())
        for column in options.get("$select", "").split(","):
            if column.strip():
                _known_column(entity, column.strip())
        if options.get("$filter"):
            matches = _filter(options["$filter"], entity)
            rows = [r for r in rows if matches(r)]
        size = MAX_PAGE_SIZE
        match = re.search(r"odata\.maxpagesize=(\d+)", headers.get("Prefer", ""))
        if match:
            size = min(int(match.group(1)), MAX_PAGE_SIZE)
        offset = int(options.get("$skiptoken", "0") or 0)
        page = rows[offset : offset + size]
        payload: dict[str, Any] = {
            "@odata.context": f"{base}$metadata#{entity.entity_set}",
            "value": [self._shape(entity, r, options, base) for r in page],
        }
        if offset + size < len(rows):
            following = {k: v for k, v in options.items() if k != "$skiptoken"}
            following["$skiptoken"] = str(offset + size)
            payload["@odata.nextLink"] = (
                f"{base}{entity.entity_set}?{urlencode(following, quote_via=quote)}"
            )
        answer_headers = {"Preference-Applied": f"odata.maxpagesize={size}"} if match else {}
        return 200, answer_headers, payload

    def _touch(self, record: dict[str, Any]) -> None:
        self._version += 1
        record["versionnumber"] = self._version

    # --- $batch -----------------------------------------------------------------------------

    def _batch(self, request: Request, base: str) -> Response:
        raw = request.get_data()
        if b"\n" in raw.replace(b"\r\n", b""):  # crm.md A.11: line endings must be CRLF
            return _fault_response(400, INVALID_PAYLOAD, "Stream was not readable.")
        message = parse_batch(request)
        if not message.is_multipart():
            return _fault_response(400, "", "Expected multipart/mixed")
        keep_going = "odata.continue-on-error" in request.headers.get("Prefer", "")
        parts = message.get_payload()
        count = sum(len(p.get_payload()) if p.is_multipart() else 1 for p in parts)
        if count > self.max_batch_operations:  # crm.md A.11: up to 1000 requests per batch
            return _fault_response(
                400,
                "0x8006088b",
                f"Number of requests in the batch is {count}, exceeding the maximum of "
                f"{self.max_batch_operations}.",
            )
        out: list[str] = []
        boundary = f"batchresponse_{uuid.uuid4()}"
        with self._store:  # a batch sees no interleaved writes; change sets roll back whole
            for part in parts:
                if part.is_multipart():
                    answers, failed = self._changeset(part, base)
                    if failed is None:
                        out.append(changeset_part(boundary, answers))
                else:
                    method, target, headers, body = parse_request(part)
                    status, hdrs, payload = self.handle(
                        method, target, headers, body, base=base, refs={}
                    )
                    failed = (part.get("Content-ID"), status, hdrs, payload)
                    if status < 400:
                        out.append(response_part(boundary, *failed))
                        failed = None
                if failed is None:
                    continue
                if keep_going:  # crm.md A.11: each failure in its own part, batch 200
                    out.append(response_part(boundary, *failed))
                    continue
                # crm.md A.11: without the preference processing stops at the first failure;
                # the batch answers with that request's status and holds only that failure.
                only = response_part(boundary, *failed) + f"--{boundary}--\r\n"
                return Response(
                    only.encode(),
                    failed[1],
                    content_type=f"multipart/mixed; boundary={boundary}",
                )
        body = "".join(out) + f"--{boundary}--\r\n"
        return Response(body.encode(), 200, content_type=f"multipart/mixed; boundary={boundary}")

    def _changeset(self, part, base):
        snapshot = copy.deepcopy(self.tables)
        version = self._version
        refs: dict[str, tuple[str, str]] = {}
        answers = []
        for inner in part.get_payload():
            method, target, headers, body = parse_request(inner)
            if method == "GET":
                failure = (
                    400,
                    {},
                    {"error": {"code": "", "message": "GET is not allowed in a change set."}},
                )
            else:
                failure = None
            status, hdrs, payload = failure or self.handle(
                method, target, headers, body, base=base, refs=refs
            )
            content_id = inner.get("Content-ID")
            if status >= 400:
                self.tables, self._version = snapshot, version  # all or nothing
                return [], (content_id, status, hdrs, payload)
            uri = hdrs.get("OData-EntityId")
            if content_id and uri:
                entity_set, key = split_address(uri.split(API_PREFIX, 1)[1])
                refs[content_id] = (entity_set, str(key))
            answers.append((content_id, status, hdrs, payload))
        return answers, None


def _fault_response(status: int, code: str, message: str) -> Response:
    return json_response(status, {"error": {"code": code, "message": message}})


def _matches_any(candidate: dict, others: list[dict], columns: tuple[str, ...]) -> bool:
    values = [candidate.get(c) for c in columns]
    if any(v in (None, "") for v in values):
        return False
    folded = [str(v).casefold() for v in values]
    return any([str(o.get(c) or "").casefold() for c in columns] == folded for o in others)


def _known_column(entity: EntityDef, column: str) -> None:
    """crm.md A.5: `$select`/`$filter` naming an unknown (or miscased) column answers 400."""
    lookup_value = column.startswith("_") and column.endswith("_value")
    if not lookup_value and not entity.knows(column):
        raise ODataFault(
            400,
            "0x0",
            f"Could not find a property named '{column}' on type "
            f"'Microsoft.Dynamics.CRM.{entity.logical_name}'.",
        )


def _filter(expression: str, entity: EntityDef):
    """`col eq 'x' and col2 eq 3` (case-insensitive strings); anything else is refused."""
    tests = []
    for clause in re.split(r"\s+and\s+", expression):
        match = _FILTER_RE.match(clause)
        if not match:
            raise ODataFault(400, "0x80060888", f"The emulator does not support: {clause!r}")
        column, raw = match.group(1), match.group(2)
        _known_column(entity, column)
        if raw.startswith("'"):
            text = raw[1:-1].replace("''", "'").casefold()
            tests.append(lambda r, c=column, t=text: str(r.get(c) or "").casefold() == t)
        else:
            tests.append(lambda r, c=column, v=raw: str(r.get(c)) == v)
    return lambda record: all(test(record) for test in tests)


def _key_text(key) -> str:
    if isinstance(key, str):
        return key
    return ",".join(f"{k}={v}" for k, v in key.items())
