"""The `redis_url` fixture's fallback: a private redis-server when nothing answers."""

from __future__ import annotations

import redis
from support import ping_redis, redis_url_or_start
from support.waiting import free_port


def test_shared_redis_url_answers(redis_url):
    assert ping_redis(redis_url) is True


def test_a_private_server_is_started_when_nothing_answers_and_stopped_after():
    silent = f"redis://127.0.0.1:{free_port()}/0"

    with redis_url_or_start(silent) as url:
        client = redis.Redis.from_url(url)
        client.set("pw-support-probe", b"1")
        stored = client.get("pw-support-probe")
        client.close()

    assert url != silent
    assert stored == b"1"
    assert ping_redis(url) is False
