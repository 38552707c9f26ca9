"""Short-lived exclusive locks: one worker per packet, one poll per app area.

`try_lock` never waits: a held lock means another worker is already on it, and the caller
skips. Locks expire after `ttl` seconds so a killed worker cannot hold one forever; long
work calls `refresh()` to keep it, or runs inside `kept_alive`. A worker that stops with
work still in flight calls `release_all()`, so the next worker need not wait for the TTL.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import redis

logger = logging.getLogger(__name__)


class LockHandle(ABC):
    @abstractmethod
    def refresh(self) -> bool:
        """Restart the lock's time to live; False if it was lost (expired and taken)."""


class Locks(ABC):
    """Exclusive locks, each remembered from `acquire` to `release` so that `release_all`
    can free what work abandoned at shutdown still holds."""

    def __init__(self) -> None:
        self._held_by_us: dict[int, tuple[str, LockHandle]] = {}
        self._held_mutex = threading.Lock()

    def acquire(self, name: str, *, ttl: float) -> LockHandle | None:
        """Take `name` if free; None if someone else holds it."""
        handle = self._acquire(name, ttl=ttl)
        if handle is not None:
            with self._held_mutex:
                self._held_by_us[id(handle)] = (name, handle)
        return handle

    def release(self, handle: LockHandle) -> None:
        """Give `handle` back (a no-op when it expired or was released already)."""
        with self._held_mutex:
            self._held_by_us.pop(id(handle), None)
        self._release(handle)

    def release_all(self) -> list[str]:
        """Release every lock still held through this object; their names.

        For shutdown: work that outlived the grace period is abandoned with the process,
        and its locks would otherwise block the next worker until they expire."""
        with self._held_mutex:
            held, self._held_by_us = list(self._held_by_us.values()), {}
        for _, handle in held:
            self._release(handle)
        return sorted(name for name, _ in held)

    @abstractmethod
    def _acquire(self, name: str, *, ttl: float) -> LockHandle | None: ...

    @abstractmethod
    def _release(self, handle: LockHandle) -> None: ...

    @contextmanager
    def try_lock(self, name: str, *, ttl: float) -> Iterator[LockHandle | None]:
        """`with locks.try_lock(name, ttl=60) as held:` — `held` is None when busy."""
        handle = self.acquire(name, ttl=ttl)
        try:
            yield handle
        finally:
            if handle is not None:
                self.release(handle)


class _RedisHandle(LockHandle):
    def __init__(self, lock: redis.lock.Lock) -> None:
        self.lock = lock

    def refresh(self) -> bool:
        try:
            return bool(self.lock.reacquire())
        except redis.exceptions.LockError:
            return False


class RedisLocks(Locks):
    """redis-py's `Lock` (token-checked release and extend, done in Lua by redis-py)."""

    def __init__(self, client: redis.Redis, *, namespace: str = "pw") -> None:
        super().__init__()
        self.client = client
        self.namespace = namespace

    def _acquire(self, name: str, *, ttl: float) -> LockHandle | None:
        lock = self.client.lock(
            f"{self.namespace}:lock:{name}", timeout=ttl, blocking=False, thread_local=False
        )
        return _RedisHandle(lock) if lock.acquire() else None

    def _release(self, handle: LockHandle) -> None:
        assert isinstance(handle, _RedisHandle)
        # Expired and maybe taken by another worker: nothing of ours to release.
        with contextlib.suppress(redis.exceptions.LockError):
            handle.lock.release()


class _MemoryHandle(LockHandle):
    def __init__(self, locks: MemoryLocks, name: str, token: str, ttl: float) -> None:
        self.locks, self.name, self.token, self.ttl = locks, name, token, ttl

    def refresh(self) -> bool:
        with self.locks._mutex:
            held = self.locks._held.get(self.name)
            if held is None or held[0] != self.token:
                return False
            self.locks._held[self.name] = (self.token, self.locks.clock() + self.ttl)
            return True


class MemoryLocks(Locks):
    """In-process locks for the memory ledger (replay, unit tests)."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.clock = clock
        self._mutex = threading.Lock()
        self._held: dict[str, tuple[str, float]] = {}

    def _acquire(self, name: str, *, ttl: float) -> LockHandle | None:
        now = self.clock()
        with self._mutex:
            held = self._held.get(name)
            if held is not None and held[1] > now:
                return None
            token = uuid.uuid4().hex
            self._held[name] = (token, now + ttl)
            return _MemoryHandle(self, name, token, ttl)

    def _release(self, handle: LockHandle) -> None:
        assert isinstance(handle, _MemoryHandle)
        with self._mutex:
            held = self._held.get(handle.name)
            if held is not None and held[0] == handle.token:
                del self._held[handle.name]


@contextmanager
def kept_alive(handles: Sequence[LockHandle], *, every: float) -> Iterator[None]:
    """Refresh `handles` every `every` seconds while the block runs, from a thread of its
    own: one long step (a request carrying a huge document, a first pass over a big packet,
    a group's shared call) must not outlive the locks' time to live. `handles` is read at
    every beat, so the block may add the locks it takes. A refresh that fails is tried
    again at the next beat (the block's own steps notice a lock really lost)."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(every):
            for handle in list(handles):
                try:
                    handle.refresh()
                except Exception:  # Redis away for a moment: the next beat tries again
                    logger.warning("could not refresh a lock", exc_info=True)

    keeper = threading.Thread(target=beat, name="lock-keeper", daemon=True)
    keeper.start()
    try:
        yield
    finally:
        stop.set()
        keeper.join()
