"""Helpers shared by the test suite (imported by `tests/conftest.py` and by tests)."""

from support.redis_server import ping_redis, redis_url_or_start
from support.waiting import free_port, wait_for

__all__ = ["free_port", "ping_redis", "redis_url_or_start", "wait_for"]
