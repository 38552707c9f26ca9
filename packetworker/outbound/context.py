"""`OutboundContext`: the parts the outbound side composes (BC, portal, state, mapping) and
the deployment's choices (users, salesperson routing, webhook), built once from `Settings`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from packetworker.outbound.mapping import OutboundMapping, load_mapping
from packetworker.outbound.source import BCSource
from packetworker.outbound.state import OutboundState, RedisOutboundState
from packetworker.portal import PortalClient
from packetworker.redis_client import redis_for
from packetworker.request_budget import RequestLimiter, using_limiters
from packetworker.settings import Settings
from packetworker.targets.bc import BCClient
from packetworker.targets.required import missing_bc, require

# What a missing BC setting stops (outbound reads Business Central; there is no fallback).
OUTBOUND = "outbound (Business Central → mobile)"


def utcnow() -> datetime:
    return datetime.now(UTC)


def split_list(text: str) -> tuple[str, ...]:
    """`"a, b,,c"` → ("a", "b", "c")."""
    return tuple(part.strip() for part in text.split(",") if part.strip())


def parse_user_map(text: str) -> dict[str, str]:
    """`"SP1=user1, SP2=user2"` → {"SP1": "user1", "SP2": "user2"} (ValueError if malformed)."""
    mapping = {}
    for pair in split_list(text):
        code, sep, user = (s.strip() for s in pair.partition("="))
        if not sep or not code or not user:
            raise ValueError(f"BC_USER_MAP entry {pair!r} is not CODE=user")
        mapping[code] = user
    return mapping


def check_bc(settings: Settings) -> None:
    """Refuse, naming the settings, when Business Central is not configured."""
    require(OUTBOUND, missing_bc(settings))


@dataclass(frozen=True)
class WebhookConfig:
    url: str = ""
    client_state: str = field(default="", repr=False)
    resources: tuple[str, ...] = ()
    renew_before: float = 86_400.0


@dataclass
class OutboundContext:
    bc: BCClient
    portal: PortalClient
    state: OutboundState
    spool_dir: Path
    mapping: OutboundMapping = field(default_factory=load_mapping)
    users: tuple[str, ...] = ()
    user_map: Mapping[str, str] = field(default_factory=dict)
    options: frozenset[str] = frozenset()
    webhook: WebhookConfig = field(default_factory=WebhookConfig)
    now: Callable[[], datetime] = utcnow
    validate: bool = True  # schema-check every packet before it is uploaded
    push_claim_ttl: float = 900.0
    push_lock_ttl: float = 1_800.0  # a push to one user holds its lock at most this long
    source: BCSource = field(init=False)

    def __post_init__(self) -> None:
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        self.source = BCSource(self.bc)

    def salesperson_codes(self, user: str) -> list[str]:
        """The BC salesperson codes routed to `user`."""
        return sorted(code for code, mapped in self.user_map.items() if mapped == user)

    def user_for(self, salesperson: str | None) -> str | None:
        return self.user_map.get(salesperson) if salesperson else None

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        state: OutboundState | None = None,
        bc: BCClient | None = None,
        portal: PortalClient | None = None,
        budgets: Mapping[str, RequestLimiter] | None = None,
    ) -> OutboundContext:
        """The production composition: Redis state, BC and portal clients from settings
        (`NotConfigured` when BC's are missing and no `bc` client is given). The clients it
        builds spend `budgets` (`"bc"`, `"portal:<app area>"`) when given, else budgets of
        their own; long-running processes pass the shared ones (`pipeline.context`)."""
        if bc is None:
            check_bc(settings)
        if state is None:
            state = RedisOutboundState(redis_for(settings), settings.ledger_namespace)
        app_area = settings.outbound_app_area or next(iter(split_list(settings.dm_app_area)), "")
        with using_limiters(budgets) if budgets is not None else nullcontext():
            bc = bc or BCClient.from_settings(settings)
            portal = portal or PortalClient.from_settings(settings, app_area=app_area)
        return cls(
            bc=bc,
            portal=portal,
            state=state,
            spool_dir=settings.spool_dir,
            mapping=load_mapping(settings.outbound_mapping),
            users=split_list(settings.outbound_users),
            user_map=parse_user_map(settings.bc_user_map),
            options=frozenset({"item_variants"} if settings.outbound_item_variants else ()),
            webhook=WebhookConfig(
                url=settings.webhook_url,
                client_state=settings.webhook_client_state.get_secret_value(),
                resources=split_list(settings.webhook_resources),
                renew_before=settings.webhook_renew_before,
            ),
            push_claim_ttl=settings.outbound_interval,
        )

    def close(self) -> None:
        self.bc.close()
        self.portal.close()
        self.state.close()
