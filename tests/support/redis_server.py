"""A Redis for tests: the one at `REDIS_URL`, or a private `redis-server` started here.

Tests that need Redis must run on CI, so when nothing answers and no `redis-server` can be
started this fails loudly instead of skipping.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator

import redis

from support.waiting import free_port, wait_for


def ping_redis(url: str, *, timeout: float = 0.5) -> bool:
    client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


@contextlib.contextmanager
def redis_url_or_start(url: str) -> Iterator[str]:
    """Yield `url` if a Redis answers there, else the URL of a `redis-server` started for us."""
    if ping_redis(url):
        yield url
        return
    executable = shutil.which("redis-server")
    if executable is None:
        raise RuntimeError(f"no Redis answers at {url} and redis-server is not on PATH")
    port = free_port()
    # No persistence: the server lives only as long as the test session.
    args = ["--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"]
    process = subprocess.Popen(
        [executable, *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    started = f"redis://127.0.0.1:{port}/0"
    try:
        wait_for(
            lambda: process.poll() is not None or ping_redis(started),
            timeout=15,
            what="redis-server to answer",
        )
        if process.poll() is not None:
            stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
            raise RuntimeError(f"redis-server exited with {process.returncode}: {stderr}")
        yield started
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr:
            process.stderr.close()
