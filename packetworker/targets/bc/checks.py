"""Business Central's preflight checks (`packetworker check`), live and read-only.

In order, each needing the one before: the credentials give a token; the company resolves;
the mapping loads and names only entity sets, navigation properties and fields the tenant's
`$metadata` has; the customer payment journal `BC_PAYMENT_JOURNAL` exists. A failure skips
the rest with a row saying so.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import redis

from packetworker.check_results import CheckResult, describe_error, fail, ok, skip
from packetworker.settings import Settings
from packetworker.targets.bc.auth import BCAuth
from packetworker.targets.bc.client import BCClient
from packetworker.targets.bc.errors import BCError
from packetworker.targets.bc.metadata import EntityType, Metadata
from packetworker.targets.bc.posted import posted_lookups
from packetworker.targets.mapping import Mapping, MappingError, load_mapping
from packetworker.targets.mapping.config import FieldSet

PART = "Business Central"


def bc_checks(
    settings: Settings, *, transport: httpx.BaseTransport | None = None
) -> Iterator[CheckResult]:
    """Token, company, mapping against `$metadata`, payment journal."""
    missing = [
        name.upper() for name in ("bc_tenant", "bc_client_id") if not getattr(settings, name)
    ]
    if not (
        settings.bc_client_secret.get_secret_value() or settings.bc_refresh_token.get_secret_value()
    ):
        missing.append("BC_CLIENT_SECRET")
    if missing:
        needed = settings.target == "bc" or bool(settings.outbound_users)
        row = fail if needed else skip
        yield row(f"{PART} token", f"not configured: set {', '.join(missing)}")
        return
    auth = BCAuth.from_settings(settings, transport=transport, timeout=10.0)
    client = BCClient(
        api_url=settings.bc_api_url,
        tenant=settings.bc_tenant,
        environment=settings.bc_environment,
        auth=auth,
        company=settings.bc_company or None,
        transport=transport,
        timeout=10.0,
        retries=2,
    )
    with client:
        yield from _with_client(settings, client, auth)


def _with_client(settings: Settings, client: BCClient, auth: BCAuth) -> Iterator[CheckResult]:
    rest = ("company", "mapping", "payment journal")
    try:
        row = _token_row(auth)
    except redis.RedisError as exc:
        row = fail(f"{PART} token", f"cannot read the stored refresh token ({describe_error(exc)})")
    yield row
    if row.failed:
        yield from _skipped(rest, "needs a token")
        return

    try:
        company = client.company_id
    except (BCError, httpx.HTTPError) as exc:
        yield fail(f"{PART} company", _company_advice(client, exc))
        yield from _skipped(rest[1:], "needs the company")
        return
    wanted = settings.bc_company or "the only company"
    yield ok(f"{PART} company", f"{wanted} resolves to {company} ({settings.bc_environment})")

    yield _mapping_row(settings, client)

    code = settings.bc_payment_journal
    try:
        journal = client.customer_payment_journal(code)
    except (BCError, httpx.HTTPError) as exc:
        yield fail(f"{PART} payment journal", f"cannot read journals ({describe_error(exc)})")
        return
    if journal is None:
        yield fail(
            f"{PART} payment journal",
            f"no customer payment journal {code!r}; create it in BC or set BC_PAYMENT_JOURNAL",
        )
    else:
        yield ok(f"{PART} payment journal", f"{code} exists")


def _token_row(auth: BCAuth) -> CheckResult:
    """A token, and how it is obtained: client credentials, or the stored refresh token (how
    it was obtained, when it was last refreshed before this check)."""
    before = auth.stored() if auth.is_delegated else None
    try:
        auth.access_token()
    except (BCError, httpx.HTTPError) as exc:
        if auth.is_delegated:
            hint = "sign in with `packetworker bc login` (BC_REDIRECT_URI, BC_CLIENT_ID)"
        else:
            hint = "check BC_TENANT, BC_CLIENT_ID and BC_CLIENT_SECRET"
        return fail(
            f"{PART} token", f"no token from {auth.token_url} ({describe_error(exc)}); {hint}"
        )
    if not auth.is_delegated:
        return ok(f"{PART} token", f"client credentials: token from {auth.token_url}")
    history = before.describe() if before is not None else "refresh token from BC_REFRESH_TOKEN"
    return ok(
        f"{PART} token",
        f"authorization code (delegated): token from {auth.token_url}; refresh token {history}",
    )


def _skipped(parts: tuple[str, ...], why: str) -> Iterator[CheckResult]:
    for part in parts:
        yield skip(f"{PART} {part}", f"not checked: {why}")


def _company_advice(client: BCClient, exc: Exception) -> str:
    try:
        names = ", ".join(sorted(str(c.get("name")) for c in client.companies()))
    except Exception:  # the listing itself failed: report the first error alone
        names = ""
    known = f" (companies: {names})" if names else ""
    return f"{describe_error(exc)}{known}; set BC_COMPANY to one of them"


def _mapping_row(settings: Settings, client: BCClient) -> CheckResult:
    part = f"{PART} mapping"
    try:
        mapping = load_mapping(settings.bc_mapping)
    except (MappingError, OSError, ValueError) as exc:
        return fail(part, f"{describe_error(exc)}; check BC_MAPPING")
    try:
        metadata = client.metadata()
    except (BCError, httpx.HTTPError, ValueError) as exc:
        return fail(part, f"cannot read $metadata ({describe_error(exc)})")
    gaps = mapping_gaps(mapping, metadata)
    if gaps:
        shown = "; ".join(gaps[:8]) + (f"; and {len(gaps) - 8} more" if len(gaps) > 8 else "")
        return fail(part, f"{mapping.name} names what BC lacks: {shown}; fix the mapping")
    return ok(part, f"{mapping.name}: every entity and field exists in BC")


def mapping_gaps(mapping: Mapping, metadata: Metadata) -> list[str]:
    """What `mapping` names that `metadata` lacks, as `entity.field` phrases (pure)."""
    gaps: list[str] = []
    for table, spec in mapping.tables.items():
        own = _targets(spec)
        # (entity, renamed child collections, fields written) per route case, or the table's
        entities = [(spec.entity, {}, own)] if spec.entity else []
        for case in spec.routes.cases.values() if spec.routes else ():
            fields = (own - set(case.drop)) | set(case.fields) | set(case.static)
            entities.append((case.entity, case.collections, fields | set(case.formula)))
        for entity, renamed, fields in entities:
            shape = metadata.of_set(entity)
            if shape is None:
                gaps.append(f"{table} → entity set {entity!r}")
                continue
            gaps += _field_gaps(entity, shape, fields)
            for child_table, child in spec.children.items():
                if not child.emit:
                    continue
                collection = renamed.get(child_table, child.collection)
                child_shape = _child_shape(metadata, shape, entity, collection)
                if child_shape is None:
                    gaps.append(f"{entity} → collection {collection!r}")
                    continue
                gaps += _field_gaps(collection, child_shape, _targets(child))
    gaps += _posted_gaps(mapping, metadata)
    return sorted(set(gaps))


def _posted_gaps(mapping: Mapping, metadata: Metadata) -> list[str]:
    """The entity sets and fields the mapping's posted-document look-ups read."""
    posted = posted_lookups(mapping)
    gaps: list[str] = []
    for document, places in (posted.documents or {}).items():
        for entity, statuses in places:
            shape = metadata.of_set(entity)
            if shape is None:
                gaps.append(f"{document} posted as → entity set {entity!r}")
                continue
            fields = set(posted.key) | ({"status"} if statuses is not None else set())
            gaps += _field_gaps(entity, shape, fields)
    return gaps


def _child_shape(
    metadata: Metadata, parent: EntityType, entity: str, collection: str
) -> EntityType | None:
    """A child collection is a navigation property of its parent or, for rows posted one by
    one (journal lines: the entity's own set), an entity set."""
    if collection in parent.navigation:
        return metadata.types.get(parent.navigation[collection])
    if collection == entity:
        return metadata.of_set(collection)
    return None


def _targets(rows: FieldSet) -> set[str]:
    """Top-level properties the rows write: a field placed `into` a complex one counts as
    that one."""
    names: set[str] = set(rows.static)
    for section in (rows.fields, rows.formula, rows.lookups):
        for name, spec in section.items():
            names.add(spec.into or name)
    return names


def _field_gaps(entity: str, shape: EntityType, fields: set[str]) -> list[str]:
    known = shape.properties | set(shape.navigation)
    return [f"{entity}.{name}" for name in sorted(fields - known)]
