"""What the outbound side remembers between runs: watermarks, subscriptions, counters.

- Watermark per mobile user and packet table: the largest `lastModifiedDateTime` of a record
  that reached that user; the next incremental push asks BC for records changed after it. It
  moves only after the upload succeeded, so a failed push is repeated whole, never skipped.
- Poll mark per BC resource: the same for document resources polled instead of webhooked.
  Beside each mark, the ids of the records sent at exactly that instant: reads ask for
  `ge` the mark (a change in the same millisecond is not missed) and skip those ids.
- Sent index per mobile user and packet table: record id → its key fields, for every record
  the user holds. A `deleted` notification or a complete push that no longer finds a record
  turns it into a `delete` record for the device (pending deletions wait for the next push).
- Stock per mobile user: item id → the inventory last sent (the stock refresh sends changes).
- Subscription per BC resource: id, etag and expiry of the webhook, or `polling` when BC
  refused it; `catch_up` while a poll must backfill a gap before notifications are trusted.
- A per-user push lock: one push at a time builds and uploads a user's packet.
- A short-lived "push queued" claim per user, so a burst of webhooks queues one push, not many.
- Event counters for `/metrics`.

Two backends with the same behaviour: `RedisOutboundState` (keys under `<namespace>:outbound:`)
and `MemoryOutboundState` for tests and one-off CLI runs.
"""

from __future__ import annotations

import dataclasses
import secrets
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

import redis


@dataclass(frozen=True, slots=True)
class SubscriptionRecord:
    resource: str
    mode: Literal["webhook", "polling"]
    subscription_id: str = ""
    etag: str = ""
    expires: str = ""
    detail: str = ""
    catch_up: str = ""  # "1": poll from the mark before trusting notifications again

    def to_fields(self) -> dict[str, str]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_fields(cls, raw: Mapping[str, str]) -> SubscriptionRecord:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in names})


class OutboundState(ABC):
    @abstractmethod
    def watermarks(self, user: str) -> dict[str, str]:
        """Table name → watermark for `user` ({} before the first successful push)."""

    @abstractmethod
    def set_watermarks(self, user: str, marks: Mapping[str, str]) -> None: ...

    @abstractmethod
    def poll_mark(self, resource: str) -> str | None: ...

    @abstractmethod
    def set_poll_mark(self, resource: str, mark: str) -> None: ...

    @abstractmethod
    def subscription(self, resource: str) -> SubscriptionRecord | None: ...

    @abstractmethod
    def subscriptions(self) -> list[SubscriptionRecord]: ...

    @abstractmethod
    def put_subscription(self, record: SubscriptionRecord) -> None: ...

    @abstractmethod
    def claim_push(self, user: str, *, ttl: float) -> bool:
        """True if no push for `user` is queued yet (and now one is, for `ttl` seconds)."""

    @abstractmethod
    def release_push(self, user: str) -> None:
        """A push started: changes from now on need a new one."""

    @abstractmethod
    def count(self, event: str, amount: int = 1) -> None: ...

    @abstractmethod
    def counters(self) -> dict[str, int]: ...

    @abstractmethod
    def ping(self) -> bool: ...

    @abstractmethod
    def lock_push(self, user: str, *, ttl: float) -> str | None:
        """A token if no other push for `user` runs (now this one does, for `ttl` s)."""

    @abstractmethod
    def unlock_push(self, user: str, token: str) -> None:
        """Release the lock `token` holds (a no-op once it expired and another took it)."""

    # --- hashes: the backends store them, the methods below name them --------------------

    @abstractmethod
    def _hgetall(self, *key: str) -> dict[str, str]: ...

    @abstractmethod
    def _hget(self, field: str, *key: str) -> str | None: ...

    @abstractmethod
    def _hset(self, mapping: Mapping[str, str], *key: str) -> None: ...

    @abstractmethod
    def _hdel(self, fields: Iterable[str], *key: str) -> None: ...

    def watermark_ids(self, user: str) -> dict[str, set[str]]:
        """Table name → ids of the records sent at exactly its watermark."""
        return {t: _split(v) for t, v in self._hgetall("watermark-ids", user).items()}

    def set_watermark_ids(self, user: str, ids: Mapping[str, Iterable[str]]) -> None:
        self._hset({t: ",".join(sorted(v)) for t, v in ids.items()}, "watermark-ids", user)

    def poll_ids(self, resource: str) -> set[str]:
        """Ids of the documents pushed at exactly the poll mark of `resource`."""
        return _split(self._hget(resource, "poll-ids") or "")

    def set_poll_ids(self, resource: str, ids: Iterable[str]) -> None:
        self._hset({resource: ",".join(sorted(ids))}, "poll-ids")

    def sent(self, user: str, table: str) -> dict[str, str]:
        """Record id → key fields (JSON) of every record of `table` that `user` holds."""
        return self._hgetall("sent", user, table)

    def sent_key(self, user: str, table: str, record_id: str) -> str | None:
        return self._hget(record_id, "sent", user, table)

    def record_sent(self, user: str, table: str, keys: Mapping[str, str]) -> None:
        if keys:
            self._hset(keys, "sent", user, table)

    def forget_sent(self, user: str, table: str, ids: Iterable[str]) -> None:
        self._hdel(ids, "sent", user, table)

    def deletions(self, user: str, table: str) -> dict[str, str]:
        """Record id → key fields (JSON) of deletions waiting for `user`'s next push."""
        return self._hgetall("deletions", user, table)

    def add_deletions(self, user: str, table: str, keys: Mapping[str, str]) -> None:
        if keys:
            self._hset(keys, "deletions", user, table)

    def clear_deletions(self, user: str, table: str, ids: Iterable[str]) -> None:
        self._hdel(ids, "deletions", user, table)

    def stock(self, user: str) -> dict[str, str]:
        """Item id → the inventory last sent to `user`."""
        return self._hgetall("stock", user)

    def record_stock(self, user: str, values: Mapping[str, str]) -> None:
        if values:
            self._hset(values, "stock", user)

    def close(self) -> None:  # noqa: B027 - optional hook
        pass


class RedisOutboundState(OutboundState):
    def __init__(self, client: redis.Redis, namespace: str) -> None:
        self.client = client
        self.prefix = f"{namespace}:outbound"

    def _k(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    def watermarks(self, user: str) -> dict[str, str]:
        return _text(self.client.hgetall(self._k("watermark", user)))

    def set_watermarks(self, user: str, marks: Mapping[str, str]) -> None:
        if marks:
            self.client.hset(self._k("watermark", user), mapping=dict(marks))

    def poll_mark(self, resource: str) -> str | None:
        value = self.client.hget(self._k("poll-mark"), resource)
        return value.decode() if isinstance(value, bytes) else value

    def set_poll_mark(self, resource: str, mark: str) -> None:
        self.client.hset(self._k("poll-mark"), resource, mark)

    def subscription(self, resource: str) -> SubscriptionRecord | None:
        raw = _text(self.client.hgetall(self._k("subscription", resource)))
        return SubscriptionRecord.from_fields(raw) if raw else None

    def subscriptions(self) -> list[SubscriptionRecord]:
        resources = sorted(_text_set(self.client.smembers(self._k("subscriptions"))))
        return [r for r in map(self.subscription, resources) if r is not None]

    def put_subscription(self, record: SubscriptionRecord) -> None:
        with self.client.pipeline() as pipe:
            pipe.hset(self._k("subscription", record.resource), mapping=record.to_fields())
            pipe.sadd(self._k("subscriptions"), record.resource)
            pipe.execute()

    def claim_push(self, user: str, *, ttl: float) -> bool:
        ms = max(1, int(ttl * 1000))
        return bool(self.client.set(self._k("push-queued", user), "1", nx=True, px=ms))

    def release_push(self, user: str) -> None:
        self.client.delete(self._k("push-queued", user))

    def count(self, event: str, amount: int = 1) -> None:
        self.client.hincrby(self._k("counters"), event, amount)

    def counters(self) -> dict[str, int]:
        return {k: int(v) for k, v in _text(self.client.hgetall(self._k("counters"))).items()}

    def ping(self) -> bool:
        try:
            return bool(self.client.ping())
        except (redis.RedisError, OSError):
            return False

    def lock_push(self, user: str, *, ttl: float) -> str | None:
        token = secrets.token_hex(8)
        ms = max(1, int(ttl * 1000))
        return token if self.client.set(self._k("push-lock", user), token, nx=True, px=ms) else None

    def unlock_push(self, user: str, token: str) -> None:
        self.client.eval(_UNLOCK, 1, self._k("push-lock", user), token)

    def _hgetall(self, *key: str) -> dict[str, str]:
        return _text(self.client.hgetall(self._k(*key)))

    def _hget(self, field: str, *key: str) -> str | None:
        value = self.client.hget(self._k(*key), field)
        return value.decode() if isinstance(value, bytes) else value

    def _hset(self, mapping: Mapping[str, str], *key: str) -> None:
        if mapping:
            self.client.hset(self._k(*key), mapping=dict(mapping))

    def _hdel(self, fields: Iterable[str], *key: str) -> None:
        fields = list(fields)
        for start in range(0, len(fields), 1000):
            self.client.hdel(self._k(*key), *fields[start : start + 1000])

    def close(self) -> None:
        self.client.close()


# Delete the lock only while it still holds our token.
_UNLOCK = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


class MemoryOutboundState(OutboundState):
    def __init__(self, *, clock=time.monotonic) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._marks: dict[str, dict[str, str]] = {}
        self._poll: dict[str, str] = {}
        self._subs: dict[str, SubscriptionRecord] = {}
        self._claims: dict[str, float] = {}
        self._counters: dict[str, int] = {}
        self._hashes: dict[tuple[str, ...], dict[str, str]] = {}
        self._locks: dict[str, tuple[str, float]] = {}

    def watermarks(self, user: str) -> dict[str, str]:
        with self._lock:
            return dict(self._marks.get(user, {}))

    def set_watermarks(self, user: str, marks: Mapping[str, str]) -> None:
        with self._lock:
            self._marks.setdefault(user, {}).update(marks)

    def poll_mark(self, resource: str) -> str | None:
        with self._lock:
            return self._poll.get(resource)

    def set_poll_mark(self, resource: str, mark: str) -> None:
        with self._lock:
            self._poll[resource] = mark

    def subscription(self, resource: str) -> SubscriptionRecord | None:
        with self._lock:
            return self._subs.get(resource)

    def subscriptions(self) -> list[SubscriptionRecord]:
        with self._lock:
            return [self._subs[k] for k in sorted(self._subs)]

    def put_subscription(self, record: SubscriptionRecord) -> None:
        with self._lock:
            self._subs[record.resource] = record

    def claim_push(self, user: str, *, ttl: float) -> bool:
        with self._lock:
            now = self._clock()
            if self._claims.get(user, 0.0) > now:
                return False
            self._claims[user] = now + ttl
            return True

    def release_push(self, user: str) -> None:
        with self._lock:
            self._claims.pop(user, None)

    def count(self, event: str, amount: int = 1) -> None:
        with self._lock:
            self._counters[event] = self._counters.get(event, 0) + amount

    def counters(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counters)

    def ping(self) -> bool:
        return True

    def lock_push(self, user: str, *, ttl: float) -> str | None:
        with self._lock:
            now = self._clock()
            held = self._locks.get(user)
            if held is not None and held[1] > now:
                return None
            token = secrets.token_hex(8)
            self._locks[user] = (token, now + ttl)
            return token

    def unlock_push(self, user: str, token: str) -> None:
        with self._lock:
            if self._locks.get(user, ("", 0.0))[0] == token:
                del self._locks[user]

    def _hgetall(self, *key: str) -> dict[str, str]:
        with self._lock:
            return dict(self._hashes.get(key, {}))

    def _hget(self, field: str, *key: str) -> str | None:
        with self._lock:
            return self._hashes.get(key, {}).get(field)

    def _hset(self, mapping: Mapping[str, str], *key: str) -> None:
        with self._lock:
            self._hashes.setdefault(key, {}).update(mapping)

    def _hdel(self, fields: Iterable[str], *key: str) -> None:
        with self._lock:
            table = self._hashes.get(key, {})
            for name in fields:
                table.pop(name, None)


def _text(raw: Mapping) -> dict[str, str]:
    return {
        (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
        for k, v in raw.items()
    }


def _split(text: str) -> set[str]:
    return {part for part in text.split(",") if part}


def _text_set(raw) -> set[str]:
    return {v.decode() if isinstance(v, bytes) else v for v in raw}
