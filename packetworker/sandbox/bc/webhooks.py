"""Webhook subscriptions: the validation handshake and notification delivery as BC does them.

Like BC, a subscription is created (and renewed) only after the notification URL echoes the
`validationToken` with a 200 within a timeout. Committed changes are not sent at once: they
wait `delay` seconds (emulator clock) after the first one, repeated changes to one entity
merge, and more than `collection_threshold` entities of one subscription become a single
`collection` notification. Then one POST per notification URL carries every pending
notification in `value[]`. A failed send is retried on BC's schedule or deletes the
subscriptions on that URL, as BC's notification job does.
"""

from __future__ import annotations

import secrets
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import quote

import httpx

from packetworker.sandbox.bc.clock import isoformat
from packetworker.sandbox.bc.errors import ODataError

# business-central.md §6.4 (code view, APIWebhookNotificationSend): waits before the 2nd, 3rd,
# 4th and 5th attempts; after the 5th failed attempt the subscription is deleted.
RETRY_DELAYS = (60.0, 600.0, 6_000.0, 60_000.0)
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
# business-central.md §6.4: BC waits 30 s after the first change before sending.
NOTIFICATION_DELAY = 30.0
# business-central.md §6.4: more than 1,000 changed records in the window → one `collection`.
COLLECTION_THRESHOLD = 1_000


@dataclass
class Delivery:
    url: str
    payload: dict
    status: int | None = None
    error: str | None = None
    attempt: int = 1


@dataclass
class Handshake:
    url: str
    ok: bool
    detail: str = ""


def handshake(url: str, *, method: str, timeout: float) -> Handshake:
    """Call `url?validationToken=...`; ok only on a 200 whose body is the token."""
    token = secrets.token_urlsafe(24)
    try:
        response = httpx.request(method, url, params={"validationToken": token}, timeout=timeout)
    except httpx.HTTPError as exc:
        return Handshake(url, False, f"{type(exc).__name__}")
    if response.status_code != 200:
        return Handshake(url, False, f"status {response.status_code}")
    if response.text.strip() != token:
        return Handshake(url, False, "token not echoed")
    return Handshake(url, True)


def require_handshake(result: Handshake) -> None:
    if not result.ok:
        raise ODataError(
            400,
            "BadRequest",
            f"The subscription could not be validated by the notification URL ({result.detail}).",
        )


def retryable(status: int | None) -> bool:
    """business-central.md §6.4: no response, 408, 429 and 5xx are rescheduled."""
    return status is None or status in (408, 429) or 500 <= status <= 599


@dataclass
class Notice:
    """What a subscription is told about one entity (or, as a collection, about many)."""

    subscription: dict
    company_id: str
    entity_set: str
    entity_id: str
    change_type: str
    at: str


@dataclass
class _Pending:
    """Notifications waiting for one URL: merged per (subscription, entity)."""

    first_at: datetime
    due: datetime
    attempts: int = 0
    notes: dict[tuple[str, str], dict] = field(default_factory=dict)
    collections: dict[str, dict] = field(default_factory=dict)

    def payload(self) -> dict:
        return {"value": [*self.collections.values(), *self.notes.values()]}


@dataclass
class Notifier:
    """Holds, merges, sends and retries notifications from one background thread.

    `on_gone(url)` deletes every subscription on `url` (BC deletes them on a refused send and
    after the last attempt). Time is the emulator's `clock`, so tests move it to release a
    batch or a retry; the thread checks it every `tick` seconds of real time.
    """

    clock: Callable[[], datetime]
    on_gone: Callable[[str], None] = lambda url: None
    timeout: float = 5.0
    delay: float = NOTIFICATION_DELAY
    collection_threshold: int = COLLECTION_THRESHOLD
    tick: float = 0.02
    deliveries: list[Delivery] = field(default_factory=list)
    _pending: dict[str, _Pending] = field(default_factory=dict)
    _state: threading.Condition = field(default_factory=threading.Condition)
    _stopping: bool = False
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="bc-sandbox-notifier", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._state:
            self._stopping = True
            self._state.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def add(self, url: str, notices: list[Notice]) -> None:
        """Queue `notices` for `url`; they join the batch (or the retry) already waiting."""
        with self._state:
            now = self.clock()
            pending = self._pending.get(url)
            if pending is None:
                pending = self._pending[url] = _Pending(now, now + timedelta(seconds=self.delay))
            for notice in notices:
                self._merge(pending, notice)
            self._state.notify_all()

    def flush(self) -> None:
        """Send whatever waits now (as if the delay and retry waits had passed)."""
        with self._state:
            now = self.clock()
            for pending in self._pending.values():
                pending.due = now
            self._state.notify_all()

    @property
    def pending(self) -> int:
        """Notifications waiting (merged), over every URL."""
        with self._state:
            return sum(len(p.notes) + len(p.collections) for p in self._pending.values())

    @property
    def next_due(self) -> datetime | None:
        """When the next send (or retry) is due, on the emulator clock; None: nothing waits."""
        with self._state:
            return min((p.due for p in self._pending.values()), default=None)

    def wait(self, count: int, timeout: float = 10.0) -> list[Delivery]:
        """Block until at least `count` sends finished; returns them."""
        with self._state:
            self._state.wait_for(lambda: len(self.deliveries) >= count, timeout=timeout)
            return list(self.deliveries)

    def _merge(self, pending: _Pending, change: Notice) -> None:
        sub = change.subscription
        sid = sub["subscriptionId"]
        if sid in pending.collections:
            pending.collections[sid]["lastModifiedDateTime"] = change.at
            return
        key = (sid, change.entity_id)
        old = pending.notes.get(key)
        change_type = change.change_type
        if old is not None and change_type == "updated" and old["changeType"] == "created":
            change_type = "created"  # business-central.md §6.4: repeated changes merge
        pending.notes[key] = _note(sub, change, change_type)
        mine = [k for k in pending.notes if k[0] == sid]
        if len(mine) > self.collection_threshold:
            # business-central.md §6.4: one `collection` whose resource is a filtered
            # collection URL to re-read, instead of one notification per record.
            for k in mine:
                del pending.notes[k]
            since = isoformat(pending.first_at - timedelta(milliseconds=1))
            filter_ = quote(f"lastModifiedDateTime gt {since}", safe="")
            collection = Notice(
                sub, change.company_id, change.entity_set, "", "collection", change.at
            )
            note = _note(sub, collection, "collection")
            note["resource"] = (
                f"api/v2.0/companies({change.company_id})/{change.entity_set}?$filter={filter_}"
            )
            pending.collections[sid] = note

    def _due(self) -> tuple[str, _Pending] | None:
        now = self.clock()
        for url, pending in self._pending.items():
            if pending.due <= now:
                return url, self._pending.pop(url)
        return None

    def _run(self) -> None:
        with httpx.Client(timeout=self.timeout) as http:
            while True:
                with self._state:
                    self._state.wait_for(
                        lambda: self._stopping or self._due_exists(), timeout=self.tick
                    )
                    if self._stopping:
                        return
                    found = self._due()
                if found is not None:
                    self._send(http, *found)

    def _due_exists(self) -> bool:
        now = self.clock()
        return any(p.due <= now for p in self._pending.values())

    def _send(self, http: httpx.Client, url: str, pending: _Pending) -> None:
        payload = pending.payload()
        pending.attempts += 1
        delivery = Delivery(url, payload, attempt=pending.attempts)
        # business-central.md §6.4 (code view): clientRequestId and x-ms-correlation-id.
        correlation = str(uuid.uuid4())
        headers = {"clientRequestId": correlation, "x-ms-correlation-id": correlation}
        try:
            response = http.post(url, json=payload, headers=headers)
            delivery.status = response.status_code
        except httpx.HTTPError as exc:
            delivery.error = type(exc).__name__
        status = delivery.status
        gone = False
        if status is not None and 200 <= status < 300:
            pass
        elif retryable(status) and pending.attempts < MAX_ATTEMPTS:
            with self._state:
                wait = RETRY_DELAYS[pending.attempts - 1]
                pending.due = self.clock() + timedelta(seconds=wait)
                newer = self._pending.pop(url, None)
                if newer is not None:
                    pending.notes.update(newer.notes)
                    pending.collections.update(newer.collections)
                self._pending[url] = pending
        else:
            # business-central.md §6.4: any other answer (or the last failed attempt) drops
            # the notifications and deletes the subscription(s) on that URL.
            gone = True
        if gone:
            self.on_gone(url)
            with self._state:
                self._pending.pop(url, None)
        with self._state:
            self.deliveries.append(delivery)
            self._state.notify_all()


def _note(sub: dict, change: Notice, change_type: str) -> dict:
    return {
        "subscriptionId": sub["subscriptionId"],
        "clientState": sub["clientState"],
        "expirationDateTime": sub["expirationDateTime"],
        "resource": f"api/v2.0/companies({change.company_id})/{change.entity_set}"
        f"({change.entity_id})",
        "changeType": change_type,
        "lastModifiedDateTime": change.at,
    }
