"""Webhook subscriptions: the validation handshake and notification delivery.

Like BC, a subscription is created (and renewed) only after the notification URL echoes the
`validationToken` with a 200 within a timeout. Notifications are POSTed from a background
thread, one HTTP call per URL carrying every pending change in `value[]`; a reply other than
2xx/408/429/5xx deletes the subscription, as BC does.
"""

from __future__ import annotations

import queue
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from packetworker.sandbox.bc.errors import ODataError


@dataclass
class Delivery:
    url: str
    payload: dict
    status: int | None = None
    error: str | None = None


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


@dataclass
class Notifier:
    """Delivers notification batches from one background thread, in order."""

    timeout: float = 5.0
    on_gone: Callable[[str], None] = lambda subscription_id: None
    deliveries: list[Delivery] = field(default_factory=list)
    _queue: queue.Queue = field(default_factory=queue.Queue)
    _done: threading.Condition = field(default_factory=threading.Condition)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="bc-sandbox-notifier", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout=10)

    def send(self, url: str, notifications: list[dict]) -> None:
        self._queue.put((url, {"value": notifications}))

    def wait(self, count: int, timeout: float = 10.0) -> list[Delivery]:
        """Block until at least `count` deliveries finished; returns them."""
        with self._done:
            self._done.wait_for(lambda: len(self.deliveries) >= count, timeout=timeout)
            return list(self.deliveries)

    def _run(self) -> None:
        with httpx.Client(timeout=self.timeout) as http:
            while (item := self._queue.get()) is not None:
                url, payload = item
                delivery = Delivery(url, payload)
                try:
                    response = http.post(url, json=payload)
                    delivery.status = response.status_code
                except httpx.HTTPError as exc:
                    delivery.error = type(exc).__name__
                status = delivery.status
                retryable = status is None or status in (408, 429) or status >= 500
                if not (status is not None and 200 <= status < 300) and not retryable:
                    for note in payload["value"]:
                        self.on_gone(note["subscriptionId"])
                with self._done:
                    self.deliveries.append(delivery)
                    self._done.notify_all()
