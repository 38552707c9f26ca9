"""The emulator's in-memory data: companies, entity sets, etags, number series.

Every write goes through `Store`, which validates bodies like BC (unknown or read-only
properties, unique keys, required customer/item references), assigns ids, numbers and
etags, and reports each change so webhooks can be sent. Callers hold `Store.lock`.
"""

from __future__ import annotations

import base64
import copy
import itertools
import secrets
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Literal

import packetworker.sandbox.bc.lines as line_pages
from packetworker.sandbox.bc.clock import isoformat
from packetworker.sandbox.bc.entities import EMPTY_GUID, ENTITY_SETS, PARENTS, EntitySet
from packetworker.sandbox.bc.errors import ODataError

_DOCUMENT_LINES = {
    "salesOrders": "salesOrderLines",
    "salesInvoices": "salesInvoiceLines",
    "salesCreditMemos": "salesCreditMemoLines",
}


@dataclass(frozen=True, slots=True)
class Change:
    """One committed change, for webhook notifications."""

    company_id: str
    entity_set: str
    entity_id: str
    change_type: str  # created | updated | deleted
    at: str


def new_etag() -> str:
    # BC's weak etags are base64 of "'<n>;<row version>;00;'", which starts "JzQ0O".
    raw = f"'44;{secrets.token_hex(12)};00;'".encode()
    return f'W/"{base64.b64encode(raw).decode()}"'


class Store:
    def __init__(self, *, clock: Callable[[], datetime]) -> None:
        self.lock = threading.RLock()
        self.clock = clock
        self.companies: dict[str, dict] = {}
        self.data: dict[str, dict[str, dict[str, dict]]] = {}
        # Units an item has besides its base unit (code → qty per unit); BC's Item Unit of
        # Measure table, which API v2.0 does not expose. Keyed by item id.
        self.item_units: dict[str, dict[str, Decimal]] = {}
        self.line_rules = line_pages.LineRules()
        # Writing a read-only field: refused (BadRequest_InvalidOperation, business-central.md
        # §5.2) or silently ignored; which one BC does is unconfirmed (§3.4.1).
        self.readonly_writes: Literal["refuse", "ignore"] = "refuse"
        # A stale If-Match: 409 per the HTTP-status doc, 412 per OData (§4.3, §9.5).
        self.etag_conflict_status = 409
        # A payment journal line of a customer blocked All: Customer.CheckBlockedCustOnJnls
        # refuses it when Gen. Journal Line's Account No. is validated and at posting
        # (Gen. Jnl.-Post Line); whether the API page's insert validates it is unsettled
        # (customerId assigns Account No. without validation): "refuse" | "accept".
        self.blocked_payments: Literal["refuse", "accept"] = "refuse"
        self._series: dict[tuple[str, str], itertools.count] = {}
        self.changes: list[Change] = []  # drained by the server after each commit
        # (company id, child set, parent id) -> that parent's child rows by id, in insertion
        # order: a document's lines without scanning every line stored (kept by `_put`,
        # `_drop`, `update` and `restore`).
        self._children: dict[tuple[str, str, str], dict[str, dict]] = {}

    # --- companies -----------------------------------------------------------------------

    def add_company(self, name: str) -> dict:
        now = isoformat(self.clock())
        company = {
            "id": str(uuid.uuid4()),
            "systemVersion": "24.0.16410.18056",
            "timestamp": 0,
            "name": name,
            "displayName": name,
            "businessProfileId": "",
            "systemCreatedAt": now,
            "systemCreatedBy": EMPTY_GUID,
            "systemModifiedAt": now,
            "systemModifiedBy": EMPTY_GUID,
        }
        self.companies[company["id"]] = company
        self.data[company["id"]] = {name: {} for name in ENTITY_SETS}
        self.insert(company["id"], "companyInformation", {"displayName": name}, seed=True)
        return company

    def company(self, key: str) -> dict:
        """A company by id or name (case-insensitive), else 404 like BC."""
        key_l = key.strip("'").lower()
        for company in self.companies.values():
            if key_l in (company["id"], company["name"].lower()):
                return company
        raise ODataError(404, "Internal_CompanyNotFound", f"The company '{key}' does not exist.")

    # --- snapshots (atomic $batch) -------------------------------------------------------

    def snapshot(self) -> tuple:
        return copy.deepcopy((self.data, self._series_state(), len(self.changes)))

    def restore(self, state: tuple) -> None:
        data, series, changes = state
        self.data = data
        self._series = {k: itertools.count(v) for k, v in series.items()}
        del self.changes[changes:]
        self._children = {}
        for company_id, sets in data.items():
            for name, table in sets.items():
                for row in table.values():
                    self._index(company_id, ENTITY_SETS[name], row)

    def _series_state(self) -> dict:
        state = {}
        for key, counter in list(self._series.items()):
            value = next(counter)
            self._series[key] = itertools.count(value)
            state[key] = value
        return state

    # --- reads ---------------------------------------------------------------------------

    def table(self, company_id: str, entity_set: str) -> dict[str, dict]:
        if entity_set not in ENTITY_SETS:
            raise ODataError(
                404,
                "BadRequest_NotFound",
                f"No HTTP resource was found that matches the request URI '{entity_set}'.",
            )
        return self.data[company_id][entity_set]

    def children(self, company_id: str, entity_set: str, parent_id: str) -> list[dict]:
        """The rows of child set `entity_set` whose parent key is `parent_id`."""
        return list(self._children.get((company_id, entity_set, parent_id), {}).values())

    def get(self, company_id: str, entity_set: str, entity_id: str) -> dict:
        row = self.table(company_id, entity_set).get(entity_id.lower())
        if row is None:
            raise ODataError(
                404,
                "Internal_RecordNotFound",
                f"The {entity_set} does not exist. Identification fields and values: "
                f"Id='{entity_id}'",
            )
        return row

    # --- writes --------------------------------------------------------------------------

    def insert(
        self,
        company_id: str,
        entity_set: str,
        body: dict,
        *,
        parent_id: str | None = None,
        seed: bool = False,
        notify: bool = True,
    ) -> dict:
        """Create an entity (and a deep insert's nested lines) all-or-nothing."""
        spec = ENTITY_SETS[entity_set]
        if not seed and not spec.insertable:
            raise ODataError(
                405, "BadRequest_MethodNotAllowed", f"'POST' on '{entity_set}' is not allowed."
            )
        body = dict(body)
        nested = {nav: body.pop(nav) for nav in list(body) if nav in spec.children}
        if not seed:
            body = self._check_properties(spec, body, creating=True)
        if spec.name in line_pages.LINE_SETS and not seed:
            row = copy.deepcopy(spec.fields)
            if parent_id:  # the page takes documentId from the URL of a deep insert
                body.pop(spec.parent_key, None)
                row[spec.parent_key] = parent_id
            self._apply_line(company_id, spec, row, body, creating=True)
        else:
            row = {**copy.deepcopy(spec.fields), **body}
            if spec.parent_key and parent_id:
                row[spec.parent_key] = parent_id
            if spec.name in line_pages.LINE_SETS:  # seeded or posted lines: kept as given
                line_pages.fill_seeded(row, body, self.catalog(company_id))
        row["id"] = str(uuid.uuid4())
        self._assign_number(company_id, spec, row)
        self._resolve(company_id, spec, row)
        self._check_keys(company_id, spec, row)
        # A deep insert is one transaction: a refused line takes back the header and the
        # lines stored before it (undone one by one: a copy of the whole store per deep
        # insert made each cost as much as everything stored before it).
        series, changes = self._series_state(), len(self.changes)
        stored: list[tuple[EntitySet, str]] = []  # (set, id) of the lines stored so far
        try:
            self._stamp(row)
            self._put(company_id, spec, row)
            for nav, lines in nested.items():
                if not isinstance(lines, list):
                    raise ODataError(400, "BadRequest", f"'{nav}' must be an array.")
                lines_spec = ENTITY_SETS[spec.children[nav]]
                for line in lines:
                    created = self.insert(
                        company_id,
                        spec.children[nav],
                        line,
                        parent_id=row["id"],
                        seed=seed,
                        notify=False,
                    )
                    stored.append((lines_spec, created["id"]))
            self._after_write(company_id, spec, row)
        except ODataError:
            for lines_spec, line_id in stored:
                self._drop(company_id, lines_spec, line_id)
            self._drop(company_id, spec, row["id"])
            if nested:
                self._series = {k: itertools.count(v) for k, v in series.items()}
                del self.changes[changes:]
            raise
        self._changed(company_id, entity_set, row, "created", seed=seed or not notify)
        return row

    def update(
        self, company_id: str, entity_set: str, entity_id: str, body: dict, if_match: str | None
    ) -> dict:
        spec, row = self._row_to_change("PATCH", company_id, entity_set, entity_id, if_match)
        for nav in spec.children:
            if nav in body:
                raise ODataError(
                    400, "BadRequest", "Deep update is not supported; update lines separately."
                )
        body = self._check_properties(spec, body, creating=False)
        for name, message in spec.set_once.items():
            set_before = row.get(name) not in (None, "", 0, EMPTY_GUID)
            if name in body and set_before and not line_pages.same(row[name], body[name]):
                raise ODataError(400, "Application_DialogException", message)
        if spec.name in line_pages.LINE_SETS:
            candidate = dict(row)
            self._apply_line(company_id, spec, candidate, body, creating=False)
        else:
            candidate = {**row, **body}
        self._resolve(company_id, spec, candidate, changed=frozenset(body))
        self._check_keys(company_id, spec, candidate, ignore=row["id"])
        if spec.parent_key and candidate.get(spec.parent_key) != row.get(spec.parent_key):
            self._unindex(company_id, spec, row)  # set once: from blank to its parent
            row.update(candidate)
            self._index(company_id, spec, row)
        row.update(candidate)
        self._stamp(row)
        self._after_write(company_id, spec, row)
        self._changed(company_id, entity_set, row, "updated")
        return row

    def delete(self, company_id: str, entity_set: str, entity_id: str, if_match: str | None):
        spec, row = self._row_to_change("DELETE", company_id, entity_set, entity_id, if_match)
        for child_set in spec.children.values():
            for child in self.children(company_id, child_set, row["id"]):
                self._drop(company_id, ENTITY_SETS[child_set], child["id"])
        self._drop(company_id, spec, row["id"])
        self._after_write(company_id, spec, row, deleted=True)
        self._changed(company_id, entity_set, row, "deleted")

    # --- bound actions (posting) ---------------------------------------------------------

    def act(self, company_id: str, entity_set: str, entity_id: str, action: str) -> None:
        """Run `Microsoft.NAV.<action>` on one entity, all-or-nothing."""
        run = {
            ("salesOrders", "shipAndInvoice"): self._ship_and_invoice,
            ("salesInvoices", "post"): self._post_draft,
            ("salesCreditMemos", "post"): self._post_draft,
        }.get((entity_set, action))
        if run is None:
            raise ODataError(
                400,
                "BadRequest_NotFound",
                f"The bound action 'Microsoft.NAV.{action}' is not available on '{entity_set}'.",
            )
        row = self.get(company_id, entity_set, entity_id)
        before = self.snapshot()
        try:
            run(company_id, entity_set, row)
        except ODataError:
            self.restore(before)
            raise

    def _lines_of(self, company_id: str, entity_set: str, header: dict) -> list[dict]:
        lines = self.children(company_id, _DOCUMENT_LINES[entity_set], header["id"])
        if not lines:
            raise ODataError(400, "Application_DialogException", "There is nothing to post.")
        return sorted(lines, key=lambda r: r.get("sequence") or 0)

    def _ship_and_invoice(self, company_id: str, entity_set: str, order: dict) -> None:
        """Post an order whole, as BC does: a posted shipment and a posted invoice (status
        Open) take its header, lines, `externalDocumentNumber` and `orderNumber`; the order
        and its lines are gone (doc §3.6, §3.7)."""
        lines = self._lines_of(company_id, entity_set, order)
        posting = order.get("postingDate") or isoformat(self.clock())[:10]
        link = {"orderNumber": order["number"], "postingDate": posting}
        for posted_set, line_set, extra in (
            ("salesShipments", "salesShipmentLines", link),
            (
                "salesInvoices",
                "salesInvoiceLines",
                {**link, "orderId": order["id"], "status": "Open"},
            ),
        ):
            header = self.insert(company_id, posted_set, _copy(posted_set, order, extra), seed=True)
            number = {"documentNo": header["number"]}
            for line in lines:
                body = _copy(line_set, line, number, skip=frozenset({"documentId"}))
                self.insert(company_id, line_set, body, parent_id=header["id"], seed=True)
            self._changed(company_id, posted_set, header, "created")
        self.delete(company_id, entity_set, order["id"], "*")

    def _post_draft(self, company_id: str, entity_set: str, row: dict) -> None:
        """Post a draft invoice or credit memo: it stays in its entity set, status Open."""
        if row.get("status") != "Draft":
            raise ODataError(
                400,
                "Application_DialogException",
                f"The document {row['number']} is already posted (status {row['status']}).",
            )
        self._lines_of(company_id, entity_set, row)
        row["status"] = "Open"
        row["postingDate"] = row.get("postingDate") or isoformat(self.clock())[:10]
        self._stamp(row)
        self._changed(company_id, entity_set, row, "updated")

    def _row_to_change(
        self, method: str, company_id: str, entity_set: str, entity_id: str, if_match: str | None
    ) -> tuple[EntitySet, dict]:
        """The row `method` would change: 404 if missing, 412 on a stale etag, 405 when the
        set is read-only."""
        spec = ENTITY_SETS[entity_set]
        row = self.get(company_id, entity_set, entity_id)
        self._check_etag(row, if_match)
        if not spec.writable:
            raise ODataError(
                405, "BadRequest_MethodNotAllowed", f"'{method}' on '{entity_set}' is not allowed."
            )
        return spec, row

    # --- helpers -------------------------------------------------------------------------

    def _put(self, company_id: str, spec: EntitySet, row: dict) -> None:
        """Store `row` (same id: replaced) and index it under its parent."""
        self.table(company_id, spec.name)[row["id"]] = row
        self._index(company_id, spec, row)

    def _drop(self, company_id: str, spec: EntitySet, row_id: str) -> None:
        """Remove a row (if stored) from its table and from its parent's index."""
        row = self.table(company_id, spec.name).pop(row_id, None)
        if row is not None:
            self._unindex(company_id, spec, row)

    def _index(self, company_id: str, spec: EntitySet, row: dict) -> None:
        if spec.parent_key is not None:
            key = (company_id, spec.name, row.get(spec.parent_key))
            self._children.setdefault(key, {})[row["id"]] = row

    def _unindex(self, company_id: str, spec: EntitySet, row: dict) -> None:
        if spec.parent_key is not None:
            key = (company_id, spec.name, row.get(spec.parent_key))
            siblings = self._children.get(key, {})
            siblings.pop(row["id"], None)
            if not siblings:
                self._children.pop(key, None)

    def _stamp(self, row: dict) -> None:
        row["lastModifiedDateTime"] = isoformat(self.clock())
        row["@odata.etag"] = new_etag()

    def _changed(self, company_id, entity_set, row: dict, change_type, *, seed=False) -> None:
        if seed:
            return
        at = isoformat(self.clock())
        parent_set = PARENTS.get(entity_set)
        if parent_set is not None:
            # BC notifies the header subscription when a line changes (doc §6.4).
            parent_id = row.get(ENTITY_SETS[entity_set].parent_key or "")
            if parent_id:
                self.changes.append(Change(company_id, parent_set, parent_id, "updated", at))
            return
        self.changes.append(Change(company_id, entity_set, row["id"], change_type, at))

    def _check_etag(self, row: dict, if_match: str | None) -> None:
        if if_match is None:
            raise ODataError(
                400,
                "BadRequest_InvalidToken",
                "Could not validate the client concurrency token required by the service. "
                "Please provide a valid token in the client request.",
            )
        if if_match.strip() != "*" and if_match.strip() != row["@odata.etag"]:
            # business-central.md §4.3: Request_EntityChanged, 409 (or 412: §9.5).
            raise ODataError(
                self.etag_conflict_status,
                "Request_EntityChanged",
                "Another user has already changed the record.",
            )

    def _check_properties(self, spec: EntitySet, body: dict, *, creating: bool) -> dict:
        """`body` without read-only fields when they are ignored; refused otherwise."""
        out = {}
        for name, value in body.items():
            if name.startswith("@odata."):
                continue
            if name not in spec.fields:
                raise ODataError(
                    400,
                    "BadRequest",
                    f"Could not find a property named '{name}' on type "
                    f"'Microsoft.NAV.{spec.name}'.",
                )
            if name in spec.readonly_fields:
                # Editable = false on the APIV2 page (entities.py names each page).
                if self.readonly_writes == "ignore":
                    continue
                raise ODataError(
                    400, "BadRequest_InvalidOperation", f"The property '{name}' is read-only."
                )
            out[name] = value
        return out

    def _assign_number(self, company_id: str, spec: EntitySet, row: dict) -> None:
        if spec.series and not row.get("number"):
            counter = self._series.setdefault((company_id, spec.name), itertools.count(101001))
            row["number"] = f"{spec.series}{next(counter)}"
        if len(str(row.get("number", ""))) > 20:
            raise ODataError(
                400,
                "Application_StringExceededLength",
                f"The length of the string is {len(row['number'])}, but it must be less than or "
                "equal to 20 characters.",
            )

    def _check_keys(self, company_id, spec: EntitySet, row: dict, *, ignore=None) -> None:
        table = self.table(company_id, spec.name)
        for key in spec.keys:
            wanted = tuple(str(row.get(f, "")).lower() for f in key)
            if not all(wanted):
                continue
            for other in table.values():
                if other["id"] != ignore and wanted == tuple(
                    str(other.get(f, "")).lower() for f in key
                ):
                    raise ODataError(
                        400,
                        "Internal_EntityWithSameKeyExists",
                        f"The record in table {spec.name} already exists. Identification "
                        f"fields and values: {', '.join(f'{f}={row.get(f)!r}' for f in key)}",
                    )

    def _find(self, company_id, entity_set, field, value) -> dict | None:
        if not value or value == EMPTY_GUID:
            return None
        value = str(value).lower()
        for row in self.table(company_id, entity_set).values():
            if str(row.get(field, "")).lower() == value:
                return row
        raise ODataError(
            400,
            "Internal_RecordNotFound",
            f"The {entity_set} does not exist. Identification fields and values: {field}='{value}'",
        )

    def _customer(
        self, company_id: str, row: dict, id_field: str, number_field: str, role: str
    ) -> dict | None:
        """The document's sell-to or bill-to customer by id, else number; None when neither
        is given. One that does not exist is refused with the API page's label
        (APIV2SalesOrders.Page.al: CouldNotFindSellToCustomerErr / ...BillTo...)."""
        customers = self.table(company_id, "customers").values()
        for key, value in (("id", row.get(id_field)), ("number", row.get(number_field))):
            if not value or value == EMPTY_GUID:
                continue
            wanted = str(value).lower()
            found = next((c for c in customers if str(c.get(key, "")).lower() == wanted), None)
            if found is None:
                raise ODataError(
                    400, "Application_DialogException", f"The {role} customer cannot be found."
                )
            return found
        return None

    def _resolve(
        self, company_id: str, spec: EntitySet, row: dict, *, changed: frozenset[str] | None = None
    ) -> None:
        """Fill references the way BC's API pages validate them. `changed`: the properties a
        PATCH sends (None: a create, which validates every reference)."""
        if spec.name in _DOCUMENT_LINES:
            customer = self._customer(company_id, row, "customerId", "customerNumber", "sell-to")
            if customer is None:
                # APIV2SalesOrders.Page.al: SellToCustomerNotProvidedErr
                raise ODataError(
                    400,
                    "Application_DialogException",
                    "A customerNumber or a customerID must be provided.",
                )
            sell_to_changed = changed is None or bool(changed & _SELL_TO_FIELDS)
            if sell_to_changed:
                _check_blocked(customer, spec.name)
            row["customerId"], row["customerNumber"] = customer["id"], customer["number"]
            row["customerName"] = customer["displayName"]
            bill_to = self._customer(
                company_id, row, "billToCustomerId", "billToCustomerNumber", "bill-to"
            )
            if bill_to is not None and bill_to["id"] != customer["id"]:
                if changed is None or changed & _BILL_TO_FIELDS:
                    _check_blocked(bill_to, spec.name)
            elif sell_to_changed:
                bill_to = customer  # Sales Header: the bill-to follows the sell-to customer
            if bill_to is not None:
                row["billToCustomerId"], row["billToCustomerNumber"] = (
                    bill_to["id"],
                    bill_to["number"],
                )
                row["billToName"] = row.get("billToName") or bill_to["displayName"]
            self._check_references(company_id, spec, row, changed)
        elif spec.name == "customerPayments":
            if changed is None or changed & _SELL_TO_FIELDS:
                self._payment_customer(company_id, row)
        elif spec.name == "itemVariants":
            item = self._find(company_id, "items", "id", row.get("itemId")) or self._find(
                company_id, "items", "number", row.get("itemNumber")
            )
            if item is None:
                raise ODataError(400, "BadRequest", "An itemId or itemNumber must be provided.")
            row["itemId"], row["itemNumber"] = item["id"], item["number"]
        elif spec.name in line_pages.LINE_SETS and row.get("documentId") in (None, "", EMPTY_GUID):
            raise ODataError(400, "BadRequest", "You must specify a Document Id to insert a line.")

    def _payment_customer(self, company_id: str, row: dict) -> None:
        """The payment's customer, by id else number (APIV2CustomerPayments.Page.al:
        CustomerIdDoesNotMatchACustomerErr / CustomerNumberDoesNotMatchACustomerErr), and
        Customer.CheckBlockedCustOnJnls for a Payment line: only `All` refuses it (`Invoice`
        refuses invoice and blank journal lines, `Ship` none)."""
        customers = self.table(company_id, "customers").values()
        for key, name in (("id", "customerId"), ("number", "customerNumber")):
            value = row.get(name)
            if value in (None, "", EMPTY_GUID):
                continue
            wanted = str(value).lower()
            customer = next((c for c in customers if str(c.get(key, "")).lower() == wanted), None)
            if customer is None:
                message = f'The "{name}" does not match to a Customer.'
                raise ODataError(400, "Application_DialogException", message)
            row["customerId"], row["customerNumber"] = customer["id"], customer["number"]
            if self.blocked_payments == "refuse":
                _check_blocked(customer, "customerPayments")
            return

    def _check_references(
        self, company_id: str, spec: EntitySet, row: dict, changed: frozenset[str] | None
    ) -> None:
        """A document's payment terms, shipment method and currency must exist: each OnValidate
        of APIV2SalesOrders/SalesInvoices/SalesCreditMemos.Page.al ends in Error(...) for an id
        or code that matches no record (a blank GUID or code clears the field instead)."""
        for name, entity_set, key in _HEADER_REFERENCES:
            value = row.get(name)
            if name not in spec.fields or (changed is not None and name not in changed):
                continue
            if value in (None, "", EMPTY_GUID):
                continue
            if key == "code" and self._local(company_id, value):
                continue  # TranslateCurrencyCodeToNAVCurrencyCode: the LCY code means ''
            wanted = str(value).lower()
            rows = self.table(company_id, entity_set).values()
            if not any(str(r.get(key, "")).lower() == wanted for r in rows):
                # ...DoesNotMatchA...Err labels, e.g. 'The "paymentTermsId" does not match
                # to a Payment Terms.'
                message = f'The "{name}" does not match to a {_REFERENCE_LABELS[entity_set]}.'
                raise ODataError(400, "Application_DialogException", message)

    def _local(self, company_id: str, code: object) -> bool:
        """Whether `code` is the company's local currency (companyInformation.currencyCode)."""
        info = next(iter(self.table(company_id, "companyInformation").values()), {})
        local = str(info.get("currencyCode") or "")
        return bool(local) and local.lower() == str(code).lower()

    def _apply_line(self, company_id, spec: EntitySet, row: dict, body: dict, *, creating):
        if "documentId" in body and creating:
            self.get(company_id, PARENTS[spec.name], str(body["documentId"]))
        line_pages.apply_body(
            spec.name,
            row,
            body,
            rules=self.line_rules,
            catalog=self.catalog(company_id),
            creating=creating,
        )

    def catalog(self, company_id: str) -> line_pages.Catalog:
        return _Catalog(self, company_id)

    def _after_write(self, company_id, spec: EntitySet, row: dict, *, deleted=False) -> None:
        if spec.parent_key == "documentId" and spec.writable:
            parent_set = PARENTS[spec.name]
            header = self.table(company_id, parent_set).get(row["documentId"])
            if header is None:
                return
            lines = self.children(company_id, spec.name, header["id"])
            if not deleted and not row.get("sequence"):
                row["sequence"] = 10000 * len(lines)
            total = round(sum(float(r.get("amountExcludingTax") or 0) for r in lines), 2)
            header["totalAmountExcludingTax"] = header["totalAmountIncludingTax"] = total
            header["@odata.etag"] = new_etag()


# Document header references checked on create and when sent (field, entity set, key):
# APIV2SalesOrders/SalesInvoices/SalesCreditMemos.Page.al, OnValidate of each field.
_HEADER_REFERENCES = (
    ("paymentTermsId", "paymentTerms", "id"),
    ("shipmentMethodId", "shipmentMethods", "id"),
    ("currencyId", "currencies", "id"),
    ("currencyCode", "currencies", "code"),
)
_REFERENCE_LABELS = {
    "paymentTerms": "Payment Terms",
    "shipmentMethods": "Shipment Method",
    "currencies": "Currency",
}
_SELL_TO_FIELDS = frozenset({"customerId", "customerNumber"})
_BILL_TO_FIELDS = frozenset({"billToCustomerId", "billToCustomerNumber"})

# Which documents each customer `blocked` value refuses when one is created or its customer
# changed: Customer.CheckBlockedCustOnDocs(..., Shipment=false, Transaction=false)
# (BaseApp Customer.Table.al, called from SalesHeader.Table.al; business-central.md §3.4.2).
# Ship refuses quotes, orders and blanket orders; Invoice those and invoices; All everything.
_BLOCKED_DOCUMENTS: dict[str, frozenset[str]] = {
    "Ship": frozenset({"salesQuotes", "salesOrders"}),
    "Invoice": frozenset({"salesQuotes", "salesOrders", "salesInvoices"}),
    "All": frozenset({"salesQuotes", "salesOrders", "salesInvoices", "salesCreditMemos"}),
}
# Payment journal lines too, for `All` only (Customer.CheckBlockedCustOnJnls; `blocked_payments`).
_BLOCKED_DOCUMENTS["All"] |= {"customerPayments"}


def _check_blocked(customer: dict, entity_set: str) -> None:
    """Refuse a document `customer`'s block type does not allow, with BC's error: label
    Text006 of Customer.Table.al ('You cannot %1 this type of document when Customer %2 is
    blocked with type %3', %1 = Text005 'create'), raised as an AL error (business-central.md
    §3.4.2: Application_DialogException, HTTP 400 inferred)."""
    blocked = str(customer.get("blocked") or "").strip()
    if entity_set in _BLOCKED_DOCUMENTS.get(blocked, frozenset()):
        raise ODataError(
            400,
            "Application_DialogException",
            f"You cannot create this type of document when Customer {customer['number']} "
            f"is blocked with type {blocked}",
        )


def _copy(
    entity_set: str, source: dict, extra: dict, *, skip: frozenset[str] = frozenset()
) -> dict:
    """The fields of `source` that `entity_set` also has (not its id, number, stamps)."""
    fields = ENTITY_SETS[entity_set].fields
    own = {"id", "number", "status", "lastModifiedDateTime", *skip}
    body = {k: v for k, v in source.items() if k not in own}
    body.update(extra)
    return {k: v for k, v in body.items() if k in fields}


class _Catalog:
    """The items and units one company's lines are validated against."""

    def __init__(self, store: Store, company_id: str) -> None:
        self._store = store
        self._cid = company_id

    def item(self, field: str, value) -> dict | None:
        return self._store._find(self._cid, "items", field, value)

    def units(self, item: dict) -> dict[str, Decimal]:
        base = item.get("baseUnitOfMeasureCode") or ""
        return {base: Decimal(1), **self._store.item_units.get(item["id"], {})}

    def unit_code(self, unit_id: str) -> str:
        unit = self._store._find(self._cid, "unitsOfMeasure", "id", unit_id)
        return "" if unit is None else unit["code"]

    def variant(self, variant_id) -> dict | None:
        return self._store.table(self._cid, "itemVariants").get(str(variant_id).lower())

    def location(self, location_id) -> dict | None:
        return self._store.table(self._cid, "locations").get(str(location_id).lower())
