"""Fixtures of the CRM target tests: each CRM's emulator with a target on it."""

from __future__ import annotations

import pytest

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
