"""The broker the worker and the clock share, built from settings: Redis (`REDIS_URL`) by
default, RabbitMQ when `BROKER_URL` is an `amqp://` URL. Only the queues move to RabbitMQ;
the ledger, locks and request budgets stay on Redis.

Dramatiq does not read `REDIS_URL` itself, and when given `url=` it builds its own connection
pool, which makes redis-py ignore every other connection option. So the client is built by
`packetworker.redis_client` (TLS options for Heroku Redis included) and handed over whole.

The middleware list is explicit rather than Dramatiq's default, so an upgrade cannot silently
change retry or time-limit behaviour, and so retries apply only to errors worth retrying.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import (
    AgeLimit,
    Callbacks,
    CurrentMessage,
    Middleware,
    Pipelines,
    Retries,
    ShutdownNotifications,
    TimeLimit,
)

from packetworker.errors import PacketworkerError
from packetworker.pipeline.shutdown import GracefulShutdown
from packetworker.redis_client import redis_for
from packetworker.settings import Settings, get_settings

logger = logging.getLogger(__name__)

#: Polls have their own queue so they never wait behind a backlog of packets.
POLL_QUEUE = "pw-poll"
PACKETS_QUEUE = "pw-packets"

#: Exceptions from outside the project a later attempt may get past: Redis or a socket being
#: briefly away. (HTTP failures reach here as the clients' own transient errors.)
RETRYABLE_EXCEPTIONS: tuple[type[BaseException], ...] = (
    ConnectionError,  # includes socket-level refusals and resets
    TimeoutError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
)


def retryable(exception: BaseException) -> bool:
    """Whether `exception` is transient, i.e. worth another attempt later: one of the
    project's errors that says so (`PacketworkerError.transient`: the portal, the target or
    a request budget briefly away), or Redis or a socket failing. Everything else (bugs,
    invalid packets) is permanent: retrying would only repeat it."""
    if isinstance(exception, PacketworkerError):
        return exception.transient
    return isinstance(exception, RETRYABLE_EXCEPTIONS)


def make_retry_when(max_retries: int) -> Callable[[int, BaseException], bool]:
    """A `Retries(retry_when=...)` predicate: transient errors only, at most `max_retries`.

    Dramatiq ignores `max_retries` once `retry_when` is set, so the predicate counts itself.
    """

    def retry_when(retries: int, exception: BaseException) -> bool:
        return retries < max_retries and retryable(exception)

    return retry_when


def secrets_of(settings: Settings) -> tuple[str, ...]:
    """The values that must never reach a log line: the API key, the Redis and RabbitMQ
    passwords."""
    secrets = [
        settings.dm_api_key.get_secret_value(),
        urlsplit(settings.redis_url).password,
        urlsplit(settings.broker_url).password,
    ]
    return tuple(s for s in secrets if s)


def redis_client(settings: Settings) -> redis.Redis:
    """The broker's Redis client (bytes, as Dramatiq reads them), from the one factory."""
    return redis_for(settings, decode_responses=False)


def make_middleware(settings: Settings) -> list[Middleware]:
    """Dramatiq's default middleware plus CurrentMessage, with retries limited to transient
    errors, a graceful shutdown under a process-group SIGTERM, and Prometheus when enabled."""
    middleware: list[Middleware] = [
        AgeLimit(),
        TimeLimit(),
        ShutdownNotifications(),
        Callbacks(),
        Pipelines(),
        Retries(
            min_backoff=settings.retry_min_backoff_ms,
            max_backoff=settings.retry_max_backoff_ms,
            retry_when=make_retry_when(settings.process_max_retries),
        ),
        CurrentMessage(),
        GracefulShutdown(grace_ms=settings.worker_shutdown_timeout_ms),
    ]
    if settings.prometheus_enabled:
        # Optional extra `metrics`; imported lazily so the worker runs without it.
        from dramatiq.middleware.prometheus import Prometheus

        middleware.append(Prometheus())
    return middleware


def make_broker(settings: Settings | None = None) -> dramatiq.Broker:
    """The broker `settings` name (the process-wide settings by default): a `RabbitmqBroker`
    for an `amqp://`/`amqps://` `BROKER_URL`, else a `RedisBroker` on `REDIS_URL`."""
    settings = settings or get_settings()
    if urlsplit(settings.broker_url).scheme in ("amqp", "amqps"):
        # Optional extra `rabbitmq` (pika); imported only when RabbitMQ is chosen.
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        # Durable queues and persistent messages; confirms so an enqueue that returned is
        # stored by RabbitMQ (a poll relies on that before it moves on).
        return RabbitmqBroker(
            url=settings.broker_url,
            confirm_delivery=True,
            middleware=make_middleware(settings),
        )
    if settings.broker_url:
        raise ValueError("BROKER_URL must be an amqp:// or amqps:// URL (empty: Redis)")
    return RedisBroker(
        client=redis_client(settings),
        namespace=settings.broker_namespace,
        heartbeat_timeout=settings.broker_heartbeat_timeout_ms,
        maintenance_chance=settings.broker_maintenance_chance,
        middleware=make_middleware(settings),
    )


def worker_argv(settings: Settings | None = None, *, modules: Sequence[str] = ()) -> list[str]:
    """The `dramatiq` command line running the worker with the settings' process model.

    For `packetworker worker` and the test harness; the Procfile spells the same flags out
    because Heroku reads it without Python. `modules` are imported in each worker process.
    """
    settings = settings or get_settings()
    return [
        sys.executable,
        "-m",
        "dramatiq",
        "packetworker.pipeline.worker",
        *modules,
        "--processes",
        str(settings.worker_processes),
        "--threads",
        str(settings.worker_threads),
        "--worker-shutdown-timeout",
        str(settings.worker_shutdown_timeout_ms),
    ]


def setup_broker(settings: Settings | None = None) -> dramatiq.Broker:
    """Make the settings' broker the global one, unless one is set already.

    Actors bind to the global broker when they are declared, so this must run before
    `packetworker.pipeline.actors` is imported; that module calls it itself.
    """
    current = dramatiq.broker.global_broker
    if current is not None:
        return current
    broker = make_broker(settings)
    dramatiq.set_broker(broker)
    return broker
