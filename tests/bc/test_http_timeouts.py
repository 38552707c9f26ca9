"""The read timeout of the target clients comes from settings (a call that outlives it is a
write in doubt, so it is an operator's choice, not a constant)."""

from __future__ import annotations

from packetworker.settings import Settings
from packetworker.targets.bc.client import BCClient
from packetworker.targets.dataverse.client import DataverseClient


def test_bc_calls_time_out_after_bc_http_timeout():
    settings = Settings(_env_file=None, bc_tenant="t", bc_client_id="c", bc_http_timeout=12.5)

    with BCClient.from_settings(settings) as client:
        assert client._http.timeout.read == 12.5


def test_dataverse_calls_time_out_after_dataverse_http_timeout():
    settings = Settings(
        _env_file=None,
        dataverse_url="https://org.example.crm4.dynamics.com",
        dataverse_tenant="t",
        dataverse_client_id="c",
        dataverse_http_timeout=7.5,
    )

    with DataverseClient.from_settings(settings) as client:
        assert client._http.timeout.read == 7.5
