"""The pending-packet queue with SQS-like semantics (pure model, no I/O).

Each receive hands out a fresh receipt handle per listed message and hides the message for
the visibility timeout; afterwards it is listed again with a new handle. Only the latest
handle deletes a message, as with SQS once a message was received again.
"""

from __future__ import annotations

import base64
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

ListType = Literal["packet", "file"]
# Which entries each pull list type shows (the API's packetType=packet|file).
_LIST_OF = {"data": "packet", "image": "file"}


def new_receipt_handle() -> str:
    """An opaque token shaped like the real ones (`AQEB` + ~400 base64 characters)."""
    return "AQEB" + base64.b64encode(secrets.token_bytes(294)).decode()


def iso_ms(timestamp: float) -> str:
    """`2021-07-15T10:14:02.407Z`, the API's onDate format."""
    moment = datetime.fromtimestamp(timestamp, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass
class Message:
    id: str
    url: str
    user_name: str
    on_date: str
    size: int
    company_id: str
    packet_type: Literal["data", "image"] = "data"
    operation: str | None = None
    app_code: str = "SLA"
    receipt_handle: str | None = field(default=None, repr=False)
    visible_at: float = 0.0

    @property
    def list_type(self) -> str:
        return _LIST_OF[self.packet_type]

    def entry(self) -> dict[str, Any]:
        """The pull-list entry, field order as in real lists."""
        out: dict[str, Any] = {
            "url": self.url,
            "receiptHandle": self.receipt_handle,
            "id": self.id,
            "onDate": self.on_date,
            "userName": self.user_name,
            "size": self.size,
        }
        if self.operation:
            out["operation"] = self.operation
        out.update(companyId=self.company_id, appCode=self.app_code, packetType=self.packet_type)
        return out


class PendingQueue:
    """Messages of one app area, thread-safe."""

    def __init__(self, *, visibility_timeout: float, now: Callable[[], float]) -> None:
        self.visibility_timeout = visibility_timeout
        self._now = now
        self._messages: dict[str, Message] = {}
        self._done: list[str] = []
        self._lock = threading.Lock()

    def add(self, message: Message) -> None:
        with self._lock:
            if message.id in self._messages:
                raise ValueError(f"packet {message.id} is already pending")
            self._messages[message.id] = message

    def receive(self, list_type: ListType) -> list[dict[str, Any]]:
        """List visible messages of this type, each with a new handle, and hide them."""
        now = self._now()
        listed = []
        with self._lock:
            for message in self._messages.values():
                if message.list_type == list_type and message.visible_at <= now:
                    message.receipt_handle = new_receipt_handle()
                    message.visible_at = now + self.visibility_timeout
                    listed.append(message.entry())
        return listed

    def delete(self, message_id: str, receipt_handle: str) -> bool:
        """Remove a message if `receipt_handle` is its latest; False leaves it pending.

        Acknowledging an already deleted message again succeeds, as SQS deletes do.
        """
        with self._lock:
            message = self._messages.get(message_id)
            if message is None:
                return message_id in self._done
            if not secrets.compare_digest(message.receipt_handle or "", receipt_handle):
                return False
            del self._messages[message_id]
            self._done.append(message_id)
            return True

    def pending_ids(self) -> list[str]:
        with self._lock:
            return list(self._messages)

    def done_ids(self) -> list[str]:
        with self._lock:
            return list(self._done)
