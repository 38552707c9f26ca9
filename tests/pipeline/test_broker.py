"""The Redis broker built from settings: URL handling, TLS options, middleware, retry policy."""

from __future__ import annotations

import ssl

import pytest
import redis
from dramatiq.middleware import (
    AgeLimit,
    Callbacks,
    CurrentMessage,
    Pipelines,
    Retries,
    ShutdownNotifications,
    TimeLimit,
)
from pydantic import ValidationError

from packetworker.packets.errors import PacketTooLarge
from packetworker.pipeline.broker import (
    make_broker,
    make_retry_when,
    redis_client,
    secrets_of,
    worker_argv,
)
from packetworker.pipeline.shutdown import GracefulShutdown
from packetworker.portal.errors import PortalAuthError, PortalUnavailable
from packetworker.request_budget import SlotUnavailable
from packetworker.settings import Settings
from packetworker.targets.bc.errors import BCError, NoAnswer


def settings(**values) -> Settings:
    return Settings(_env_file=None, **values)


def test_client_keeps_the_url_database_and_timeouts():
    client = redis_client(settings(redis_url="redis://localhost:6379/7"))

    kwargs = client.connection_pool.connection_kwargs
    assert kwargs["db"] == 7
    assert kwargs["socket_connect_timeout"] == 5.0
    assert kwargs["health_check_interval"] == 30


def test_rediss_url_with_ssl_cert_reqs_none_skips_verification():
    client = redis_client(
        settings(redis_url="rediss://:pw@redis.example:6380/0?ssl_cert_reqs=none")
    )

    connection = client.connection_pool.make_connection()
    assert connection.cert_reqs == ssl.CERT_NONE
    assert connection.check_hostname is False


def test_rediss_url_verifies_certificates_by_default():
    client = redis_client(settings(redis_url="rediss://:pw@redis.example:6380/0"))

    assert client.connection_pool.make_connection().cert_reqs == ssl.CERT_REQUIRED


def test_redis_tls_insecure_setting_skips_verification():
    client = redis_client(
        settings(redis_url="rediss://:pw@redis.example:6380/0", redis_tls_insecure=True)
    )

    assert client.connection_pool.make_connection().cert_reqs == ssl.CERT_NONE


def test_broker_uses_namespace_heartbeat_and_maintenance_from_settings():
    broker = make_broker(
        settings(
            broker_namespace="pw-test",
            broker_heartbeat_timeout_ms=2000,
            broker_maintenance_chance=500_000,
        )
    )

    assert (broker.namespace, broker.heartbeat_timeout, broker.maintenance_chance) == (
        "pw-test",
        2000,
        500_000,
    )


def test_broker_has_an_explicit_middleware_list():
    broker = make_broker(settings())

    assert [type(m) for m in broker.middleware] == [
        AgeLimit,
        TimeLimit,
        ShutdownNotifications,
        Callbacks,
        Pipelines,
        Retries,
        CurrentMessage,
        GracefulShutdown,
    ]


def test_retries_use_backoff_from_settings():
    broker = make_broker(settings(retry_min_backoff_ms=100, retry_max_backoff_ms=900))

    retries = next(m for m in broker.middleware if isinstance(m, Retries))
    assert (retries.min_backoff, retries.max_backoff) == (100, 900)


def test_broker_reaches_redis(redis_url):
    broker = make_broker(settings(redis_url=redis_url))

    assert broker.client.ping() is True


@pytest.mark.parametrize(
    "exception",
    [
        ConnectionRefusedError("refused"),
        TimeoutError("slow"),
        redis.exceptions.ConnectionError("gone"),
    ],
)
def test_connection_errors_are_retried(exception):
    assert make_retry_when(3)(0, exception) is True


@pytest.mark.parametrize(
    "exception",
    [
        PortalUnavailable("GET /pull kept failing", status=503),
        NoAnswer(0, "", "POST $batch: ReadTimeout", transient=True),
        SlotUnavailable("no slot", retry_after=3),
    ],
)
def test_the_clients_transient_errors_are_retried(exception):
    assert make_retry_when(3)(0, exception) is True


@pytest.mark.parametrize(
    "exception",
    [
        PortalAuthError("GET /pull was refused", status=401),
        BCError(400, "BadRequest", "no such field", transient=False),
        PacketTooLarge("too big"),
    ],
)
def test_the_projects_permanent_errors_are_never_retried(exception):
    assert make_retry_when(3)(0, exception) is False


def test_transient_errors_are_retried():
    from packetworker.pipeline.results import TransientError

    assert make_retry_when(3)(2, TransientError("portal 503")) is True


@pytest.mark.parametrize("exception", [ValueError("bug"), KeyError("x"), RuntimeError("boom")])
def test_permanent_errors_are_never_retried(exception):
    assert make_retry_when(3)(0, exception) is False


def test_retries_stop_after_the_limit():
    assert make_retry_when(3)(3, ConnectionRefusedError("refused")) is False


def test_secrets_are_the_api_key_and_the_redis_password():
    assert secrets_of(
        settings(dm_api_key="k-123456", redis_url="rediss://:s3cret-pw@redis.example:6380/0")
    ) == ("k-123456", "s3cret-pw")


def test_worker_command_line_follows_the_settings():
    argv = worker_argv(
        settings(worker_processes=3, worker_threads=6, worker_shutdown_timeout_ms=20_000),
        modules=["extra.module"],
    )

    assert argv[1:] == [
        "-m",
        "dramatiq",
        "packetworker.pipeline.worker",
        "extra.module",
        "--processes",
        "3",
        "--threads",
        "6",
        "--worker-shutdown-timeout",
        "20000",
    ]


def test_shutdown_timeout_must_stay_under_herokus_kill_window():
    with pytest.raises(ValidationError):
        settings(worker_shutdown_timeout_ms=30_000)


def test_prometheus_middleware_is_added_when_enabled():
    from dramatiq.middleware.prometheus import Prometheus

    broker = make_broker(settings(prometheus_enabled=True))

    assert isinstance(broker.middleware[-1], Prometheus)


def test_an_amqp_broker_url_selects_rabbitmq_with_the_same_middleware():
    from dramatiq.brokers.rabbitmq import RabbitmqBroker
    from support.rabbitmq import rabbitmq_url

    settings = Settings(_env_file=None, broker_url=rabbitmq_url())
    broker = make_broker(settings)
    try:
        assert isinstance(broker, RabbitmqBroker)
        names = [type(m).__name__ for m in broker.middleware]
        assert "GracefulShutdown" in names
        assert "Retries" in names
    finally:
        broker.close()


def test_a_broker_url_that_is_not_amqp_is_refused():
    with pytest.raises(ValueError, match="amqp://"):
        make_broker(Settings(_env_file=None, broker_url="redis://127.0.0.1:6379/1"))


def test_the_rabbitmq_password_is_one_of_the_secrets_kept_out_of_logs():
    settings = Settings(_env_file=None, broker_url="amqp://pw:s3cret-pass@mq.example/%2F")
    assert "s3cret-pass" in secrets_of(settings)
