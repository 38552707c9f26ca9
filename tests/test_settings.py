"""Settings refuse values that would break a client, whatever the environment says."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from packetworker.settings import Settings

CRMS = ["dataverse", "dynamics_portal", "crmaas"]


@pytest.mark.parametrize("crm", CRMS)
def test_a_crm_call_needs_a_positive_timeout(crm: str) -> None:
    assert getattr(Settings(_env_file=None), f"{crm}_http_timeout") == 30.0

    with pytest.raises(ValidationError, match=f"{crm}_http_timeout"):
        Settings(_env_file=None, **{f"{crm}_http_timeout": 0})


@pytest.mark.parametrize("crm", CRMS)
def test_a_crm_create_in_doubt_waits_ten_minutes_unless_set_and_never_a_negative_time(
    crm: str,
) -> None:
    assert getattr(Settings(_env_file=None), f"{crm}_in_doubt_seconds") == 600.0
    assert (
        getattr(
            Settings(_env_file=None, **{f"{crm}_in_doubt_seconds": 0}), f"{crm}_in_doubt_seconds"
        )
        == 0
    )

    with pytest.raises(ValidationError, match=f"{crm}_in_doubt_seconds"):
        Settings(_env_file=None, **{f"{crm}_in_doubt_seconds": -1})
