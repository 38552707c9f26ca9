"""Every Redis client is built by `packetworker.redis_client` and honours every Redis
setting: the broker's, the ledger's (with the locks and request budgets on it), outbound
state's and the OAuth token store's."""

from __future__ import annotations

import ssl

import pytest

from packetworker.outbound.context import redis_for
from packetworker.pipeline.broker import redis_client
from packetworker.pipeline.context import PipelineContext
from packetworker.settings import Settings
from packetworker.targets.bc.auth import token_store

TLS_URL = "rediss://:pw@redis.example:6380/3"


def settings(tmp_path, **values) -> Settings:
    values = {"archive_url": f"file://{tmp_path}/archive", "spool_dir": tmp_path, **values}
    return Settings(_env_file=None, **values)


def clients(settings: Settings):
    ctx = PipelineContext.from_settings(settings)
    return {
        "broker": redis_client(settings),
        "ledger": ctx.ledger.client,
        "locks": ctx.ledger.locks.client,
        "outbound state": redis_for(settings),
        "token store": token_store(settings)._redis,
    }


@pytest.mark.parametrize("insecure", [True, False])
def test_every_client_honours_redis_tls_insecure(tmp_path, insecure):
    built = clients(settings(tmp_path, redis_url=TLS_URL, redis_tls_insecure=insecure))

    expected = ssl.CERT_NONE if insecure else ssl.CERT_REQUIRED
    checks = {
        name: client.connection_pool.make_connection().cert_reqs for name, client in built.items()
    }
    assert checks == dict.fromkeys(built, expected)


def test_every_client_keeps_the_url_database_and_timeouts(tmp_path):
    built = clients(settings(tmp_path, redis_url=TLS_URL))

    options = {
        name: {
            key: client.connection_pool.connection_kwargs.get(key)
            for key in ("db", "password", "socket_connect_timeout", "health_check_interval")
        }
        for name, client in built.items()
    }
    expected = {
        "db": 3,
        "password": "pw",
        "socket_connect_timeout": 5.0,
        "health_check_interval": 30,
    }
    assert options == dict.fromkeys(built, expected)
