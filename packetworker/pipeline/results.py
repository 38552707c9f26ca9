"""Small types shared by polling, processing and their callers (actors, operations, replay,
CLI): what a poll or a packet run answers, and the error that means "try again later"."""

from __future__ import annotations

from dataclasses import dataclass, field

import dramatiq

from packetworker.errors import PacketworkerError

# The portal's two lists: packets (applied) and files (attachments, archived only).
LIST_TYPES = ("packet", "file")

# What `process_packet` answers when another worker holds the packet's lock. That worker may
# have died holding it, so a queued message that meets this should come back later, when the
# lock has expired, rather than wait for the stale-packet sweep.
BUSY = "busy: another worker holds the packet"


class TransientError(PacketworkerError):
    """Processing could not finish for a reason that may pass (portal, storage or target
    unavailable). The packet is left as it was; run it again later."""

    transient = True


class RetryLater(TransientError, dramatiq.Retry):
    """A transient failure that knows when a retry can help (a write in doubt that a look-up
    can decide only later): Dramatiq's `Retries` middleware re-enqueues the message after
    `seconds`, instead of its own backoff, and does not log it as an error."""

    def __init__(self, message: str, *, seconds: float) -> None:
        dramatiq.Retry.__init__(self, message, delay=max(1, round(seconds * 1000)))
        self.seconds = seconds

    def __reduce__(self):
        return (_retry_later, (str(self.message), self.seconds))


def _retry_later(message: str, seconds: float) -> RetryLater:
    return RetryLater(message, seconds=seconds)


@dataclass
class PollResult:
    listed: int
    new_ids: list[str]
    requeue_ids: list[str]
    acked: dict[str, int]  # list type -> packets acknowledged in this poll


@dataclass
class ProcessResult:
    packet_id: str
    state: str
    outcomes: dict[str, int] = field(default_factory=dict)
    duplicate_of: str | None = None
    error: str | None = None


__all__ = ["BUSY", "LIST_TYPES", "PollResult", "ProcessResult", "RetryLater", "TransientError"]
