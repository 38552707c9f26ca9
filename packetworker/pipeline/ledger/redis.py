"""`RedisLedger`: hashes, sorted sets and sets, with small Lua scripts where an update and
its index moves must be atomic (several workers share one Redis)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import redis

from packetworker.pipeline.ledger.base import (
    ACTIVE,
    LISTING_FIELDS,
    MAX_EVENTS,
    Ledger,
    PacketEntry,
    PacketEvent,
    PacketState,
    clean_fields,
)
from packetworker.pipeline.locks import RedisLocks
from packetworker.redis_client import redis_from_url
from packetworker.targets.base import PendingWrite

# Each script writes one transition in as few commands as Redis allows (every command a
# script runs counts, issue 12 §4): one HGETALL reads the packet (and is merged with what
# the script writes into the answer, so nothing is read twice), one HSET writes all its
# fields, and an index is touched only when what it indexes changes. The timeline is trimmed
# only when it has grown past its length; expiry is set or lifted only when it applies.

# Lua helpers shared by the scripts: a hash's HGETALL answer as a table, and back.
_HELPERS = """
local function fields_of(reply)
  local t = {}
  for i = 1, #reply, 2 do t[reply[i]] = reply[i + 1] end
  return t
end
local function flat(t)
  local out = {}
  for k, v in pairs(t) do
    out[#out + 1] = k
    out[#out + 1] = v
  end
  return out
end
local function is_terminal(state)
  return state == 'applied' or state == 'quarantined' or state == 'acknowledged'
end
"""

# KEYS: packet hash, events list. ARGV: ns, now, number of listing pairs, then field/value
# pairs (listing pairs first). '' values are skipped. Returns {created (0|1), the stored
# hash's field/value pairs...}, so a listing costs one round trip. A known packet costs an
# HGETALL and at most one HSET; a new one adds its index entries and its first step.
_RECORD_LISTED = (
    _HELPERS
    + """
local h, events = KEYS[1], KEYS[2]
local ns, now, nlisting = ARGV[1], ARGV[2], tonumber(ARGV[3])
local cur = fields_of(redis.call('HGETALL', h))
local exists = next(cur) ~= nil
local last = #ARGV
if exists then last = 3 + 2 * nlisting end
local set = {}
if not exists then
  set = {'state', 'listed', 'listed_at', now, 'updated_at', now}
  cur['state'], cur['listed_at'], cur['updated_at'] = 'listed', now, now
end
for i = 4, last, 2 do
  if ARGV[i + 1] ~= '' then
    set[#set + 1] = ARGV[i]
    set[#set + 1] = ARGV[i + 1]
    cur[ARGV[i]] = ARGV[i + 1]
  end
end
if #set > 0 then redis.call('HSET', h, unpack(set)) end
if exists then
  local out = flat(cur)
  table.insert(out, 1, 0)
  return out
end
local app, id = cur['app_area'], cur['packet_id']
local prefix = ns .. ':' .. app .. ':'
redis.call('ZADD', prefix .. 'state:listed', now, id)
redis.call('ZADD', prefix .. 'pending', now, id)
redis.call('SADD', ns .. ':apps', app)
-- The timeline starts here; a leftover of an earlier life of the id is cut to this step.
local step = cjson.encode({event = 'listed', at = tonumber(now), attempt = 0})
if redis.call('RPUSH', events, step) > 1 then redis.call('LTRIM', events, -1, -1) end
local out = flat(cur)
table.insert(out, 1, 1)
return out
"""
)

# KEYS: packet hash, links hash, events list. ARGV: ns, new state or '', now, ttl, '1' to
# update only a terminal packet (else ''), field/value pairs ('' deletes the field). Returns
# 0 for an unknown packet, 1 when the packet was not terminal (with '1'), else the updated
# hash's field/value pairs, read before it may expire, so an update costs one round trip.
# A pseudo-field `_note` is no field: it is the detail of the update's timeline step. A
# state change (or a new error) is appended to the packet's timeline, and the packet moves
# between the `result:<result>` indexes, in the same atomic step.
_UPDATE = (
    _HELPERS
    + """
local h, links, events = KEYS[1], KEYS[2], KEYS[3]
local cur = fields_of(redis.call('HGETALL', h))
if next(cur) == nil then return 0 end
local ns, now, ttl = ARGV[1], ARGV[3], tonumber(ARGV[4])
local old, old_result = cur['state'], cur['result'] or ''
if ARGV[5] == '1' and not is_terminal(old) then return 1 end
-- Finished and not quarantined: its keys carry the retention's expiry.
local expiring = is_terminal(old) and old_result ~= 'quarantined'
local new = ARGV[2]
if new == '' then new = old end
local set, gone, err, note = {}, {}, nil, nil
for i = 6, #ARGV, 2 do
  local k, v = ARGV[i], ARGV[i + 1]
  if k == '_note' then note = v
  elseif v == '' then
    gone[#gone + 1] = k
    cur[k] = nil
  else
    set[#set + 1] = k
    set[#set + 1] = v
    cur[k] = v
    if k == 'last_error' then err = v end
  end
end
if #gone > 0 then redis.call('HDEL', h, unpack(gone)) end
set[#set + 1], set[#set + 2], set[#set + 3], set[#set + 4] = 'state', new, 'updated_at', now
cur['state'], cur['updated_at'] = new, now
redis.call('HSET', h, unpack(set))
local id = cur['packet_id']
local prefix = ns .. ':' .. cur['app_area'] .. ':'
-- The state's index is scored by the last update (what `stale` reads): it moves always.
redis.call('ZADD', prefix .. 'state:' .. new, now, id)
local terminal = is_terminal(new)
if old ~= new then
  redis.call('ZREM', prefix .. 'state:' .. old, id)
  if terminal and not is_terminal(old) then
    redis.call('ZREM', prefix .. 'pending', id)
  elseif is_terminal(old) and not terminal then
    redis.call('ZADD', prefix .. 'pending', cur['listed_at'] or now, id)  -- pending again
  end
end
if new == 'quarantined' then
  redis.call('ZADD', prefix .. 'quarantine', now, id)
elseif new ~= 'acknowledged' and (old == 'quarantined' or old == 'acknowledged') then
  -- Re-driven: a quarantined packet stays listed there through its ack, until now.
  redis.call('ZREM', prefix .. 'quarantine', id)
end
local result = cur['result'] or ''
if result ~= old_result then
  if old_result ~= '' then redis.call('ZREM', prefix .. 'result:' .. old_result, id) end
  if result ~= '' then
    redis.call('ZADD', prefix .. 'result:' .. result, now, id)
    redis.call('SADD', prefix .. 'results', result)
  end
end
if old ~= new or err then
  local name = 'error'
  if old ~= new then name = new end
  if name == 'applied' and result == 'duplicate' then name = 'duplicate' end
  local step = {event = name, at = tonumber(now), attempt = tonumber(cur['attempts'] or '0') or 0}
  if err then step['detail'] = err elseif note then step['detail'] = note end
  if redis.call('RPUSH', events, cjson.encode(step)) > {max_events} then
    redis.call('LTRIM', events, -{max_events}, -1)
  end
end
-- A finished packet expires `retention` after its last write; a quarantined or unfinished
-- one never (and one that was expiring stops).
if terminal and result ~= 'quarantined' then
  redis.call('EXPIRE', h, ttl)
  redis.call('EXPIRE', links, ttl)
  redis.call('EXPIRE', events, ttl)
elseif expiring then
  redis.call('PERSIST', h)
  redis.call('PERSIST', links)
  redis.call('PERSIST', events)
end
return flat(cur)
"""
).replace("{max_events}", str(MAX_EVENTS))

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
        """A ledger on `url` with the factory's defaults (tools and tests; the pipeline
        builds its client from the settings, `PipelineContext.from_settings`)."""
        return cls(redis_from_url(url), namespace, **options)

    def _packet(self, packet_id: str) -> str:
        return f"{self.ns}:packet:{packet_id}"

    def _links(self, packet_id: str) -> str:
        return f"{self.ns}:links:{packet_id}"

    def _events(self, packet_id: str) -> str:
        return f"{self.ns}:events:{packet_id}"

    def _doubts(self, packet_id: str) -> str:
        return f"{self.ns}:doubt:{packet_id}"

    def _key(self, app_area: str, *parts: str) -> str:
        return ":".join((self.ns, app_area, *parts))

    def get(self, packet_id: str) -> PacketEntry | None:
        raw = self.client.hgetall(self._packet(packet_id))
        return PacketEntry.from_fields(raw) if raw else None

    def get_many(self, packet_ids: Sequence[str]) -> dict[str, PacketEntry]:
        """One round trip for all of them (a pipeline)."""
        if not packet_ids:
            return {}
        with self.client.pipeline(transaction=False) as pipe:
            for packet_id in packet_ids:
                pipe.hgetall(self._packet(packet_id))
            raws = pipe.execute()
        return {
            packet_id: PacketEntry.from_fields(raw)
            for packet_id, raw in zip(packet_ids, raws, strict=True)
            if raw
        }

    def _listed_call(self, entry: PacketEntry) -> tuple[list[str], list[str]]:
        fields = entry.to_fields()
        listing = [(k, fields.pop(k)) for k in LISTING_FIELDS]
        for k in ("state", "listed_at", "updated_at"):
            fields.pop(k)
        args: list[str] = [self.ns, repr(self.clock()), str(len(listing))]
        for k, v in [*listing, *fields.items()]:
            args += [k, v]
        return [self._packet(entry.packet_id), self._events(entry.packet_id)], args

    @staticmethod
    def _listed_reply(reply: list[Any]) -> tuple[PacketEntry, bool]:
        created, *flat = reply
        return PacketEntry.from_fields(_pairs(flat)), bool(created)

    def record_listed(self, entry: PacketEntry) -> tuple[PacketEntry, bool]:
        keys, args = self._listed_call(entry)
        return self._listed_reply(self._record_listed(keys=keys, args=args))

    def record_listed_many(self, entries: Sequence[PacketEntry]) -> list[tuple[PacketEntry, bool]]:
        """One round trip for a whole listing: the scripts run in order in a pipeline, each
        atomic by itself, exactly as if called one by one."""
        if not entries:
            return []
        with self.client.pipeline(transaction=False) as pipe:
            for entry in entries:
                keys, args = self._listed_call(entry)
                self._record_listed(keys=keys, args=args, client=pipe)
            return [self._listed_reply(reply) for reply in pipe.execute()]

    def _update_args(
        self,
        state: PacketState | str | None,
        fields: Mapping[str, Any],
        *,
        only_terminal: bool,
        note: str | None = None,
    ) -> list[str]:
        args: list[str] = [
            self.ns,
            state or "",
            repr(self.clock()),
            str(int(self.retention)),
            "1" if only_terminal else "",
        ]
        for k, v in clean_fields(fields).items():
            args += [k, v]
        if note:
            args += ["_note", note]
        return args

    def update(
        self,
        packet_id: str,
        *,
        state: PacketState | None = None,
        note: str | None = None,
        **fields: Any,
    ) -> PacketEntry:
        args = self._update_args(state, fields, only_terminal=False, note=note)
        keys = [self._packet(packet_id), self._links(packet_id), self._events(packet_id)]
        reply = self._update(keys=keys, args=args)
        if not reply:
            raise KeyError(packet_id)
        # The script answers with the updated hash (read before a terminal one may expire).
        return PacketEntry.from_fields(_pairs(reply))

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
        # One round trip: each update checks atomically that the packet is still finished
        # (one re-driven from the quarantine since its ack was queued keeps its state; a
        # missing one has expired), then the ids leave the ack queue.
        args = self._update_args(PacketState.ACKNOWLEDGED, {}, only_terminal=True)
        with self.client.pipeline(transaction=False) as pipe:
            for packet_id in packet_ids:
                keys = [self._packet(packet_id), self._links(packet_id), self._events(packet_id)]
                self._update(keys=keys, args=args, client=pipe)
            pipe.srem(self._key(app_area, "acks", list_type), *packet_ids)
            pipe.execute()

    def links(self, packet_id: str, keys: Iterable[str]) -> dict[str, str]:
        keys = list(keys)
        if not keys:
            return {}
        values = self.client.hmget(self._links(packet_id), keys)
        return {k: v for k, v in zip(keys, values, strict=True) if v is not None}

    def add_links(self, packet_id: str, links: Mapping[str, str]) -> None:
        if links:
            self.client.hset(self._links(packet_id), mapping=dict(links))

    def writes_in_doubt(self, packet_id: str) -> dict[str, PendingWrite]:
        raw = self.client.hgetall(self._doubts(packet_id))
        return {key: PendingWrite.from_json(key, text) for key, text in raw.items()}

    def record_in_doubt(self, packet_id: str, writes: Sequence[PendingWrite]) -> None:
        if not writes:
            return
        key = self._doubts(packet_id)
        # One transaction: the record and its expiry land together, before the write is sent.
        with self.client.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={w.key: w.to_json() for w in writes})
            pipe.expire(key, max(1, int(self.retention)))
            pipe.execute()

    def clear_in_doubt(self, packet_id: str, keys: Iterable[str]) -> None:
        keys = list(keys)
        if keys:
            self.client.hdel(self._doubts(packet_id), *keys)

    def target_refs(self, scope: str, keys: Sequence[str]) -> dict[str, str]:
        keys = list(keys)
        if not keys:
            return {}
        values = self.client.hmget(f"{self.ns}:target-refs:{scope}", keys)
        return {k: v for k, v in zip(keys, values, strict=True) if v}

    def add_target_refs(self, scope: str, refs: Mapping[str, str]) -> None:
        if refs:
            self.client.hset(f"{self.ns}:target-refs:{scope}", mapping=dict(refs))

    def ids(self, app_area: str, state: PacketState) -> list[str]:
        return self.client.zrange(self._key(app_area, "state", state), 0, -1)

    def stale(self, app_area: str, *, before: float) -> list[str]:
        with self.client.pipeline(transaction=False) as pipe:
            for state in sorted(ACTIVE):
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

    def result_counts(self, app_area: str) -> dict[str, int]:
        results = sorted(self.client.smembers(self._key(app_area, "results")))
        with self.client.pipeline(transaction=False) as pipe:
            for result in results:
                pipe.zcard(self._key(app_area, "result", result))
            return {r: n for r, n in zip(results, pipe.execute(), strict=True) if n}

    def events(self, packet_id: str) -> list[PacketEvent]:
        raw = self.client.lrange(self._events(packet_id), 0, -1)
        return [PacketEvent.from_json(text) for text in raw]

    def add_events(self, packet_id: str, events: Sequence[PacketEvent]) -> None:
        if not events:
            return
        key = self._events(packet_id)
        # Only for a known packet, so a late step cannot leave a timeline without an entry.
        if self.client.exists(self._packet(packet_id)):
            with self.client.pipeline(transaction=False) as pipe:
                pipe.rpush(key, *(e.to_json() for e in events))
                pipe.ltrim(key, -MAX_EVENTS, -1)
                pipe.execute()

    def note_poll(self, app_area: str, result: str) -> None:
        key = self._key(app_area, "last-poll")
        self.client.hset(key, mapping={"at": repr(self.clock()), "result": result[:500]})

    def last_poll(self, app_area: str) -> dict[str, Any] | None:
        raw = self.client.hgetall(self._key(app_area, "last-poll"))
        return {"at": float(raw["at"]), "result": raw.get("result", "")} if raw else None

    def all_links(self, packet_id: str) -> dict[str, str]:
        return self.client.hgetall(self._links(packet_id))

    def prune(self, app_area: str) -> int:
        cutoff = self.clock() - self.retention
        removed = 0
        for state in (PacketState.APPLIED, PacketState.ACKNOWLEDGED):
            removed += self._prune_index(self._key(app_area, "state", state), cutoff)
        for result in self.client.smembers(self._key(app_area, "results")):
            self._prune_index(self._key(app_area, "result", result), cutoff)
        return removed

    def _prune_index(self, key: str, cutoff: float) -> int:
        removed = 0
        for packet_id in self.client.zrangebyscore(key, "-inf", f"({cutoff!r}"):
            if not self.client.exists(self._packet(packet_id)):
                removed += self.client.zrem(key, packet_id)
        return removed

    def close(self) -> None:
        self.client.close()


def _pairs(flat: Sequence[str]) -> dict[str, str]:
    """A script's HGETALL answer (field, value, field, value...) as a dict."""
    return dict(zip(flat[::2], flat[1::2], strict=True))
