"""A Redis client for `REDIS_URL` outside the broker: outbound state, OAuth token store.

Same connection options as the broker's client (`pipeline/broker.py`), without importing
dramatiq, so `targets/` and `outbound/` can use it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import redis

if TYPE_CHECKING:
    from packetworker.settings import Settings


def redis_for(settings: Settings) -> redis.Redis:
    """A decoding Redis client for `settings.redis_url` (`redis://` or `rediss://`)."""
    options: dict[str, object] = {"socket_connect_timeout": 5, "health_check_interval": 30}
    if urlsplit(settings.redis_url).scheme == "rediss" and settings.redis_tls_insecure:
        options["ssl_cert_reqs"] = "none"  # Heroku Redis: self-signed certificate
    return redis.Redis.from_url(settings.redis_url, decode_responses=True, **options)
