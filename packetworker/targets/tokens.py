"""Where a delegated set-up keeps its OAuth refresh token: one record per app and tenant.

Entra answers every refresh with a new refresh token that is to replace the old one
(business-central.md §1.3.1), so the token lives in Redis, shared by every worker process,
and each rotation replaces it atomically (compare-and-set on the token it replaces). Refreshes
of one record are serialised across processes by a lock, so two workers never spend the same
refresh token. The record also says how the token was obtained (`packetworker bc login`, or
the `BC_REFRESH_TOKEN` setting) and when it was last refreshed, for `packetworker check`.

The token is a secret: it is never logged, and `StoredToken`'s repr leaves it out.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Literal, Protocol

import redis

Origin = Literal["login", "setting"]
ORIGINS: dict[str, str] = {
    "login": "signed in with `packetworker bc login` (authorization code)",
    "setting": "from the BC_REFRESH_TOKEN setting",
}
# A refresh is one token request (seconds); the lock outlives a slow one, then expires.
LOCK_SECONDS = 60.0


def utcnow() -> datetime:
    return datetime.now(UTC)


def digest(token: str) -> str:
    """A fingerprint of a token (to notice a changed setting without storing it twice)."""
    return hashlib.sha256(token.encode()).hexdigest() if token else ""


@dataclass(frozen=True)
class StoredToken:
    """A refresh token and its history."""

    refresh_token: str = field(repr=False)
    origin: Origin
    obtained_at: datetime
    refreshed_at: datetime | None = None
    rotations: int = 0
    setting_digest: str = field(default="", repr=False)  # BC_REFRESH_TOKEN when stored

    def describe(self) -> str:
        """`signed in with … on 2026-07-01 10:00 UTC; last refreshed …` (no secret)."""
        when = _when(self.obtained_at)
        text = f"{ORIGINS.get(self.origin, self.origin)} on {when}"
        refreshed = f"last refreshed {_when(self.refreshed_at)}" if self.refreshed_at else ""
        return f"{text}; {refreshed or 'not refreshed yet'}"


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


class TokenStore(Protocol):
    """Persistence of one refresh token (see the module docstring)."""

    name: str

    def load(self) -> StoredToken | None: ...

    def save(self, token: StoredToken) -> None:
        """Replace whatever is stored (a new sign-in, or a changed setting)."""

    def rotate(self, old: str, new: str) -> bool:
        """Replace `old` by `new` if `old` is still the stored token; False otherwise."""

    def lock(self) -> AbstractContextManager[None]:
        """Held while refreshing, so one process at a time spends the token."""


class MemoryTokenStore:
    """A process-local store: tests, and set-ups without Redis (rotations then last only as
    long as the process)."""

    def __init__(self, name: str = "memory", *, clock: Callable[[], datetime] = utcnow) -> None:
        self.name = name
        self._clock = clock
        self._token: StoredToken | None = None
        self._guard = threading.Lock()
        self._refresh = threading.Lock()

    def load(self) -> StoredToken | None:
        with self._guard:
            return self._token

    def save(self, token: StoredToken) -> None:
        with self._guard:
            self._token = token

    def rotate(self, old: str, new: str) -> bool:
        with self._guard:
            if self._token is None or self._token.refresh_token != old:
                return False
            self._token = replace(
                self._token,
                refresh_token=new,
                refreshed_at=self._clock(),
                rotations=self._token.rotations + 1,
            )
            return True

    @contextmanager
    def lock(self) -> Iterator[None]:
        with self._refresh:
            yield


# KEYS[1] = the record; ARGV = old token, new token, refreshed_at (ISO).
_ROTATE = """
if redis.call('HGET', KEYS[1], 'refresh_token') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'refresh_token', ARGV[2], 'refreshed_at', ARGV[3])
redis.call('HINCRBY', KEYS[1], 'rotations', 1)
return 1
"""


class RedisTokenStore:
    """The record `<namespace>:oauth:<name>` (a hash), shared by every process."""

    def __init__(
        self,
        client: redis.Redis,
        namespace: str,
        name: str,
        *,
        clock: Callable[[], datetime] = utcnow,
        lock_seconds: float = LOCK_SECONDS,
    ) -> None:
        self.name = name
        self.key = f"{namespace}:oauth:{name}"
        self._redis = client
        self._clock = clock
        self._lock_seconds = lock_seconds
        self._rotate = client.register_script(_ROTATE)

    def load(self) -> StoredToken | None:
        row = {_text(k): _text(v) for k, v in self._redis.hgetall(self.key).items()}
        if not row.get("refresh_token"):
            return None
        refreshed = row.get("refreshed_at")
        return StoredToken(
            refresh_token=row["refresh_token"],
            origin=row.get("origin", "login"),  # type: ignore[arg-type]
            obtained_at=datetime.fromisoformat(row["obtained_at"]),
            refreshed_at=datetime.fromisoformat(refreshed) if refreshed else None,
            rotations=int(row.get("rotations", 0)),
            setting_digest=row.get("setting_digest", ""),
        )

    def save(self, token: StoredToken) -> None:
        row = {
            "refresh_token": token.refresh_token,
            "origin": token.origin,
            "obtained_at": token.obtained_at.isoformat(),
            "rotations": token.rotations,
            "setting_digest": token.setting_digest,
        }
        if token.refreshed_at is not None:
            row["refreshed_at"] = token.refreshed_at.isoformat()
        with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(self.key)
            pipe.hset(self.key, mapping=row)
            pipe.execute()

    def rotate(self, old: str, new: str) -> bool:
        return bool(self._rotate(keys=[self.key], args=[old, new, self._clock().isoformat()]))

    @contextmanager
    def lock(self) -> Iterator[None]:
        lock = self._redis.lock(
            f"{self.key}:refreshing",
            timeout=self._lock_seconds,
            blocking_timeout=self._lock_seconds,
        )
        if not lock.acquire():
            raise TimeoutError(f"another process has been refreshing {self.name} too long")
        try:
            yield
        finally:
            # It may have expired meanwhile; the compare-and-set kept the record consistent.
            with suppress(redis.exceptions.LockError):
                lock.release()


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
