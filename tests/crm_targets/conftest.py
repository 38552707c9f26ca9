"""Fixtures of the CRM target tests: each CRM's emulator with a target on it."""

from __future__ import annotations

import os
import uuid

import pytest
import redis

from tests.crm_targets.harness import CRMS, harness_for


@pytest.fixture(params=CRMS)
def crm(request):
    """Each CRM in turn, errors quarantined (the default policy)."""
    with harness_for(request.param) as harness:
        yield harness


@pytest.fixture(params=CRMS)
def crm_skipping(request):
    """Each CRM in turn, with `crm_record_errors = skip`."""
    with harness_for(request.param, record_errors="skip") as harness:
        yield harness


@pytest.fixture
def crm_as_a_service():
    with harness_for("crmaas") as harness:
        yield harness


@pytest.fixture
def redis_client():
    """A Redis client and a fresh namespace, its keys dropped afterwards."""
    client = redis.Redis.from_url(
        os.environ.get("REDIS_URL", "redis://localhost:6379/0"), decode_responses=True
    )
    namespace = f"pw-crm-test-{uuid.uuid4().hex[:8]}"
    yield client, namespace
    for key in client.scan_iter(f"{namespace}*"):
        client.delete(key)
    client.close()
