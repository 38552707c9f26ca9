"""The ledger: what the worker knows about every inbound packet, and the indexes that make
"nothing lost, nothing applied twice" checkable.

Per packet (keyed by packet id, which is a GUID from the portal or a content hash for
replayed files): state, list type, listing metadata with the **latest** receipt handle,
attempts, sha256/size/archive key, timestamps, last error, `duplicate_of`, and `result`
(`applied`, `duplicate` or `quarantined`: what happened before it was acknowledged).

Indexes, per app area: ids per state (sorted by last update), pending ids (sorted by first
listing, for "oldest pending age"), the quarantine (dead letters, kept after the ack), one
ack queue per list type, and content hash → first packet id (claimed atomically). Per
packet: record links `table/DMS_ROWID → target ref`, so a retry skips applied records.

Retention: an applied or duplicate packet, its record links and its content-hash claim
expire `retention` seconds after they were last written. After that the same packet id (if
listed again) or the same content under a new id is treated as new, and only the target's
own idempotency keys stop a second apply — so keep retention well above the time a packet
can take to be re-delivered. Quarantined packets never expire: they wait for an operator
(`packetworker dlq`). Non-terminal packets never expire either.

Two backends with the same behaviour: `RedisLedger` (hashes, sorted sets, sets; two small
Lua scripts where an update and its index moves must be atomic) and `MemoryLedger`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import redis

from packetworker.pipeline.locks import Locks, MemoryLocks, RedisLocks


class PacketState(StrEnum):
    LISTED = "listed"
    DOWNLOADING = "downloading"
    ARCHIVED = "archived"
    APPLYING = "applying"
    APPLIED = "applied"
    QUARANTINED = "quarantined"
    ACKNOWLEDGED = "acknowledged"


TERMINAL = frozenset({PacketState.APPLIED, PacketState.QUARANTINED, PacketState.ACKNOWLEDGED})
PENDING = frozenset(set(PacketState) - TERMINAL)

# Fields a new listing refreshes on a known packet (the receipt handle changes per listing).
LISTING_FIELDS = (
    "list_type",
    "url",
    "user",
    "company",
    "operation",
    "app_code",
    "on_date",
    "receipt_handle",
)


@dataclass(slots=True)
class PacketEntry:
    packet_id: str
    app_area: str
    state: PacketState = PacketState.LISTED
    list_type: str = "packet"
    url: str | None = None
    user: str | None = None
    company: str | None = None
    operation: str | None = None
    app_code: str | None = None
    on_date: str | None = None
    receipt_handle: str | None = None
    attempts: int = 0
    sha256: str | None = None
    size: int | None = None
    archive_key: str | None = None
    listed_at: float = 0.0
    updated_at: float = 0.0
    last_error: str | None = None
    duplicate_of: str | None = None
    result: str | None = None  # applied | duplicate | quarantined
    source: str = "portal"  # portal | replay

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL

    def to_fields(self) -> dict[str, str]:
        """String fields for a Redis hash; None becomes '' (meaning absent)."""
        return {
            f.name: "" if (v := getattr(self, f.name)) is None else str(v)
            for f in dataclasses.fields(self)
        }

    @classmethod
    def from_fields(cls, raw: Mapping[str, str]) -> PacketEntry:
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            value = raw.get(f.name)
            if value is None or value == "":
                continue
            if f.name in ("attempts", "size"):
                values[f.name] = int(value)
            elif f.name in ("listed_at", "updated_at"):
                values[f.name] = float(value)
            elif f.name == "state":
                values[f.name] = PacketState(value)
            else:
                values[f.name] = value
        return cls(**values)


def _clean(fields: Mapping[str, Any]) -> dict[str, str]:
    unknown = set(fields) - {f.name for f in dataclasses.fields(PacketEntry)}
    if unknown:
        raise TypeError(f"unknown ledger fields: {sorted(unknown)}")
    return {k: "" if v is None else str(v) for k, v in fields.items()}


class Ledger(ABC):
    """Packet bookkeeping. Every method is safe to call from several processes at once."""

    locks: Locks
    retention: float
    clock: Callable[[], float]  # the ledger's time; tests pass a clock they move by hand

    @abstractmethod
    def get(self, packet_id: str) -> PacketEntry | None: ...

    @abstractmethod
    def record_listed(self, entry: PacketEntry) -> tuple[PacketEntry, bool]:
        """Create `entry` (state listed) if unknown, else refresh its listing fields only.
        Returns the stored entry and whether it was created."""

    @abstractmethod
    def update(
        self, packet_id: str, *, state: PacketState | None = None, **fields: Any
    ) -> PacketEntry:
        """Set fields (None clears) and move to `state`, with its indexes, atomically.
        Always bumps `updated_at`. Raises KeyError for an unknown packet."""

    @abstractmethod
    def claim_content(self, app_area: str, sha256: str, packet_id: str) -> str:
        """Claim `sha256` for `packet_id` unless already claimed; return the holder."""

    @abstractmethod
    def replace_claim(self, app_area: str, sha256: str, *, old: str, new: str) -> bool:
        """Hand the claim from `old` to `new` if `old` still holds it."""

    @abstractmethod
    def queue_ack(self, app_area: str, list_type: str, packet_id: str) -> None: ...

    @abstractmethod
    def pending_acks(self, app_area: str, list_type: str) -> list[str]: ...

    @abstractmethod
    def mark_acknowledged(self, app_area: str, list_type: str, packet_ids: Sequence[str]) -> None:
        """Remove from the ack queue and move known packets to `acknowledged`."""

    @abstractmethod
    def links(self, packet_id: str, keys: Iterable[str]) -> dict[str, str]:
        """The already-applied subset of `keys` (record keys) with their target refs."""

    @abstractmethod
    def add_links(self, packet_id: str, links: Mapping[str, str]) -> None: ...

    @abstractmethod
    def ids(self, app_area: str, state: PacketState) -> list[str]:
        """Ids in `state`, least recently updated first."""

    @abstractmethod
    def stale(self, app_area: str, *, before: float) -> list[str]:
        """Non-terminal ids whose last update is older than `before`."""

    @abstractmethod
    def counts(self, app_area: str) -> dict[str, int]: ...

    @abstractmethod
    def oldest_pending(self, app_area: str) -> float | None:
        """`listed_at` of the oldest non-terminal packet."""

    @abstractmethod
    def quarantine(self, app_area: str) -> list[str]:
        """Quarantined ids (kept after their ack), oldest first."""

    @abstractmethod
    def app_areas(self) -> list[str]: ...

    @abstractmethod
    def prune(self, app_area: str) -> int:
        """Drop index members of expired packets; returns how many."""

    def close(self) -> None:  # noqa: B027 - the memory backend holds nothing
        pass


# --- Redis ---------------------------------------------------------------------------------

# KEYS: packet hash. ARGV: ns, now, number of listing pairs, then field/value pairs
# (listing pairs first). '' values are skipped.
_RECORD_LISTED = """
local h = KEYS[1]
local ns, now, nlisting = ARGV[1], ARGV[2], tonumber(ARGV[3])
local exists = redis.call('EXISTS', h) == 1
local last = #ARGV
if exists then last = 3 + 2 * nlisting end
for i = 4, last, 2 do
  if ARGV[i + 1] ~= '' then redis.call('HSET', h, ARGV[i], ARGV[i + 1]) end
end
if exists then return 0 end
redis.call('HSET', h, 'state', 'listed', 'listed_at', now, 'updated_at', now)
local app = redis.call('HGET', h, 'app_area')
local id = redis.call('HGET', h, 'packet_id')
local prefix = ns .. ':' .. app .. ':'
redis.call('ZADD', prefix .. 'state:listed', now, id)
redis.call('ZADD', prefix .. 'pending', now, id)
redis.call('SADD', ns .. ':apps', app)
return 1
"""

# KEYS: packet hash, links hash. ARGV: ns, new state or '', now, ttl, field/value pairs
# ('' deletes the field).
_UPDATE = """
local h, links = KEYS[1], KEYS[2]
if redis.call('EXISTS', h) == 0 then return 0 end
local ns, now, ttl = ARGV[1], ARGV[3], tonumber(ARGV[4])
for i = 5, #ARGV, 2 do
  if ARGV[i + 1] == '' then redis.call('HDEL', h, ARGV[i])
  else redis.call('HSET', h, ARGV[i], ARGV[i + 1]) end
end
local app = redis.call('HGET', h, 'app_area')
local id = redis.call('HGET', h, 'packet_id')
local old = redis.call('HGET', h, 'state')
local new = ARGV[2]
if new == '' then new = old end
redis.call('HSET', h, 'state', new, 'updated_at', now)
local prefix = ns .. ':' .. app .. ':'
if old ~= new then redis.call('ZREM', prefix .. 'state:' .. old, id) end
redis.call('ZADD', prefix .. 'state:' .. new, now, id)
local terminal = new == 'applied' or new == 'quarantined' or new == 'acknowledged'
if terminal then
  redis.call('ZREM', prefix .. 'pending', id)
else
  redis.call('ZADD', prefix .. 'pending', 'NX', redis.call('HGET', h, 'listed_at'), id)
end
if new == 'quarantined' then
  redis.call('ZADD', prefix .. 'quarantine', now, id)
elseif new ~= 'acknowledged' then
  redis.call('ZREM', prefix .. 'quarantine', id)
end
if terminal and redis.call('HGET', h, 'result') ~= 'quarantined' then
  redis.call('EXPIRE', h, ttl)
  redis.call('EXPIRE', links, ttl)
else
  redis.call('PERSIST', h)
  redis.call('PERSIST', links)
end
return 1
"""

# KEYS: claim key. ARGV: old holder, new holder, ttl.
_REPLACE_CLAIM = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
  return 1
end
return 0
"""


class RedisLedger(Ledger):
    def __init__(
        self,
        client: redis.Redis,
        namespace: str = "pw",
        *,
        retention: float = 30 * 86400,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.ns = namespace
        self.retention = retention
        self.clock = clock
        self.locks = RedisLocks(client, namespace=namespace)
        self._record_listed = client.register_script(_RECORD_LISTED)
        self._update = client.register_script(_UPDATE)
        self._replace_claim = client.register_script(_REPLACE_CLAIM)

    @classmethod
    def from_url(cls, url: str, namespace: str = "pw", **options: Any) -> RedisLedger:
        return cls(redis.Redis.from_url(url, decode_responses=True), namespace, **options)

    def _packet(self, packet_id: str) -> str:
        return f"{self.ns}:packet:{packet_id}"

    def _links(self, packet_id: str) -> str:
        return f"{self.ns}:links:{packet_id}"

    def _key(self, app_area: str, *parts: str) -> str:
        return ":".join((self.ns, app_area, *parts))

    def get(self, packet_id: str) -> PacketEntry | None:
        raw = self.client.hgetall(self._packet(packet_id))
        return PacketEntry.from_fields(raw) if raw else None

    def record_listed(self, entry: PacketEntry) -> tuple[PacketEntry, bool]:
        fields = entry.to_fields()
        listing = [(k, fields.pop(k)) for k in LISTING_FIELDS]
        for k in ("state", "listed_at", "updated_at"):
            fields.pop(k)
        args: list[str] = [self.ns, repr(self.clock()), str(len(listing))]
        for k, v in [*listing, *fields.items()]:
            args += [k, v]
        created = bool(self._record_listed(keys=[self._packet(entry.packet_id)], args=args))
        stored = self.get(entry.packet_id)
        assert stored is not None
        return stored, created

    def update(
        self, packet_id: str, *, state: PacketState | None = None, **fields: Any
    ) -> PacketEntry:
        args: list[str] = [self.ns, state or "", repr(self.clock()), str(int(self.retention))]
        for k, v in _clean(fields).items():
            args += [k, v]
        keys = [self._packet(packet_id), self._links(packet_id)]
        if not self._update(keys=keys, args=args):
            raise KeyError(packet_id)
        stored = self.get(packet_id)
        if stored is None:  # expired in between; only possible with a zero retention
            raise KeyError(packet_id)
        return stored

    def claim_content(self, app_area: str, sha256: str, packet_id: str) -> str:
        key = self._key(app_area, "content", sha256)
        # SET NX GET returns the previous holder, or None when we just set it.
        holder = self.client.set(key, packet_id, nx=True, get=True, ex=int(self.retention))
        return holder if holder is not None else packet_id

    def replace_claim(self, app_area: str, sha256: str, *, old: str, new: str) -> bool:
        key = self._key(app_area, "content", sha256)
        return bool(self._replace_claim(keys=[key], args=[old, new, int(self.retention)]))

    def queue_ack(self, app_area: str, list_type: str, packet_id: str) -> None:
        self.client.sadd(self._key(app_area, "acks", list_type), packet_id)

    def pending_acks(self, app_area: str, list_type: str) -> list[str]:
        return sorted(self.client.smembers(self._key(app_area, "acks", list_type)))

    def mark_acknowledged(self, app_area: str, list_type: str, packet_ids: Sequence[str]) -> None:
        if not packet_ids:
            return
        for packet_id in packet_ids:
            entry = self.get(packet_id)
            # Only a finished packet becomes acknowledged: one re-driven from the quarantine
            # since its ack was queued keeps its state. A missing one has expired.
            if entry is not None and entry.terminal:
                with contextlib.suppress(KeyError):
                    self.update(packet_id, state=PacketState.ACKNOWLEDGED)
        self.client.srem(self._key(app_area, "acks", list_type), *packet_ids)

    def links(self, packet_id: str, keys: Iterable[str]) -> dict[str, str]:
        keys = list(keys)
        if not keys:
            return {}
        values = self.client.hmget(self._links(packet_id), keys)
        return {k: v for k, v in zip(keys, values, strict=True) if v is not None}

    def add_links(self, packet_id: str, links: Mapping[str, str]) -> None:
        if links:
            self.client.hset(self._links(packet_id), mapping=dict(links))

    def ids(self, app_area: str, state: PacketState) -> list[str]:
        return self.client.zrange(self._key(app_area, "state", state), 0, -1)

    def stale(self, app_area: str, *, before: float) -> list[str]:
        with self.client.pipeline(transaction=False) as pipe:
            for state in sorted(PENDING):
                pipe.zrangebyscore(self._key(app_area, "state", state), "-inf", f"({before!r}")
            return [i for ids in pipe.execute() for i in ids]

    def counts(self, app_area: str) -> dict[str, int]:
        with self.client.pipeline(transaction=False) as pipe:
            for state in PacketState:
                pipe.zcard(self._key(app_area, "state", state))
            return dict(zip([str(s) for s in PacketState], pipe.execute(), strict=True))

    def oldest_pending(self, app_area: str) -> float | None:
        oldest = self.client.zrange(self._key(app_area, "pending"), 0, 0, withscores=True)
        return oldest[0][1] if oldest else None

    def quarantine(self, app_area: str) -> list[str]:
        return self.client.zrange(self._key(app_area, "quarantine"), 0, -1)

    def app_areas(self) -> list[str]:
        return sorted(self.client.smembers(f"{self.ns}:apps"))

    def prune(self, app_area: str) -> int:
        cutoff = self.clock() - self.retention
        removed = 0
        for state in (PacketState.APPLIED, PacketState.ACKNOWLEDGED):
            key = self._key(app_area, "state", state)
            for packet_id in self.client.zrangebyscore(key, "-inf", f"({cutoff!r}"):
                if not self.client.exists(self._packet(packet_id)):
                    removed += self.client.zrem(key, packet_id)
        return removed

    def close(self) -> None:
        self.client.close()


# --- Memory --------------------------------------------------------------------------------


class MemoryLedger(Ledger):
    """The same behaviour in one process: replay without Redis, and unit tests."""

    def __init__(
        self, *, retention: float = 30 * 86400, clock: Callable[[], float] = time.time
    ) -> None:
        self.retention = retention
        self.clock = clock
        self.locks = MemoryLocks(clock=clock)
        self._mutex = threading.RLock()
        self._packets: dict[str, PacketEntry] = {}
        self._expires: dict[str, float] = {}
        self._links: dict[str, dict[str, str]] = {}
        self._claims: dict[tuple[str, str], tuple[str, float]] = {}
        self._acks: dict[tuple[str, str], set[str]] = {}
        self._quarantine: dict[str, dict[str, float]] = {}

    def _live(self, packet_id: str) -> PacketEntry | None:
        expires = self._expires.get(packet_id)
        if expires is not None and expires <= self.clock():
            self._packets.pop(packet_id, None)
            self._links.pop(packet_id, None)
            self._expires.pop(packet_id, None)
        return self._packets.get(packet_id)

    def get(self, packet_id: str) -> PacketEntry | None:
        with self._mutex:
            entry = self._live(packet_id)
            return dataclasses.replace(entry) if entry else None

    def record_listed(self, entry: PacketEntry) -> tuple[PacketEntry, bool]:
        with self._mutex:
            stored = self._live(entry.packet_id)
            if stored is not None:
                for name in LISTING_FIELDS:
                    if (value := getattr(entry, name)) is not None:
                        setattr(stored, name, value)
                return dataclasses.replace(stored), False
            now = self.clock()
            stored = dataclasses.replace(
                entry, state=PacketState.LISTED, listed_at=now, updated_at=now
            )
            self._packets[entry.packet_id] = stored
            return dataclasses.replace(stored), True

    def update(
        self, packet_id: str, *, state: PacketState | None = None, **fields: Any
    ) -> PacketEntry:
        _clean(fields)
        with self._mutex:
            stored = self._live(packet_id)
            if stored is None:
                raise KeyError(packet_id)
            for name, value in fields.items():
                setattr(stored, name, None if value == "" else value)
            if state is not None:
                stored.state = PacketState(state)
            stored.updated_at = self.clock()
            quarantine = self._quarantine.setdefault(stored.app_area, {})
            if stored.state is PacketState.QUARANTINED:
                quarantine[packet_id] = stored.updated_at
            elif stored.state is not PacketState.ACKNOWLEDGED:
                quarantine.pop(packet_id, None)
            if stored.terminal and stored.result != "quarantined":
                self._expires[packet_id] = stored.updated_at + self.retention
            else:
                self._expires.pop(packet_id, None)
            return dataclasses.replace(stored)

    def claim_content(self, app_area: str, sha256: str, packet_id: str) -> str:
        with self._mutex:
            claim = self._claims.get((app_area, sha256))
            if claim is not None and claim[1] > self.clock():
                return claim[0]
            self._claims[(app_area, sha256)] = (packet_id, self.clock() + self.retention)
            return packet_id

    def replace_claim(self, app_area: str, sha256: str, *, old: str, new: str) -> bool:
        with self._mutex:
            if self.claim_content(app_area, sha256, new) == new:
                return True
            if self._claims[(app_area, sha256)][0] != old:
                return False
            self._claims[(app_area, sha256)] = (new, self.clock() + self.retention)
            return True

    def queue_ack(self, app_area: str, list_type: str, packet_id: str) -> None:
        with self._mutex:
            self._acks.setdefault((app_area, list_type), set()).add(packet_id)

    def pending_acks(self, app_area: str, list_type: str) -> list[str]:
        with self._mutex:
            return sorted(self._acks.get((app_area, list_type), ()))

    def mark_acknowledged(self, app_area: str, list_type: str, packet_ids: Sequence[str]) -> None:
        with self._mutex:
            for packet_id in packet_ids:
                entry = self._live(packet_id)
                if entry is not None and entry.terminal:
                    self.update(packet_id, state=PacketState.ACKNOWLEDGED)
            self._acks.get((app_area, list_type), set()).difference_update(packet_ids)

    def links(self, packet_id: str, keys: Iterable[str]) -> dict[str, str]:
        with self._mutex:
            self._live(packet_id)
            known = self._links.get(packet_id, {})
            return {k: known[k] for k in keys if k in known}

    def add_links(self, packet_id: str, links: Mapping[str, str]) -> None:
        with self._mutex:
            self._links.setdefault(packet_id, {}).update(links)

    def _in_area(self, app_area: str) -> list[PacketEntry]:
        for packet_id in list(self._packets):
            self._live(packet_id)
        return [e for e in self._packets.values() if e.app_area == app_area]

    def ids(self, app_area: str, state: PacketState) -> list[str]:
        with self._mutex:
            entries = [e for e in self._in_area(app_area) if e.state == state]
            return [e.packet_id for e in sorted(entries, key=lambda e: e.updated_at)]

    def stale(self, app_area: str, *, before: float) -> list[str]:
        with self._mutex:
            return [
                e.packet_id
                for e in self._in_area(app_area)
                if e.state in PENDING and e.updated_at < before
            ]

    def counts(self, app_area: str) -> dict[str, int]:
        with self._mutex:
            counts = {str(s): 0 for s in PacketState}
            for e in self._in_area(app_area):
                counts[e.state] += 1
            return counts

    def oldest_pending(self, app_area: str) -> float | None:
        with self._mutex:
            pending = [e.listed_at for e in self._in_area(app_area) if e.state in PENDING]
            return min(pending, default=None)

    def quarantine(self, app_area: str) -> list[str]:
        with self._mutex:
            items = self._quarantine.get(app_area, {})
            return sorted(items, key=items.__getitem__)

    def app_areas(self) -> list[str]:
        with self._mutex:
            return sorted({e.app_area for e in self._packets.values()})

    def prune(self, app_area: str) -> int:
        with self._mutex:
            before = len(self._packets)
            self._in_area(app_area)
            return before - len(self._packets)
