"""Counters and the apply-latency histogram: counted in every worker process, kept in Redis,
exposed by the `web` process at `/metrics` in the Prometheus text format.

Why Redis and not `prometheus_client`'s multiprocess mode: that mode shares a directory of
memory-mapped files between processes of one machine, but workers run on several machines
(dynos) and `/metrics` is served by yet another one. So each process counts in memory
(`METRICS`, thread-safe and cheap enough for every HTTP request) and a worker adds its counts
to one Redis hash every `FLUSH_SECONDS` and when it stops (`PeriodicFlush` around
`RedisMetrics.flush`: one pipelined round trip); `web` reads that hash. Not after every
message: a flush costs one Redis command per counted series (a packet's apply histogram
alone is 16), whatever number of packets it carries. The counts are monotonic across
restarts of any process, as Prometheus counters should be, and a Redis flush resets them
(Prometheus sees a counter reset, which `rate()` handles).

Names follow Prometheus conventions: `packetworker_` prefix, `_total` for counters, base
units (`_seconds`), histograms as `_bucket{le=...}`, `_sum` and `_count`.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx
    import redis

logger = logging.getLogger(__name__)

#: A sample: name, type (counter, gauge, histogram), labels, value.
Metric = tuple[str, str, Mapping[str, str], float]

PACKETS_PROCESSED = "packetworker_packets_processed_total"
RECORDS_PROCESSED = "packetworker_records_processed_total"
APPLY_SECONDS = "packetworker_apply_duration_seconds"
TARGET_REQUESTS = "packetworker_target_requests_total"
TARGET_THROTTLED = "packetworker_target_throttled_total"

#: Upper bounds (seconds) of the apply-latency buckets: small packets take well under a
#: second, a big order book minutes (PROCESS_TIME_LIMIT_MS is 10 minutes).
APPLY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)

#: HELP text per metric family; `render` writes one HELP and one TYPE line for each.
HELP = {
    PACKETS_PROCESSED: "Packet runs that reached an outcome (applied, duplicate, quarantined).",
    RECORDS_PROCESSED: "Records of applied or quarantined packets, by record outcome.",
    APPLY_SECONDS: "Seconds from the first record handed to the target to the last answer.",
    TARGET_REQUESTS: "HTTP requests answered by the target system, by status code.",
    TARGET_THROTTLED: "Target answers 429 Too Many Requests (throttling).",
    "packetworker_packets": "Packets in the ledger by state (outcome, for finished ones).",
    "packetworker_packets_acknowledged": "Finished packets whose done receipt was posted.",
    "packetworker_oldest_pending_age_seconds": "Age of the oldest unfinished packet.",
    "packetworker_acks_waiting": "Finished packets whose done receipt is queued.",
    "packetworker_outbound_events_total": "Outbound pushes and notifications, by event.",
    "packetworker_webhook_seconds_left": "Seconds until a webhook subscription expires.",
    "packetworker_webhook_polling": "1 when a resource is polled because BC refused a webhook.",
}

_Key = tuple[str, tuple[tuple[str, str], ...]]


class Tally:
    """In-process counts not yet flushed; `drain` hands them over and starts again at 0."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[_Key, float] = {}

    def inc(self, name: str, labels: Mapping[str, str], amount: float = 1.0) -> None:
        key = (name, tuple(sorted(labels.items())))
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def observe(
        self,
        name: str,
        labels: Mapping[str, str],
        value: float,
        buckets: Iterable[float] = APPLY_BUCKETS,
    ) -> None:
        """One histogram observation (cumulative buckets, as the exposition format wants)."""
        for bound in (*buckets, math.inf):
            if value <= bound:
                self.inc(f"{name}_bucket", {**labels, "le": _number(bound)})
        self.inc(f"{name}_sum", labels, value)
        self.inc(f"{name}_count", labels)

    def drain(self) -> dict[_Key, float]:
        with self._lock:
            values, self._values = self._values, {}
        return values

    def restore(self, values: Mapping[_Key, float]) -> None:
        """Put drained counts back (their flush failed; the next one carries them)."""
        with self._lock:
            for key, amount in values.items():
                self._values[key] = self._values.get(key, 0.0) + amount


#: This process's counts.
METRICS = Tally()


def response_hook(target: str) -> Callable[[httpx.Response], None]:
    """An httpx `response` event hook counting a target client's requests and 429s."""

    def count(response: httpx.Response) -> None:
        METRICS.inc(TARGET_REQUESTS, {"target": target, "code": str(response.status_code)})
        if response.status_code == 429:
            METRICS.inc(TARGET_THROTTLED, {"target": target})

    return count


#: How often a worker process adds its counts to Redis (`/metrics` lags by at most this).
FLUSH_SECONDS = 5.0


class PeriodicFlush:
    """Calls `flush` every `interval` seconds from a daemon thread, and once more on `stop`,
    so that counts reach Redis in batches however many messages a process handles. A failed
    flush is logged (its counts stay in the tally for the next one)."""

    def __init__(self, flush: Callable[[], None], *, interval: float = FLUSH_SECONDS) -> None:
        self._flush = flush
        self._interval = interval
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="metrics-flush", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the thread and flush what is left."""
        self._stopped.set()
        if self._thread is not None:
            self._thread.join(timeout=max(5.0, self._interval))
        self.flush()

    def flush(self) -> None:
        try:
            self._flush()
        except Exception as exc:
            logger.warning("Could not flush metrics to Redis: %s", exc)

    def _run(self) -> None:
        while not self._stopped.wait(self._interval):
            self.flush()


class RedisMetrics:
    """The shared values: one Redis hash, field = JSON [name, labels], value = the count."""

    def __init__(self, client: redis.Redis, namespace: str) -> None:
        self.client = client
        self.key = f"{namespace}:metrics"

    def flush(self, tally: Tally = METRICS) -> None:
        """Add `tally`'s counts to Redis (one round trip); on failure they stay in `tally`."""
        values = tally.drain()
        if not values:
            return
        try:
            with self.client.pipeline(transaction=False) as pipe:
                for (name, labels), amount in values.items():
                    pipe.hincrbyfloat(self.key, json.dumps([name, dict(labels)]), amount)
                pipe.execute()
        except Exception:
            tally.restore(values)
            raise

    def samples(self) -> list[Metric]:
        """Every stored value as a sample, sorted by name and labels."""
        out: list[Metric] = []
        for field, value in self.client.hgetall(self.key).items():
            name, labels = json.loads(field)
            kind = "histogram" if _family(name) != name else "counter"
            out.append((name, kind, labels, float(value)))
        return sorted(out, key=_order)


def render(samples: Iterable[Metric]) -> str:
    """Prometheus text exposition format 0.0.4: per family one HELP and one TYPE line, then
    its samples (grouped, in the order first seen)."""
    families: dict[str, tuple[str, list[str]]] = {}
    for name, kind, labels, value in samples:
        family = _family(name) if kind == "histogram" else name
        _, lines = families.setdefault(family, (kind, []))
        label_text = ",".join(f'{k}="{_escape(str(v))}"' for k, v in sorted(labels.items()))
        series = f"{name}{{{label_text}}}" if label_text else name
        lines.append(f"{series} {_number(float(value))}")
    out: list[str] = []
    for family, (kind, lines) in families.items():
        help_text = HELP.get(family, family.removeprefix("packetworker_").replace("_", " "))
        out += [f"# HELP {family} {_escape_help(help_text)}", f"# TYPE {family} {kind}", *lines]
    return "\n".join(out) + "\n"


def _order(sample: Metric) -> tuple:
    """By family, series (labels but `le`), then suffix and bucket bound, numerically."""
    name, _, labels, _ = sample
    series = sorted((k, v) for k, v in labels.items() if k != "le")
    bound = float(labels.get("le", "inf").replace("+Inf", "inf"))
    return (_family(name), series, name, bound)


def _family(name: str) -> str:
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and name.removesuffix(suffix) in HELP:
            return name.removesuffix(suffix)
    return name


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n")
