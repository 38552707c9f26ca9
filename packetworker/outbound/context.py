"""`OutboundContext`: the parts the outbound side composes (BC, portal, state, mapping) and
the deployment's choices (users, their companies, salesperson routing, webhook), built once
from `Settings`.

Each mobile user belongs to one BC company (`OUTBOUND_USERS=user@DMCOMPANY,…`), routed by
`BC_COMPANY_MAP` exactly as inbound packets are (`CompanyMap.route`): a user's pushes read
only that company, and the state of those pushes (watermarks, sent index, stock, poll marks,
subscriptions) is kept per company. A user naming no company goes to `BC_COMPANY`, which is
allowed only while the map is empty; with a map, a user naming no mapped company is refused
when the context is built (`NotConfigured`), before any push.

The company is configuration only: it is not inferred from the `companyId` of the packets a
user sent last. A guess from traffic could push one company's prices and customers to a user
of another after one stray packet; a setting cannot.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
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
from packetworker.targets.bc import BCClient, NotFound
from packetworker.targets.bc.companies import DEFAULT, CompanyMap
from packetworker.targets.required import NotConfigured, missing_bc, require

logger = logging.getLogger(__name__)

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


def parse_users(text: str) -> dict[str, str]:
    """`"user1@ACME_MAIN, user2"` → {"user1": "ACME_MAIN", "user2": ""}: mobile user → the
    mobile company (`companyId`) after its last `@`, "" when it names none (ValueError when
    malformed or a user is listed twice: a user's pushes read one company)."""
    users: dict[str, str] = {}
    for entry in split_list(text):
        user, at, company = (s.strip() for s in entry.rpartition("@"))
        if not at:
            user, company = company, ""
        if not user or (at and not company):
            raise ValueError(f"OUTBOUND_USERS entry {entry!r} is not user or user@COMPANY")
        if user in users:
            raise ValueError(f"OUTBOUND_USERS names {user!r} twice")
        users[user] = company
    return users


def check_bc(settings: Settings) -> None:
    """Refuse, naming the settings, when Business Central is not configured, or when an
    outbound user names no company `BC_COMPANY_MAP` maps (one line, before any work)."""
    require(OUTBOUND, missing_bc(settings))
    try:
        routes(
            parse_users(settings.outbound_users),
            parse_user_map(settings.bc_user_map).values(),
            CompanyMap.parse(settings.bc_company_map),
        )
    except ValueError as exc:
        raise NotConfigured(f"{OUTBOUND}: {exc}") from None


def routes(
    users: Mapping[str, str], document_users: Iterable[str], companies: CompanyMap
) -> dict[str, str]:
    """Mobile user → the BC company their pushes read (`DEFAULT` for `BC_COMPANY`), for the
    outbound users and the users documents are routed to (`BC_USER_MAP`); ValueError naming
    the first user whose company the map does not name."""
    routed: dict[str, str] = {}
    for user in (*users, *(u for u in document_users if u not in users)):
        dm = users.get(user, "")
        bc = companies.route(dm) if not companies or dm else None
        if bc is None:
            named = f"names company {dm!r}, not in BC_COMPANY_MAP" if dm else "names no company"
            raise ValueError(
                f"user {user!r} {named}; with BC_COMPANY_MAP set, list it in OUTBOUND_USERS "
                "as user@COMPANY with a mapped company"
            )
        routed[user] = bc.lower()
    return routed


@dataclass(frozen=True)
class Company:
    """One BC company outbound reads: `key` as `BC_COMPANY_MAP` names it (lower-cased;
    `DEFAULT` for `BC_COMPANY`), and its reader. Outbound state of the company is kept under
    `scoped(...)` names, so one company's marks never move another's."""

    key: str
    source: BCSource

    @property
    def label(self) -> str:
        """The company as logs and outcomes name it."""
        return self.key or self.source.client.company or "BC_COMPANY"

    def scoped(self, name: str) -> str:
        """`name` (a user or a resource) within this company: unchanged for `BC_COMPANY`,
        so a one-company deployment keeps the state it had."""
        return f"{self.key}/{name}" if self.key else name


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
    # Mobile user → mobile company (`companyId`); a user absent or "" names none.
    user_companies: Mapping[str, str] = field(default_factory=dict)
    company_map: CompanyMap = field(default_factory=CompanyMap)
    options: frozenset[str] = frozenset()
    webhook: WebhookConfig = field(default_factory=WebhookConfig)
    now: Callable[[], datetime] = utcnow
    validate: bool = True  # schema-check every packet before it is uploaded
    push_claim_ttl: float = 900.0
    push_lock_ttl: float = 1_800.0  # a push to one user holds its lock at most this long
    source: BCSource = field(init=False)  # `BC_COMPANY`'s
    companies: dict[str, Company] = field(init=False)  # by `Company.key`
    _routes: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        """Route every user to its company (`NotConfigured` for one the map lacks) and build
        one reader per company, all on `bc`'s token and pool (`BCClient.for_company`)."""
        try:
            self._routes = routes(
                {u: self.user_companies.get(u, "") for u in self.users},
                self.user_map.values(),
                self.company_map,
            )
        except ValueError as exc:
            raise NotConfigured(f"{OUTBOUND}: {exc}") from None
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        self.source = BCSource(self.bc)
        keys = set(self._routes.values()) or {DEFAULT}
        if not self.company_map:
            keys.add(DEFAULT)
        self.companies = {
            key: Company(key, BCSource(self.bc.for_company(key)) if key else self.source)
            for key in sorted(keys)
        }

    def company_of(self, user: str) -> Company:
        """The company `user`'s pushes read (`BC_COMPANY` for a user never configured, which
        only a map-less deployment can have: with a map, building the context refused it)."""
        return self.companies[self._routes.get(user, DEFAULT)]

    def users_of(self, company: Company) -> list[str]:
        """The outbound users whose pushes read `company`."""
        return [u for u in self.users if self.company_of(u).key == company.key]

    def company_by_id(self, company_id: str) -> Company | None:
        """The company whose GUID is `company_id` (a notification's), None for another. A
        company BC does not have (a wrong map entry) is skipped with a warning, so it does
        not stop the notifications of the others."""
        wanted = company_id.lower()
        for company in self.companies.values():
            try:
                if company.source.client.company_id.lower() == wanted:
                    return company
            except NotFound as exc:
                logger.warning("Company %s is not in Business Central: %s", company.label, exc)
        return None

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
        users = parse_users(settings.outbound_users)
        return cls(
            bc=bc,
            portal=portal,
            state=state,
            spool_dir=settings.spool_dir,
            mapping=load_mapping(settings.outbound_mapping),
            users=tuple(users),
            user_map=parse_user_map(settings.bc_user_map),
            user_companies=users,
            company_map=CompanyMap.parse(settings.bc_company_map),
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
