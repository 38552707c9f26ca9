"""Runs the real processes of a deployment for end-to-end tests.

`Deployment` owns one test's settings (a private Redis namespace, a recording-target file,
an archive directory) and starts `dramatiq` worker processes and the clock as subprocesses
with those settings in their environment, exactly as the Procfile would. Tests synchronise
with `wait_for`, which polls observable state until a condition holds or a timeout expires.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import orjson
import redis

from packetworker.pipeline.broker import worker_argv
from packetworker.pipeline.ledger import RedisLedger
from packetworker.settings import Settings

T = TypeVar("T")

TESTS = Path(__file__).resolve().parents[1]  # tests/pipeline, the parent of package `e2e`

#: Settings that make crash recovery and retries fast enough for a test run.
FAST = {
    "broker_heartbeat_timeout_ms": 2000,
    # Nearly every broker command also runs maintenance, so a dead worker's un-acked
    # messages are requeued soon after its heartbeat goes stale.
    "broker_maintenance_chance": 200_000,
    "retry_min_backoff_ms": 200,
    "retry_max_backoff_ms": 1000,
    "dm_poll_interval": 0.3,
    "dm_poll_jitter": 0.0,
    "poll_lock_ttl_ms": 5000,
    # A killed worker's packet lock expires soon, and a poll re-sends a packet whose
    # message died with its worker once it made no progress for a few seconds.
    "packet_lock_ttl": 3.0,
    "stale_after": 3.0,
    "dm_http_retries": 2,
    "dm_http_timeout": 5.0,
    "log_level": "INFO",
    "log_format": "json",
}

#: Dramatiq's own knobs (env vars it reads at import): react within 100 ms when idle, and
#: reconnect quickly after Redis went away.
DRAMATIQ_ENV = {"dramatiq_worker_timeout": "100", "dramatiq_restart_delay": "300"}


def wait_for(condition: Callable[[], T], *, timeout: float, what: str, interval: float = 0.05) -> T:
    """Poll `condition` until it returns something truthy; fail the test after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class Process:
    """A subprocess in its own process group, so a kill reaches the dramatiq main process and
    its forked workers at once, as when a machine dies."""

    def __init__(self, argv: list[str], *, env: dict[str, str], log: Path, cwd: Path) -> None:
        self.log = log
        self._log_file = log.open("ab")
        self.popen = subprocess.Popen(
            argv,
            env=env,
            cwd=cwd,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def running(self) -> bool:
        return self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL the whole process group: no cleanup, no requeue, no ack."""
        if self.running():
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(timeout=10)
        self._log_file.close()

    def terminate(self, *, timeout: float) -> int:
        """SIGTERM the main process (it forwards the signal to its workers); the exit code."""
        self.popen.send_signal(signal.SIGTERM)
        try:
            return self.popen.wait(timeout=timeout)
        finally:
            self._log_file.close()

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def log_lines(self) -> list[dict[str, Any]]:
        """The JSON log lines this process wrote (dramatiq's own text lines are skipped)."""
        lines = []
        for line in self.output().splitlines():
            if line.startswith("{"):
                try:
                    lines.append(orjson.loads(line))
                except orjson.JSONDecodeError:
                    continue
        return lines


class Deployment:
    """One test's worker processes, clock and private state."""

    def __init__(
        self,
        *,
        root: Path,
        redis_url: str,
        portal_url: str,
        api_key: str,
        app_area: str,
        **overrides: Any,
    ) -> None:
        self.root = root
        self.app_area = app_area
        namespace = f"pw-e2e-{uuid.uuid4().hex[:8]}"
        self.values: dict[str, Any] = {
            **FAST,
            "dm_api_url": portal_url,
            "dm_api_key": api_key,
            "dm_app_area": app_area,
            # The sandbox's storage links are plain http on loopback, refused unless listed.
            "dm_storage_http_hosts": "127.0.0.1",
            "redis_url": redis_url,
            "broker_namespace": namespace,
            "ledger_namespace": namespace,
            "target": "recording",
            "recording_path": str(root / "recording.jsonl"),
            "archive_url": f"file://{root / 'archive'}",
            "spool_dir": str(root / "spool"),
            **overrides,
        }
        self.namespace = namespace
        self.redis = redis.Redis.from_url(redis_url)
        self.processes: list[Process] = []

    def configure(self, **values: Any) -> None:
        """Change settings for processes started from now on."""
        self.values.update(values)

    @property
    def settings(self) -> Settings:
        """The same settings the subprocesses read, for inspecting state from the test."""
        return Settings(_env_file=None, **self.values)

    def env(self) -> dict[str, str]:
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("DM_", "REDIS_", "BROKER_"))
        }
        env.update({key.upper(): str(value) for key, value in self.values.items()})
        env.update(DRAMATIQ_ENV)
        # So `modules=` and `run_python` can import test helpers such as `e2e.poison_target`.
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS), env.get("PYTHONPATH")]))
        return env

    def _start(self, argv: list[str], name: str) -> Process:
        log = self.root / f"{name}-{len(self.processes)}.log"
        process = Process(argv, env=self.env(), log=log, cwd=self.root)
        self.processes.append(process)
        return process

    def start_worker(
        self,
        *,
        processes: int = 1,
        threads: int = 2,
        shutdown_timeout_ms: int = 10_000,
        queues: tuple[str, ...] = (),
        modules: tuple[str, ...] = (),
    ) -> Process:
        """`dramatiq packetworker.pipeline.worker`, as the Procfile's `worker:` line;
        `queues` limits it to some queues, `modules` are imported in each worker process."""
        settings = self.settings.model_copy(
            update={
                "worker_processes": processes,
                "worker_threads": threads,
                "worker_shutdown_timeout_ms": shutdown_timeout_ms,
            }
        )
        argv = worker_argv(settings, modules=modules)
        if queues:
            argv += ["--queues", *queues]
        return self._start(argv, "worker")

    def start_clock(self) -> Process:
        """The clock process, enqueueing a poll every `dm_poll_interval` seconds."""
        argv = [
            sys.executable,
            "-c",
            "from packetworker.pipeline.clock import run_clock; run_clock()",
        ]
        return self._start(argv, "clock")

    def ledger(self) -> RedisLedger:
        """The ledger the workers share, for asserting on packet states."""
        return RedisLedger.from_url(self.values["redis_url"], self.namespace)

    def run_python(self, code: str, *, timeout: float = 60) -> str:
        """Run `code` in a fresh interpreter with the deployment's environment (as the CLI
        would run on the worker's machine); its stdout."""
        done = subprocess.run(
            [sys.executable, "-c", code],
            env=self.env(),
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    def recorded(self) -> list[dict[str, Any]]:
        """What the recording target stored, across all worker processes."""
        path = Path(self.values["recording_path"])
        if not path.exists():
            return []
        return [orjson.loads(line) for line in path.read_bytes().splitlines() if line]

    def queued(self, queue: str) -> int:
        """How many messages wait on `queue` of the deployment's broker (Redis or RabbitMQ)."""
        url = self.values.get("broker_url") or ""
        if not url.startswith("amqp"):
            return self.redis.llen(f"{self.namespace}:{queue}")
        import pika

        connection = pika.BlockingConnection(pika.URLParameters(url))
        try:
            declared = connection.channel().queue_declare(queue, passive=True)
        except pika.exceptions.ChannelClosedByBroker:  # not declared yet: nothing sent
            return 0
        finally:
            connection.close()
        return declared.method.message_count

    def flush_redis(self) -> int:
        """Delete every key of this deployment: to the pipeline, Redis lost all its data."""
        keys = list(self.redis.scan_iter(match=f"*{self.namespace}*", count=1000))
        return self.redis.delete(*keys) if keys else 0

    def close(self) -> None:
        for process in self.processes:
            if process.running():
                process.kill()
        self.flush_redis()
        self.redis.close()
