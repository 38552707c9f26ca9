"""Choosing a target: systems refuse, naming the settings they lack, instead of falling back;
emulators are found only by their explicit names; `auto` is gone with a pointer to what to set."""

from __future__ import annotations

import importlib
import os

import pytest
from support.cli import run_packetworker

from packetworker.outbound.context import OutboundContext
from packetworker.pipeline.context import check_configured
from packetworker.sandbox.targets.bc import EmbeddedBCTarget
from packetworker.settings import Settings
from packetworker.targets import NotConfigured, UnknownTarget, get_target, known_targets

EMULATORS = ("bc-emulator", "dataverse-emulator", "crmaas-emulator", "dynamics-portal-emulator")

# Each system target, its module, and the one line naming everything it needs.
SYSTEMS = {
    "bc": (
        "packetworker.targets.bc.target",
        "TARGET=bc needs BC_TENANT, BC_CLIENT_ID, BC_CLIENT_SECRET (or BC_REFRESH_TOKEN)",
    ),
    "dataverse": (
        "packetworker.targets.dataverse.target",
        "TARGET=dataverse needs DATAVERSE_URL, DATAVERSE_TENANT, DATAVERSE_CLIENT_ID, "
        "DATAVERSE_CLIENT_SECRET",
    ),
    "crmaas": (
        "packetworker.targets.crmaas.target",
        "TARGET=crmaas needs CRMAAS_URL, CRMAAS_PRIMARY_KEY",
    ),
    "dynamics-portal": (
        "packetworker.targets.dynamics_portal.target",
        "TARGET=dynamics-portal needs DYNAMICS_PORTAL_URL, DYNAMICS_PORTAL_CLIENT_ID",
    ),
}


# Whatever the environment running the tests holds, these are unset.
UNSET = dict.fromkeys(
    (
        "bc_tenant",
        "bc_client_id",
        "bc_client_secret",
        "bc_refresh_token",
        "dataverse_url",
        "dataverse_tenant",
        "dataverse_client_id",
        "dataverse_client_secret",
        "crmaas_url",
        "crmaas_primary_key",
        "dynamics_portal_url",
        "dynamics_portal_client_id",
        "outbound_users",
        "webhook_url",
    ),
    "",
)


def bare(**values) -> Settings:
    """Settings with nothing configured beyond `values` (and no .env file)."""
    return Settings(_env_file=None, **{**UNSET, "target": "bc", **values})


@pytest.mark.parametrize("name", SYSTEMS)
def test_a_system_target_without_its_settings_refuses_naming_them(name: str) -> None:
    with pytest.raises(NotConfigured) as refused:
        get_target(name, bare())

    assert str(refused.value) == SYSTEMS[name][1]


@pytest.mark.parametrize("name", SYSTEMS)
def test_a_system_targets_own_factory_refuses_instead_of_starting_an_emulator(name: str) -> None:
    module = importlib.import_module(SYSTEMS[name][0])

    with pytest.raises(NotConfigured, match=f"^TARGET={name} needs "):
        module.target_from_settings(bare())


def test_only_the_settings_still_missing_are_named() -> None:
    settings = bare(bc_tenant="contoso.com", bc_client_id="app", bc_refresh_token="r")
    assert get_target("bc", settings).name == "bc"

    with pytest.raises(NotConfigured) as refused:
        get_target("bc", bare(bc_client_id="app", bc_client_secret="s"))
    assert str(refused.value) == "TARGET=bc needs BC_TENANT"


def test_secret_values_never_appear_in_the_refusal() -> None:
    with pytest.raises(NotConfigured) as refused:
        get_target("crmaas", bare(crmaas_primary_key="k-very-secret"))

    assert str(refused.value) == "TARGET=crmaas needs CRMAAS_URL"


@pytest.mark.parametrize("name", EMULATORS)
def test_emulator_names_resolve_through_the_entry_point_group(name: str) -> None:
    assert name in known_targets()
    target = get_target(name, bare())
    try:
        assert target.name in {"bc", "dataverse", "crmaas", "dynamics-portal"}
    finally:
        target.close()


def test_the_bc_emulator_is_an_embedded_bc_target() -> None:
    target = get_target("bc-emulator", bare())
    try:
        assert isinstance(target, EmbeddedBCTarget)
    finally:
        target.close()


def test_auto_is_refused_saying_what_to_set_instead() -> None:
    with pytest.raises(NotConfigured) as refused:
        get_target("auto", bare())

    assert "TARGET=bc" in str(refused.value)
    assert "TARGET=bc-emulator" in str(refused.value)


def test_long_running_processes_check_the_default_target() -> None:
    with pytest.raises(NotConfigured, match=r"^TARGET=bc needs BC_TENANT"):
        check_configured(bare())

    check_configured(bare(target="bc-emulator"))


def test_an_unknown_target_is_refused_unless_a_later_import_may_register_it() -> None:
    with pytest.raises(UnknownTarget, match="unknown target 'later'"):
        check_configured(bare(target="later"))

    check_configured(bare(target="later"), allow_unknown_target=True)


def test_outbound_work_needs_business_central_even_with_an_emulator_target() -> None:
    settings = bare(target="bc-emulator", outbound_users="u1")

    with pytest.raises(NotConfigured, match=r"^outbound \(Business Central → mobile\) needs BC_"):
        check_configured(settings)


def test_the_outbound_context_refuses_without_business_central() -> None:
    with pytest.raises(NotConfigured) as refused:
        OutboundContext.from_settings(bare())

    assert str(refused.value) == (
        "outbound (Business Central → mobile) needs BC_TENANT, BC_CLIENT_ID, "
        "BC_CLIENT_SECRET (or BC_REFRESH_TOKEN)"
    )


def test_push_outbound_without_business_central_exits_with_one_line_naming_it(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BC_", "TARGET"))}
    done = run_packetworker("push-outbound", "rep-1", env=env, cwd=tmp_path, timeout=60)

    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "packetworker: outbound (Business Central → mobile) needs BC_TENANT, BC_CLIENT_ID, "
        "BC_CLIENT_SECRET (or BC_REFRESH_TOKEN)"
    ]
