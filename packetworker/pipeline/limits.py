"""Request budgets shared through Redis by every worker process on every machine.

Business Central limits each user (an app registration is one) to 5 running requests and
6,000 per 5-minute sliding window (business-central.md §5.4), Dataverse to 52 and 6,000
(crm.md): limits of the account, not of one process. `RedisLimiter` is the
`packetworker.request_budget.RequestLimiter` the pipeline injects into the clients it builds:

- a slot is a *lease* in a sorted set scored by its expiry, so a worker killed mid-request
  frees its slot when the lease runs out (`lease` seconds), never later;
- the window is a sorted set of start times, so the limit is a true sliding window;
- taking a slot (purge, check both limits, record) is one Lua script, atomic in Redis and
  one round trip; giving it back is one `ZREM`.

Dramatiq's `ConcurrentRateLimiter` keeps a bare counter whose TTL every acquisition renews,
so under steady traffic a slot leaked by a killed worker would never come back; hence leases.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Iterator, Mapping

import redis

from packetworker.request_budget import WINDOW_SECONDS, Release, RequestLimiter, SlotUnavailable
from packetworker.settings import Settings

# KEYS: leases, starts. ARGV: now, lease seconds, max in flight, per window (0: none),
# window seconds, token. Answers "0" when the slot is taken, else why not ("busy": every
# slot is held; "window": the window is spent) and the seconds until that may change.
_ACQUIRE = """
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return 'busy ' .. tostring(tonumber(first[2]) - now)
end
local per = tonumber(ARGV[4])
local window = tonumber(ARGV[5])
if per > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
  if redis.call('ZCARD', KEYS[2]) >= per then
    local oldest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
    return 'window ' .. tostring(math.max(tonumber(oldest[2]) + window - now, 0.001))
  end
  redis.call('ZADD', KEYS[2], now, ARGV[6])
  redis.call('PEXPIRE', KEYS[2], math.ceil(window * 1000) + 1000)
end
local lease = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now + lease, ARGV[6])
redis.call('PEXPIRE', KEYS[1], math.ceil(lease * 1000) + 1000)
return '0'
"""

#: Longest pause between two tries for a slot that is busy (a slot comes free any moment).
POLL_SECONDS = 0.05


class RedisLimiter:
    """A `RequestLimiter` whose slots and window live in Redis under `key`.

    `clock` is wall-clock seconds (shared by machines, so keep them NTP-synced); `sleep` is
    how a waiting thread pauses. Both are injectable for tests.
    """

    def __init__(
        self,
        client: redis.Redis,
        key: str,
        *,
        max_in_flight: int,
        per_window: int = 0,
        window: float = WINDOW_SECONDS,
        lease: float = 120.0,
        wait: float = 30.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        self.key = key
        self.max_in_flight = max_in_flight
        self.per_window = per_window
        self.window = window
        self.lease = lease
        self.wait = wait
        self._client = client
        self._clock = clock
        self._sleep = sleep
        self._acquire = client.register_script(_ACQUIRE)
        self._keys = [f"{key}:leases", f"{key}:starts"]

    def acquire(self) -> Release:
        token = uuid.uuid4().hex
        deadline = self._clock() + self.wait
        while True:
            refusal = self._try(token)
            if refusal is None:
                return self._releaser(token)
            busy, delay = refusal
            remaining = deadline - self._clock()
            # A held slot may come free any moment; a spent window only when its oldest ages.
            if remaining <= 0 or (not busy and delay > remaining):
                raise SlotUnavailable(
                    f"no request slot of {self.key} within {self.wait:g} s", retry_after=delay
                )
            pause = min(delay, POLL_SECONDS) * random.uniform(0.5, 1.0) if busy else delay
            self._sleep(min(pause, remaining))

    def _try(self, token: str) -> tuple[bool, float] | None:
        """One try: None when the slot is ours, else (whether every slot is held, seconds
        until that may change)."""
        args = [self._clock(), self.lease, self.max_in_flight, self.per_window, self.window]
        answer = self._acquire(keys=self._keys, args=[*args, token])
        answer = answer.decode() if isinstance(answer, bytes) else str(answer)
        if answer == "0":
            return None
        reason, _, seconds = answer.partition(" ")
        return reason == "busy", max(0.0, float(seconds))

    def _releaser(self, token: str) -> Release:
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self._client.zrem(self._keys[0], token)

        return release


class SharedBudgets(Mapping[str, RequestLimiter]):
    """The pipeline's request budgets by service name, built on first use from `settings`:
    `"bc"` (per app registration), `"dataverse"` (per application user) and
    `"portal:<app area>"`, all keyed under `LEDGER_NAMESPACE` in Redis."""

    def __init__(
        self,
        client: redis.Redis,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client
        self._settings = settings
        self._clock = clock
        self._sleep = sleep
        self._built: dict[str, RequestLimiter] = {}

    def __getitem__(self, service: str) -> RequestLimiter:
        limiter = self._built.get(service)
        if limiter is None:
            limiter = self._built[service] = self._build(service)
        return limiter

    def __iter__(self) -> Iterator[str]:
        return iter(self._built)

    def __len__(self) -> int:
        return len(self._built)

    def _build(self, service: str) -> RequestLimiter:
        s = self._settings
        if service == "bc":
            account = f"bc:{s.bc_tenant}:{s.bc_client_id}"
            limits = (s.bc_max_concurrency, s.bc_requests_per_5_min, s.bc_http_timeout)
        elif service == "dataverse":
            account = f"dataverse:{s.dataverse_url}:{s.dataverse_client_id}"
            limits = (
                s.dataverse_max_concurrency,
                s.dataverse_requests_per_5_min,
                s.dataverse_http_timeout,
            )
        elif service.startswith("portal:"):
            account = f"portal:{s.dm_api_url}:{service.removeprefix('portal:')}"
            limits = (s.dm_max_concurrency, s.dm_requests_per_5_min, s.dm_http_timeout)
        else:
            raise KeyError(service)
        in_flight, per_window, timeout = limits
        return RedisLimiter(
            self._client,
            f"{s.ledger_namespace}:budget:{account}",
            max_in_flight=in_flight,
            per_window=per_window,
            # A request outlives its read timeout only by its connect and write phases.
            lease=max(60.0, 2 * timeout),
            wait=s.request_slot_wait,
            clock=self._clock,
            sleep=self._sleep,
        )
