"""The ledger: what the worker knows about every inbound packet, and the indexes that make
"nothing lost, nothing applied twice" checkable.

Per packet (keyed by packet id, which is a GUID from the portal or a content hash for
replayed files): state, list type, listing metadata with the **latest** receipt handle,
attempts, sha256/size/archive key, timestamps, last error, `duplicate_of`, and `result`
(`applied`, `duplicate` or `quarantined`: what happened before it was acknowledged). A
packet a target refused for a reason time fixes is `waiting` (held), with `held_since` and
`held_on` (what it waits for); it is retried on its own schedule, never counted as stale.

Indexes, per app area: ids per state (sorted by last update), pending ids (sorted by first
listing, for "oldest pending age"), the quarantine (dead letters, kept after the ack), one
ack queue per list type, and content hash → first packet id (claimed atomically). Per
packet: record links `table/DMS_ROWID → target ref`, so a retry skips applied records. Per
target: a reference map (`LedgerTargetRefs`, the targets' `TargetRefs`) where a target that
cannot query its system keeps the ids of the records it created; it never expires.

Per packet also its timeline (`PacketEvent`s: each state reached, each error, the steps in
between, with time and attempt; `update` records state changes and errors atomically with
the update itself), and per app area an index of packets by `result`, so the operator's
counts of outcomes need no scan.

Retention: an applied or duplicate packet, its record links and its content-hash claim
expire `retention` seconds after they were last written. After that the same packet id (if
listed again) or the same content under a new id is treated as new, and only the target's
own idempotency keys stop a second apply — so keep retention well above the time a packet
can take to be re-delivered. Quarantined packets never expire: they wait for an operator
(`packetworker dlq`). Non-terminal packets never expire either.

Two backends with the same behaviour: `RedisLedger` (`redis.py`: hashes, sorted sets, sets;
small Lua scripts where an update and its index moves must be atomic) and `MemoryLedger`
(`memory.py`). The entry, its states and the `Ledger` ABC are in `base.py`.
"""

from packetworker.pipeline.ledger.base import (
    ACTIVE,
    LISTING_FIELDS,
    MAX_EVENTS,
    PENDING,
    TERMINAL,
    Ledger,
    LedgerTargetRefs,
    PacketEntry,
    PacketEvent,
    PacketState,
)
from packetworker.pipeline.ledger.memory import MemoryLedger
from packetworker.pipeline.ledger.redis import RedisLedger

__all__ = [
    "ACTIVE",
    "LISTING_FIELDS",
    "MAX_EVENTS",
    "PENDING",
    "TERMINAL",
    "Ledger",
    "LedgerTargetRefs",
    "MemoryLedger",
    "PacketEntry",
    "PacketEvent",
    "PacketState",
    "RedisLedger",
]
