"""Every Redis client of the project is built here, from the Redis settings (`REDIS_URL`,
`REDIS_TLS_INSECURE`): the broker's, the ledger's (locks, request budgets, metrics, console),
outbound state's and the OAuth token store's. One place, so no client forgets an option.

Dramatiq does not read `REDIS_URL` itself, and when given `url=` it builds its own pool, which
makes redis-py ignore every other option; so the broker gets a client from here too. Options
in the URL's query string (e.g. `?ssl_cert_reqs=none`) win over the defaults here. No
dramatiq import, so `targets/` and `outbound/` can use it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import redis

if TYPE_CHECKING:
    from packetworker.settings import Settings

#: Seconds to wait for Redis to accept a connection before failing over to a retry.
REDIS_CONNECT_TIMEOUT = 5.0
#: Socket read timeout; nothing here blocks server-side for longer (Dramatiq's consumer
#: never does), so this only bounds a stalled connection.
REDIS_SOCKET_TIMEOUT = 30.0
#: Ping idle connections before use: hosted Redis closes idle sockets without telling us.
REDIS_HEALTH_CHECK_INTERVAL = 30


def redis_from_url(
    url: str,
    *,
    tls_insecure: bool = False,
    decode_responses: bool = True,
    connect_timeout: float = REDIS_CONNECT_TIMEOUT,
) -> redis.Redis:
    """A client for `url` (`redis://` or `rediss://`); `tls_insecure` skips certificate
    checks on `rediss://` (Heroku Redis presents a self-signed certificate, and its docs say
    to skip verification)."""
    options: dict[str, object] = {
        "decode_responses": decode_responses,
        "socket_connect_timeout": connect_timeout,
        "socket_timeout": REDIS_SOCKET_TIMEOUT,
        "health_check_interval": REDIS_HEALTH_CHECK_INTERVAL,
    }
    if urlsplit(url).scheme == "rediss" and tls_insecure:
        options["ssl_cert_reqs"] = "none"
    return redis.Redis.from_url(url, **options)


def redis_for(
    settings: Settings,
    *,
    decode_responses: bool = True,
    connect_timeout: float = REDIS_CONNECT_TIMEOUT,
) -> redis.Redis:
    """A client for `settings.redis_url`, honouring every Redis setting; decoding by default
    (the broker's client is the one that reads bytes)."""
    return redis_from_url(
        settings.redis_url,
        tls_insecure=settings.redis_tls_insecure,
        decode_responses=decode_responses,
        connect_timeout=connect_timeout,
    )
