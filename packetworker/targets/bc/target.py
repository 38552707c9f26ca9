"""`BCTarget`: Field Sales packets applied to Business Central, exactly once.

One `apply` call gets whole documents (`Target.documents`): the mapping turns them into
operations (a sales document with its lines, a customer, a payment's journal lines), then

1. **look-ups first**: one `$filter` query per entity set per packet, the keys `or`-ed on
   their key field (`externalDocumentNumber` for documents, `number` for customers) and
   paged, so BC's view of "what already exists" costs a request or two, not one per record.
   A sales order is also looked for where BC puts it once posted: a fully posted order
   leaves `salesOrders`, and its posted invoice (`salesInvoices`, status Open or Paid) and
   shipment (`salesShipments`) carry its `externalDocumentNumber` (business-central.md §7);
2. **writes in `$batch`**: missing documents as deep inserts (header and lines in one
   operation, which BC commits or rolls back as a whole), customers created or patched
   (only the mapping's `update_fields`, with the etag just read), payment journal lines
   posted one operation each; at most 100 operations per `$batch`, with
   `continue-on-error` so one refused document does not hold back the others;
3. **line prices checked**: BC may recalculate a line's `unitPrice` (business-central.md
   §3.5.1), so with the mapping option `line_prices = "packet"` each document's lines, read
   back from the create (or from the look-up, on a retry), are patched where BC's price
   differs from the packet's (`lines.py`). A line changed meanwhile (stale etag) is not
   forced: the packet is retried, re-reads and decides again.

BC has no idempotency key of its own, so exactly-once rests on step 1: a retry after a crash,
a timeout or a transient error re-reads what exists and only sends what is missing. Journal
lines have no key field of their own: a payment's rows are matched to existing rows of its
`externalDocumentNumber` (a filterable field of `customerPayments`, the journal line's
"External Document No." in the APIV2 page) by their values, so a retry posts only the rows
that are missing.

A look-up right after a timeout is not enough: BC may still be running the write and commit
it later (business-central.md §5.3). So every create is recorded in the packet's write
journal (`ApplyContext.journal`) before it is sent, and one whose outcome is unknown is sent
again only when a look-up `in_doubt_seconds` after it was sent still does not find it; a
look-up that finds it links it as applied (`targets.in_doubt`).

Outcomes: `applied` (created or changed; `target_ref` names the BC entity), `unchanged` (the
key already existed, or the order was already posted: `target_ref` names the posted invoice
or shipment), `skipped` (tables the mapping ignores: CustomerActivity, counters),
`failed` (mapping error or BC refusing a document; the message names both), `held` (a
refusal time fixes, below). Throttling, 5xx and timeouts raise `TargetError(transient=True)`:
the pipeline retries the packet.

**Held, not failed.** A customer captured on a device is created blocked for review, so BC
refuses its first order (business-central.md §3.4.2). When BC refuses a sales document, its
customers are read back (one query per packet): one that is missing, or whose `blocked`
value refuses this document type, makes the document `held` with a reason such as "customer
C-100 is blocked (All)" and a wake key (`waits_for`), and the pipeline retries it later.
Deciding from the customer's state, not from the error text, works in any language BC
answers in. Which documents each `blocked` value refuses, like which entity sets are journal
lines under a journal and which collections are a document's lines, is mapping data
(`[options.entities]`, read by `entities.py`).

**Groups.** `apply_group` takes many packets at once (the pipeline's `process_packets`):
their operations share the look-ups (the queries of all their keys travel as GETs in one
`$batch`) and the `$batch`es of inserts (up to 100 documents per request), so a group of 100
single-order packets costs about two requests instead of four hundred. Each packet keeps
its own outcomes and its own write journal, and a failure stops only the packets whose
requests it hit (the shared flow of `targets.skeleton`). `apply` is a group of one, and
reads with plain GETs as before.

**Companies.** Each packet goes to the company `BC_COMPANY_MAP` names for its `companyId`
(`ApplyContext.company`; see `companies.py`), through one client per company sharing one
token and one connection pool; an unmapped company holds the whole packet.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from packetworker.request_budget import SlotUnavailable
from packetworker.targets.base import (
    Outcome,
    RecordOutcome,
    TargetError,
    held_key,
    outcome_known,
)
from packetworker.targets.bc.batch import MAX_BATCH_OPERATIONS, BatchRequest, BatchResponse
from packetworker.targets.bc.client import BCClient
from packetworker.targets.bc.companies import DEFAULT, CompanyMap, unmapped_reason
from packetworker.targets.bc.entities import Entities, bc_entities
from packetworker.targets.bc.errors import AuthError, BCError, EntityChanged, NoAnswer, NotSent
from packetworker.targets.bc.lines import (
    for_insert,
    line_prices_option,
    price_corrections,
    same_price,
)
from packetworker.targets.bc.odata import any_of, key_of, literal
from packetworker.targets.bc.posted import posted_lookups
from packetworker.targets.in_doubt import InDoubt
from packetworker.targets.mapping import (
    LookupNotFound,
    LookupRef,
    MappedItem,
    Mapper,
    Mapping,
    Operation,
    load_mapping,
    resolve_lookups,
)
from packetworker.targets.required import missing_bc, require
from packetworker.targets.skeleton import LookupCache, Packet, SystemTarget

if TYPE_CHECKING:
    from packetworker.settings import Settings

logger = logging.getLogger(__name__)

DEFAULT_MAPPING = "bc-field-sales"

# A document's customers: sell-to, then bill-to (BC validates both, ibid.).
_CUSTOMER_FIELDS = ("customerNumber", "billToCustomerNumber")


class _Refused(Exception):
    """One operation cannot be applied (missing journal, lookup without match)."""


@dataclass
class _Work:
    """One mapped operation on its way to BC, and what became of it."""

    op: Operation
    path: str = ""  # collection path under the company
    existing: list[dict] = field(default_factory=list)
    posted: list[tuple[str, dict]] = field(default_factory=list)  # (entity set, row)
    requests: list[BatchRequest] = field(default_factory=list)
    write_keys: dict[int, str] = field(default_factory=dict)  # request index -> journal key
    doubted: bool = False  # a write of it was in doubt, and a look-up found it committed
    refused: bool = False  # BC answered one of its requests with a refusal
    stored: dict | None = None  # the document as BC holds it, with its lines (read back)
    outcome: Outcome | None = None
    message: str | None = None
    waits_for: str | None = None  # HELD: the wake key (`targets.base.held_key`)
    refs: list[str | None] = field(default_factory=list)  # per source record
    packet: Packet[_Work] | None = None  # the packet it comes from

    @property
    def label(self) -> str:
        key = ", ".join(f"{k} {v}" for k, v in self.op.key.items())
        return f"{self.op.entity} {key}".strip()

    @property
    def posts_rows(self) -> bool:
        """Journal lines: no deep insert, each child row is posted on its own."""
        return self.op.entity in self.op.children

    def rows(self) -> list[dict]:
        return self.op.children.get(self.op.entity, [])

    def write_key(self, row: int | None = None) -> str:
        """Names one create of this operation in the write journal (a journal row by its
        position in the payment, which is stable for the same packet)."""
        key = ",".join(f"{k}={v}" for k, v in self.op.key.items())
        return f"{self.op.entity} {key}" + ("" if row is None else f" row {row}")

    def create(self, request: BatchRequest, key: str) -> None:
        """Plan a POST, journalled under `key` before it is sent."""
        self.write_keys[len(self.requests)] = key
        self.requests.append(request)

    def journal_keys(self, n: int) -> dict[str, str]:
        """What a look-up finds request `n` by: the key, the customer and (rows) amounts."""
        body = self.requests[n].body or {}
        keys = {k: str(v) for k, v in self.op.key.items()}
        for name in ("customerNumber", "documentNumber", "amount", "appliesToInvoiceNumber"):
            if body.get(name) not in (None, ""):
                keys[name] = str(body[name])
        return keys

    def source_refs(self) -> list[str | None]:
        """`refs` lined up with `op.source` (the header record first, then its children)."""
        if not self.posts_rows:
            return self.refs
        # Rows follow the child records in order; a row past them (the unapplied rest of a
        # payment) belongs to the header, which otherwise points at the first row.
        rows = list(self.refs)
        children = len(self.op.source) - 1
        head = rows[children] if len(rows) > children else (rows[0] if rows else None)
        return [head, *rows[:children]]


@dataclass
class _Query:
    """One look-up: the operations asking one entity set for their keys, and what it selects."""

    own: list[_Work] = field(default_factory=list)  # looking for themselves
    posted: list[tuple[_Work, frozenset[str] | None]] = field(default_factory=list)
    select: set[str] | None = field(default_factory=set)  # None: whole rows
    expand: set[str] = field(default_factory=set)  # lines read with the documents

    def want(self, names) -> None:
        if self.select is not None:
            self.select.update(names)


def _packet(work: _Work) -> Packet[_Work]:
    assert work.packet is not None, "every work belongs to a packet"
    return work.packet


def _live(works: Sequence[_Work]) -> list[_Work]:
    """The works whose packet is still going (no error stopped it)."""
    return [w for w in works if _packet(w).error is None]


def _fail_all(works: Sequence[_Work], exc: Exception) -> None:
    """A request shared by these works failed as a whole: each one's packet stops with it."""
    for work in works:
        _packet(work).fail(exc)


def _as_target_error(exc: Exception) -> Exception:
    """A packet's error as the pipeline expects it: refused credentials and lost connections
    are transient `TargetError`s."""
    if isinstance(exc, AuthError):
        # Credentials refused even after a fresh token: an operator must act, and the
        # packet must wait for them rather than be quarantined.
        return TargetError(f"Business Central refused our credentials: {exc}", transient=True)
    if isinstance(exc, SlotUnavailable):
        return exc  # never sent: the pipeline reschedules the packet
    if isinstance(exc, (NotSent, NoAnswer)):
        return TargetError(f"Business Central did not answer ({exc.detail})", transient=True)
    return exc


class BCTarget(SystemTarget[_Work]):
    """Applies mapped Field Sales packets to one BC company through `client`."""

    name = "bc"
    service = "Business Central"

    def __init__(
        self,
        *,
        client: BCClient,
        mapping: Mapping | str = DEFAULT_MAPPING,
        payment_journal: str = "GENERAL",
        batch_size: int = MAX_BATCH_OPERATIONS,
        in_doubt_seconds: float = 600.0,
        companies: CompanyMap | None = None,
    ) -> None:
        self.client = client  # BC_COMPANY's
        self.companies = companies or CompanyMap()
        self.mapping = load_mapping(mapping) if isinstance(mapping, str) else mapping
        self.documents = self.mapping.document_shape()
        self.payment_journal = payment_journal
        self.batch_size = max(1, min(batch_size, MAX_BATCH_OPERATIONS))
        # BC's longest request (business-central.md §5.3-5.4: 10 minutes, then 504).
        self.in_doubt_seconds = in_doubt_seconds
        self.mapper = Mapper(self.mapping)
        self.line_prices = line_prices_option(self.mapping.options)
        self.posted = posted_lookups(self.mapping)  # where posted documents are looked for
        self.entities = bc_entities(self.mapping)  # journal lines, document lines, holds
        self._lock = threading.Lock()
        self._journals: dict[tuple[int, str], str] = {}  # (client, code) -> journal id
        self._clients: dict[str, BCClient] = {}  # BC company (lower-cased) -> its client
        # (client, path, id, entity) of what this process made
        self._created: list[tuple[BCClient, str, str, str]] = []

    # --- the skeleton's steps -------------------------------------------------------------

    def map(self, packet: Packet[_Work]) -> None:
        """Route the packet to its company's client, then map it; a packet of a company
        `BC_COMPANY_MAP` does not name is held whole."""
        client = self.client_for(packet.ctx.company)
        if client is None:
            company = str(packet.ctx.company)
            reason, wake = unmapped_reason(company), held_key("company", company)
            for record in packet.records:
                packet.outcomes.put(
                    RecordOutcome(
                        record.table.name, record.dms_rowid, Outcome.HELD, None, reason, wake
                    )
                )
            return
        packet.route = client
        super().map(packet)

    def work(self, item: MappedItem, packet: Packet[_Work]) -> _Work:
        assert item.operation is not None
        return _Work(item.operation, packet=packet)

    def send(self, packets: list[Packet[_Work]]) -> None:
        """Many packets' works with shared requests, per company: one look-up per entity set
        for all their keys, and their writes together in `$batch`es of up to 100 operations.
        Each packet keeps its own outcomes, writes in doubt (journalled under its id) and
        error: a refused document fails its own records, a failed request stops only the
        packets it carried."""
        by_client: dict[int, tuple[BCClient, list[Packet[_Work]]]] = {}
        for packet in packets:
            if isinstance(packet.route, BCClient):
                by_client.setdefault(id(packet.route), (packet.route, []))[1].append(packet)
        for client, packets_of_client in by_client.values():
            self._apply_to(client, packets_of_client)

    def outcomes(self, work: _Work, packet: Packet[_Work]) -> Iterator[RecordOutcome]:
        outcome = work.outcome or Outcome.FAILED
        refs = work.source_refs()
        head = refs[0] if refs else None
        message = work.message if outcome in (Outcome.FAILED, Outcome.HELD) else None
        for n, (table, rowid) in enumerate(work.op.source):
            ref = refs[n] if n < len(refs) and refs[n] else head
            yield RecordOutcome(table, rowid, outcome, ref, message, work.waits_for)

    def as_error(self, exc: Exception) -> Exception:
        return _as_target_error(exc)

    def _apply_to(self, client: BCClient, packets: list[Packet[_Work]]) -> None:
        """The steps below for the packets of one company, each request shared by as many
        of their operations as it can carry."""
        works = [work for packet in packets for work in packet.works]
        try:
            self._locate(client, works)
            # A packet alone reads with plain GETs, as it always has; a group in `$batch`.
            self._look_up(client, works, batched=len(packets) > 1)
        except Exception as exc:
            _fail_all(works, exc)
            return
        resolve = _resolver(client)  # codes → ids, shared by the group
        for packet in packets:
            try:
                for work in packet.works:
                    if work.outcome is None and not _committed_late(work, packet.doubts):
                        self._plan(work, packet.doubts, resolve)
                writes = (key for work in packet.works for key in work.write_keys.values())
                packet.doubts.check_unsent(writes)
            except Exception as exc:
                packet.fail(exc)
        self._send(client, _live(works))
        self._correct_prices(client, _live(works))
        self._hold_for_customers(client, _live(works))

    def close(self) -> None:
        self.client.close()

    def client_for(self, company: str | None) -> BCClient | None:
        """The client of the BC company a packet of mobile company `company` goes to (one
        per company, created on first use, sharing the default client's token); None when
        `BC_COMPANY_MAP` names other companies but not this one."""
        routed = self.companies.route(company)
        if routed is None:
            return None
        if routed == DEFAULT:
            return self.client
        with self._lock:
            client = self._clients.get(routed.lower())
            if client is None:
                client = self._clients[routed.lower()] = self.client.for_company(routed)
            return client

    # --- read back -----------------------------------------------------------------------

    def created(self) -> list[dict]:
        """What this target created since it started, read back from BC (with lines)."""
        with self._lock:
            made = list(self._created)
        out = []
        for client, path, entity_id, entity in made:
            expand = self.entities.document_lines.get(entity)
            row = client.get(path, entity_id, expand=expand)
            row["@entity"] = entity
            out.append(row)
        return out

    def describe(self) -> Iterator[str]:
        """Lines for people: each document, customer and journal line created, read back."""
        rows = self.created()
        yield f"Business Central: {len(rows)} entities created"
        for row in rows:
            yield from describe_entity(row, self.entities.document_lines)

    # --- step 0: where each operation goes ----------------------------------------------

    def _locate(self, client: BCClient, works: list[_Work]) -> None:
        for work in works:
            parent = self.entities.journal_lines.get(work.op.entity)
            if parent is None:
                work.path = work.op.entity
                continue
            journal = self._journal_id(client, parent)
            if journal is None:
                work.outcome = Outcome.FAILED
                work.message = (
                    f"{work.label}: Business Central has no customer payment journal "
                    f"{self.payment_journal!r} (set BC_PAYMENT_JOURNAL to an existing one)."
                )
                continue
            work.path = f"{parent}({journal})/{work.op.entity}"

    def _journal_id(self, client: BCClient, parent: str) -> str | None:
        key = (id(client), self.payment_journal)  # each company has its own journals
        with self._lock:
            if key in self._journals:
                return self._journals[key]
        found = client.find_one(
            parent, f"code eq {literal(self.payment_journal)}", select=["id", "code"]
        )
        if found is None:
            return None
        with self._lock:
            self._journals[key] = found["id"]
        return found["id"]

    # --- step 1: what exists already (one query per entity set and key field) -------------

    def _look_up(self, client: BCClient, works: list[_Work], *, batched: bool) -> None:
        queries: dict[tuple[str, tuple[str, ...]], _Query] = defaultdict(_Query)
        for work in works:
            if work.outcome is not None:
                continue
            fields = tuple(work.op.key)
            query = queries[(work.path, fields)]
            query.own.append(work)
            if work.posts_rows:  # journal rows are compared whole
                query.select = None
            else:
                query.want({"id", *fields})
                query.want(n for n in work.op.update_fields or work.op.body if "@" not in n)
            if self._checks_prices(work):
                query.expand.add(self.entities.document_lines[work.op.entity])
            for posted_set, statuses in self.posted.of(work.path, fields):
                query = queries[(posted_set, fields)]
                query.posted.append((work, statuses))
                query.want({"id", "number", *fields, *(["status"] if statuses else [])})
        reads: list[_Read] = []
        for (path, fields), query in queries.items():
            first = fields[0]
            select = None if query.select is None else sorted(query.select)
            expand = sorted(query.expand) or None
            keys = [w.op.key[first] for w in query.own] + [w.op.key[first] for w, _ in query.posted]
            reads += [_Read(path, text, select, expand) for text in any_of(first, keys)]
        rows = _read_many(client, reads, batched=batched)
        for (path, fields), query in queries.items():
            found: dict[tuple[str, ...], list[dict]] = defaultdict(list)
            for read in reads:
                if read.path == path:
                    for row in rows[id(read)]:
                        found[key_of(row, fields)].append(row)
            for work in query.own:
                work.existing = found.get(key_of(work.op.key, fields), [])
                if work.existing and query.expand:
                    work.stored = work.existing[0]
            for work, statuses in query.posted:
                work.posted.extend(
                    (path, row)
                    for row in found.get(key_of(work.op.key, fields), [])
                    if statuses is None or row.get("status") in statuses
                )

    # --- step 2: the writes each operation needs -----------------------------------------

    def _plan(self, work: _Work, doubts: InDoubt, resolve: Callable) -> None:
        op = work.op
        if op.prevent_duplicate and (work.existing or work.posted) and op.action != "delete":
            work.outcome = Outcome.FAILED
            work.message = op.duplicate_message or f"{work.label} already exists in BC."
            return
        if op.action == "delete":
            for row in work.existing:
                work.requests.append(
                    BatchRequest("DELETE", f"{work.path}({row['id']})", etag=_etag(row))
                )
            if not work.requests:
                work.outcome, work.message = Outcome.UNCHANGED, "not in Business Central"
            return
        if work.posts_rows:
            if self._resolve(work, resolve):
                self._plan_rows(work, doubts)
            return
        if not work.existing and work.posted:
            # Posted documents cannot change: this one is done, whatever the action.
            posted_set, row = work.posted[0]
            work.outcome = Outcome.UNCHANGED
            work.refs = [f"{posted_set}({row['id']})"]
            logger.info("%s: already posted in Business Central as %s", work.label, work.refs[0])
            return
        if not work.existing:
            if not self._resolve(work, resolve):
                return
            op = work.op
            body = dict(op.body)
            # Deep insert: lines travel inside the header, priced as the mapping says.
            body.update(self._for_insert(op.children))
            expand = ",".join(op.children)
            path = f"{work.path}?$expand={expand}" if expand else work.path
            work.create(BatchRequest("POST", path, body=body), work.write_key())
            return
        row = work.existing[0]
        if op.action == "create":
            work.outcome = Outcome.UNCHANGED
            work.refs = [f"{op.entity}({row['id']})"]
            return
        if not self._resolve(work, resolve):
            return
        op = work.op
        names = op.update_fields if op.update_fields is not None else list(op.body)
        changes = {
            name: op.body[name]
            for name in names
            if name in op.body and name not in op.key and not _same(row.get(name), op.body[name])
        }
        work.refs = [f"{op.entity}({row['id']})"]
        if not changes:
            work.outcome = Outcome.UNCHANGED
            return
        work.requests.append(
            BatchRequest("PATCH", f"{work.path}({row['id']})", body=changes, etag=_etag(row))
        )

    def _resolve(self, work: _Work, resolve: Callable) -> bool:
        """Turn the operation's look-ups (codes → BC ids) into body values; only done when
        something is written, so a document BC already holds costs no look-up. False (and
        the work failed with the mapping's sentence) when one matches nothing."""
        if not work.op.lookups:
            return True
        try:
            work.op = resolve_lookups(work.op, resolve)
        except (LookupNotFound, _Refused) as exc:
            work.outcome = Outcome.FAILED
            work.message = f"{work.label}: {exc}"
            return False
        return True

    def _plan_rows(self, work: _Work, doubts: InDoubt) -> None:
        """Post the payment's journal rows that BC does not hold yet (matched by value)."""
        unused = list(work.existing)
        refs: list[str | None] = []
        for n, row in enumerate(work.rows()):
            match = next((e for e in unused if _row_matches(e, row)), None)
            if match is not None:
                unused.remove(match)
                refs.append(f"{work.op.entity}({match['id']})")
                work.doubted |= bool(doubts.found([work.write_key(n)]))
                continue
            refs.append(None)
            work.create(BatchRequest("POST", work.path, body=row), work.write_key(n))
        work.refs = refs
        if not work.requests:
            # Rows in doubt that the look-up found were ours: applied, not merely unchanged.
            work.outcome = Outcome.APPLIED if work.doubted else Outcome.UNCHANGED

    # --- step 3: send in $batch ----------------------------------------------------------

    def _send(self, client: BCClient, works: list[_Work]) -> None:
        """Every planned request in `$batch`es of up to `batch_size`, in order. A packet
        stopped by one chunk sends none of its later requests (what committed stays; its
        retry's look-ups find it and send only the rest)."""
        queue = [(work, n, req) for work in works for n, req in enumerate(work.requests)]
        answers: dict[int, list[BatchResponse | None]] = {
            id(w): [None] * len(w.requests) for w in works
        }
        while queue:
            queue = [entry for entry in queue if _packet(entry[0]).error is None]
            chunk, queue = queue[: self.batch_size], queue[self.batch_size :]
            responses = self._batch(client, chunk) if chunk else None
            if responses is None:
                continue
            transient: dict[int, list[str]] = defaultdict(list)  # by packet
            unknown: dict[int, list[str]] = defaultdict(list)
            for (work, n, _), response in zip(chunk, responses, strict=True):
                packet = _packet(work)
                answers[id(work)][n] = response
                error = response.error()
                key = work.write_keys.get(n)
                if key is not None and _in_doubt(response.status, error):
                    unknown[id(packet)].append(key)  # e.g. a 504 inside the batch: it may have run
                elif key is not None:
                    packet.doubts.settled([key])  # answered, refused, or not run
                if response.status is None or _retry_later(error):
                    transient[id(packet)].append(f"{work.label}: {error or 'not run'}")
                elif response.committed and work.requests[n].method == "POST":
                    self._remember(client, work, response)
                    if isinstance(response.body, dict):
                        work.stored = response.body
            for packet in {id(_packet(w)): _packet(w) for w, _, _ in chunk}.values():
                busy, doubted = transient.get(id(packet)), unknown.get(id(packet))
                if doubted:
                    reason = f"Business Central: {busy[0] if busy else 'no answer'}"
                    packet.fail(packet.doubts.unknown(doubted, reason))
                elif busy:
                    packet.fail(
                        TargetError(
                            f"Business Central is busy ({len(busy)} operations): {busy[0]}",
                            transient=True,
                        )
                    )
        for work in _live(works):
            if work.outcome is None:
                _settle(work, answers[id(work)])

    def _batch(
        self, client: BCClient, chunk: list[tuple[_Work, int, BatchRequest]]
    ) -> list[BatchResponse] | None:
        """One `$batch`, its creates journalled as in doubt (each in its packet's journal)
        first. When the call fails as a whole, the packets it carried stop: a definitive
        failure settles their creates, a timeout, reset or 5xx leaves them in doubt; None."""
        writes: dict[int, tuple[Packet[_Work], list[tuple[str, str, dict[str, str]]]]] = {}
        for work, n, req in chunk:
            packet = _packet(work)
            entry = writes.setdefault(id(packet), (packet, []))
            if (key := work.write_keys.get(n)) is not None:
                entry[1].append((key, f"{req.method} {work.op.entity}", work.journal_keys(n)))
        for packet, packet_writes in writes.values():
            packet.doubts.sending(packet_writes)
        try:
            return client.batch([req for _, _, req in chunk], continue_on_error=True)
        except (BCError, SlotUnavailable) as exc:
            # Sent and unanswered (or answered with a 408/5xx BC does not explain): in doubt.
            sent = isinstance(exc, NoAnswer) or (
                isinstance(exc, BCError)
                and not isinstance(exc, NotSent)
                and not outcome_known(exc.status)
            )
            if isinstance(exc, NoAnswer):
                reason = f"Business Central did not answer ({exc.detail})"
            else:
                reason = f"Business Central answered {exc}"
            for packet, packet_writes in writes.values():
                keys = [key for key, _, _ in packet_writes]
                if sent and keys:
                    packet.fail(packet.doubts.unknown(keys, reason))
                else:
                    packet.doubts.settled(keys)
                    packet.fail(exc)
        except Exception as exc:
            _fail_all([work for work, _, _ in chunk], exc)
        return None

    # --- step 4: line prices as the packet has them --------------------------------------

    def _for_insert(self, children: dict[str, list[dict]]) -> dict[str, list[dict]]:
        """A document's collections as they are sent (line fields in BC's price order)."""
        return for_insert(children, self.line_prices, self.entities.document_lines.values())

    def _checks_prices(self, work: _Work) -> bool:
        """Whether `work` is a document whose line prices must be the packet's."""
        nav = self.entities.document_lines.get(work.op.entity)
        return self.line_prices == "packet" and nav is not None and nav in work.op.children

    def _correct_prices(self, client: BCClient, works: list[_Work]) -> None:
        """Patch every line whose price BC recalculated (business-central.md §3.5.1)."""
        planned: list[tuple[_Work, BatchRequest]] = []
        for work in works:
            done = work.outcome in (Outcome.APPLIED, Outcome.UNCHANGED)
            if not done or work.stored is None or not self._checks_prices(work):
                continue
            nav = self.entities.document_lines[work.op.entity]
            path = f"{work.path}({work.stored['id']})/{nav}"
            rows = self._for_insert(work.op.children)[nav]
            for request in price_corrections(path, rows, work.stored.get(nav)):
                planned.append((work, request))
        busy: dict[int, tuple[Packet[_Work], list[str]]] = {}
        for start in range(0, len(planned), self.batch_size):
            chunk = planned[start : start + self.batch_size]
            try:
                answers = client.batch([req for _, req in chunk], continue_on_error=True)
            except Exception as exc:
                _fail_all([work for work, _ in chunk], exc)
                continue
            for (work, request), answer in zip(chunk, answers, strict=True):
                error = answer.error()
                body = answer.body if isinstance(answer.body, dict) else {}
                wanted = request.body["unitPrice"]
                if answer.status is None or _retry_later(error):
                    packet = _packet(work)
                    busy.setdefault(id(packet), (packet, []))[1].append(
                        f"{work.label}: {error or 'not run'}"
                    )
                elif error is not None:
                    work.outcome = Outcome.FAILED
                    work.message = (
                        f"{work.label}: Business Central refused the packet's line price "
                        f"{wanted} ({error.status} {error.code}): {error.bc_message}"
                    )
                elif not same_price(body.get("unitPrice"), wanted):
                    work.outcome = Outcome.FAILED
                    work.message = (
                        f"{work.label}: Business Central kept the line price "
                        f"{body.get('unitPrice')} instead of the packet's {wanted}."
                    )
                elif work.outcome is Outcome.UNCHANGED:
                    work.outcome = Outcome.APPLIED  # the document was ours; now it is right
        for packet, lines in busy.values():
            # The retry re-reads the lines and patches only what still differs.
            packet.fail(
                TargetError(
                    f"Business Central is busy ({len(lines)} line prices): {lines[0]}",
                    transient=True,
                )
            )

    def _remember(self, client: BCClient, work: _Work, response: BatchResponse) -> None:
        body = response.body if isinstance(response.body, dict) else {}
        if body.get("id"):
            with self._lock:
                self._created.append((client, work.path, body["id"], work.op.entity))

    # --- step 4: refusals time fixes -----------------------------------------------------

    def _hold_for_customers(self, client: BCClient, works: list[_Work]) -> None:
        """Documents BC refused whose customer is missing or blocked for their type become
        `held` (one look-up of those customers for the whole group). A failed look-up
        stops the packets of those documents only."""
        refused = [
            w
            for w in works
            if w.refused and w.outcome is Outcome.FAILED and w.op.entity in self.entities.holdable
        ]
        numbers = {str(n) for w in refused for n in _customers_of(w) if n}
        if not numbers:
            return
        found: dict[str, dict] = {}
        try:
            for text in any_of("number", sorted(numbers)):
                select = ["id", "number", "blocked"]
                for row in client.list("customers", filter=text, select=select):
                    found[str(row.get("number", "")).lower()] = row
        except Exception as exc:
            _fail_all(refused, exc)
            return
        for work in refused:
            for number in _customers_of(work):
                customer = found.get(number.lower())
                reason = _hold_reason(work.op.entity, number, customer, self.entities)
                if reason is not None:
                    work.outcome, work.message = Outcome.HELD, f"{work.label}: {reason}"
                    work.waits_for = held_key("customer", number)
                    logger.info("%s", work.message)
                    break


@dataclass(frozen=True, eq=False)
class _Read:
    """One look-up query: an entity set and its `$filter`, `$select` and `$expand`."""

    path: str
    filter: str
    select: list[str] | None
    expand: list[str] | None

    def request(self) -> BatchRequest:
        """The query as a GET inside `$batch` (its options percent-encoded)."""
        options = {"$filter": self.filter}
        if self.select:
            options["$select"] = ",".join(self.select)
        if self.expand:
            options["$expand"] = ",".join(self.expand)
        return BatchRequest("GET", f"{self.path}?{urlencode(options, quote_via=quote)}")

    def run(self, client: BCClient) -> list[dict]:
        """The query as plain GETs, page after page."""
        options = {"filter": self.filter, "select": self.select, "expand": self.expand}
        return list(client.list(self.path, **options))


def _read_many(client: BCClient, reads: list[_Read], *, batched: bool) -> dict[int, list[dict]]:
    """The rows of each read (by `id`). `batched`: the reads travel as GETs inside `$batch`
    (up to 100 per request, business-central.md §4.4), so the look-ups of a whole group cost
    a request or two; a read whose answer BC pages is read again page by page."""
    if not batched or len(reads) < 2:
        return {id(read): read.run(client) for read in reads}
    answers = client.batch([read.request() for read in reads], continue_on_error=True)
    rows: dict[int, list[dict]] = {}
    for read, answer in zip(reads, answers, strict=True):
        if not answer.ok:
            error = answer.error()
            raise error or TargetError(f"Business Central did not run {read.path}", transient=True)
        body = answer.body if isinstance(answer.body, dict) else {}
        paged = body.get("@odata.nextLink") is not None
        rows[id(read)] = read.run(client) if paged else list(body.get("value") or [])
    return rows


def _customers_of(work: _Work) -> list[str]:
    """The document's sell-to and bill-to customer numbers, as sent."""
    numbers = [str(work.op.body.get(name) or "").strip() for name in _CUSTOMER_FIELDS]
    return list(dict.fromkeys(n for n in numbers if n))


def _hold_reason(entity: str, number: str, customer: dict | None, entities: Entities) -> str | None:
    """Why a document of `entity` for customer `number` waits, or None when the customer
    does not explain BC's refusal."""
    if customer is None:
        return f"customer {number} is not in Business Central yet"
    blocked = str(customer.get("blocked") or "").strip()
    if entity in entities.refused_for(blocked):
        return f"customer {number} is blocked ({blocked})"
    return None


def _resolver(client: BCClient) -> Callable[[LookupRef], str | None]:
    """Codes → BC ids for one group's writes (misses kept too: the group's look-ups all run
    before its writes)."""
    cache = LookupCache(keep_misses=True)

    def find(ref: LookupRef) -> str | None:
        # every term must match: the code, and e.g. the item a variant belongs to
        query = " and ".join(f"{f} eq {literal(v)}" for f, v in ref.terms())
        row = client.find_one(ref.entity, query, select=["id"])
        return None if row is None else row["id"]

    def resolve(ref: LookupRef) -> str | None:
        terms = ref.terms()
        match = " and ".join(f for f, _ in terms)
        value = "\x1f".join(str(v) for _, v in terms)
        return cache.get(ref.entity, match, value, lambda: find(ref))

    return resolve


def _retry_later(error: BCError | None) -> bool:
    """A refusal the packet's retry can get past: a transient error, or a stale etag (the
    entity changed since it was read; the retry re-reads it instead of forcing the write)."""
    return error is not None and (error.transient or isinstance(error, EntityChanged))


def _in_doubt(status: int | None, error: BaseException | None) -> bool:
    """Whether a batch operation's answer leaves it unknown whether it ran: a 408/5xx that
    BC does not explain as a permanent error (None: not run, since an earlier one failed)."""
    if status is None or outcome_known(status):
        return False
    return error is None or getattr(error, "transient", True)


def _committed_late(work: _Work, doubts: InDoubt) -> bool:
    """A document or customer whose create was in doubt, and which the look-up finds: that
    create committed after all. It is applied (linked to what was found), not re-planned,
    and not refused as a duplicate."""
    if work.posts_rows or not (work.existing or work.posted):
        return False
    if not doubts.found([work.write_key()]):
        return False
    entity, row = (work.op.entity, work.existing[0]) if work.existing else work.posted[0]
    work.outcome = Outcome.APPLIED
    work.doubted = True
    work.refs = [f"{entity}({row['id']})"]
    logger.info("%s: the write in doubt committed after all (%s)", work.label, work.refs[0])
    return True


def _settle(work: _Work, responses: list[BatchResponse | None]) -> None:
    """The outcome of an operation whose requests all ran."""
    errors = [r.error() for r in responses if r is not None and not r.ok]
    if errors:
        error = errors[0]
        work.outcome = Outcome.FAILED
        work.refused = isinstance(error, BCError)
        reason = error.bc_message if isinstance(error, BCError) else str(error)
        code = f"{error.status} {error.code}" if isinstance(error, BCError) else "error"
        work.message = f"{work.label}: Business Central refused it ({code}): {reason}"
        return
    work.outcome = Outcome.APPLIED
    op = work.op
    if work.posts_rows:
        created = iter(r for r in responses if r is not None)
        work.refs = [ref or _ref(op.entity, next(created, None)) for ref in work.refs]
        return
    first = responses[0] if responses else None
    head = work.refs[0] if work.refs else _ref(op.entity, first)
    refs: list[str | None] = [head]
    body = first.body if first is not None and isinstance(first.body, dict) else {}
    for collection in op.children:
        lines = body.get(collection) or []
        refs.extend(
            f"{collection}({line['id']})" if isinstance(line, dict) and "id" in line else head
            for line in lines
        )
    work.refs = refs


def _ref(entity: str, response: BatchResponse | None) -> str | None:
    body = response.body if response is not None and isinstance(response.body, dict) else {}
    return f"{entity}({body['id']})" if body.get("id") else None


def _etag(row: dict) -> str:
    return row.get("@odata.etag") or "*"


def _norm(value: Any) -> Any:
    if value is None or value == "":
        return ""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float | Decimal):
        return Decimal(str(value)).normalize()
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return str(value).lower()
    return number.normalize() if number.is_finite() else str(value).lower()


def _same(current: Any, wanted: Any) -> bool:
    a, b = _norm(current), _norm(wanted)
    if isinstance(a, str) and isinstance(b, str):
        return a.lower() == b.lower()
    return a == b


def _row_matches(existing: dict, wanted: dict) -> bool:
    return all(_same(existing.get(name), value) for name, value in wanted.items())


def describe_entity(row: dict, document_lines: dict[str, str]) -> Iterator[str]:
    """Human lines for one entity read back from BC (pure)."""
    entity = row.get("@entity", "")
    lines_nav = document_lines.get(entity)
    if lines_nav is not None:
        lines = row.get(lines_nav) or []
        yield (
            f"  {entity} {row.get('number')} (mobile no. {row.get('externalDocumentNumber')}) "
            f"customer {row.get('customerNumber')}: {len(lines)} lines, "
            f"total {row.get('totalAmountExcludingTax')}"
        )
        for line in lines:
            yield (
                f"    {line.get('sequence')}: {line.get('lineObjectNumber')} "
                f"x {line.get('quantity')} {line.get('unitOfMeasureCode') or ''}".rstrip()
            )
    elif entity == "customers":
        yield (
            f"  customer {row.get('number')} {row.get('displayName')!r} "
            f"({row.get('city') or 'no city'}), blocked {row.get('blocked')!r}"
        )
    elif entity == "customerPayments":
        applies = row.get("appliesToInvoiceNumber") or "unapplied"
        yield (
            f"  payment journal line {row.get('externalDocumentNumber')} customer "
            f"{row.get('customerNumber')}: {row.get('amount')} ({applies})"
        )
    else:
        yield f"  {entity} {row.get('number') or row.get('id')}"


def target_from_settings(settings: Settings) -> BCTarget:
    """The `bc` target: real Business Central configured by the `bc_*` settings
    (`NotConfigured` names the ones it lacks)."""
    require("TARGET=bc", missing_bc(settings))
    return BCTarget(
        client=BCClient.from_settings(settings),
        mapping=settings.bc_mapping or DEFAULT_MAPPING,
        payment_journal=settings.bc_payment_journal,
        in_doubt_seconds=settings.bc_in_doubt_seconds,
        companies=CompanyMap.parse(settings.bc_company_map),
    )
