"""Preflight: live, read-only checks of every configured part, before going live.

A check is a plain function `(settings) -> Iterable[CheckResult]`: one row per thing it
proved or could not prove, each saying what to do when it failed (the rows and their helpers:
`check_results.py`). `core_checks()` lists Redis, the portal, the archive, the target and the
webhook URL; a target declares its own checks in the target registry (`targets.live_checks`;
Business Central: `targets/bc/checks.py`).
`run_checks` runs them in order, turns an unexpected exception into a failed row, and masks
every configured secret in what it reports.

Nothing here pulls packets, writes to a target or keeps what it wrote: the archive probe is
removed again and the webhook is only sent BC's validation handshake.
"""

from __future__ import annotations

import logging
import os
import secrets
import uuid
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpx

from packetworker import targets
from packetworker.check_results import Check, CheckResult, describe_error, fail, ok, skip
from packetworker.redact import redact_text

if TYPE_CHECKING:
    from packetworker.settings import Settings

logger = logging.getLogger(__name__)

#: BC gives the handshake about five seconds (business-central.md §6.2, third-party figure).
HANDSHAKE_TIMEOUT = 5.0


# --- running ---------------------------------------------------------------------------------


def secrets_of(settings: Settings) -> tuple[str, ...]:
    """Every secret a check might meet: secret settings, the Redis password, AWS keys."""
    values = [
        getattr(settings, name).get_secret_value()
        for name, field in type(settings).model_fields.items()
        if field.annotation is not None and "SecretStr" in str(field.annotation)
    ]
    values.append(urlsplit(settings.redis_url).password or "")
    values += [os.environ.get(n, "") for n in ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")]
    return tuple(v for v in values if v)


def run_checks(settings: Settings, checks: Iterable[Check] | None = None) -> list[CheckResult]:
    """Run `checks` (default: `core_checks()`) in order; secrets masked in every row."""
    hidden = secrets_of(settings)
    results: list[CheckResult] = []
    for check in core_checks() if checks is None else checks:
        rows: list[CheckResult] = []
        try:
            rows.extend(check(settings))
        except Exception as exc:  # a check must report, never stop the others
            logger.debug("Check %s raised.", getattr(check, "__name__", check), exc_info=True)
            part = rows[-1].part if rows else _part_of(check)
            rows.append(fail(part, f"{type(exc).__name__}: {exc}"))
        results += [CheckResult(r.part, r.status, redact_text(r.detail, *hidden)) for r in rows]
    return results


def _part_of(check: Check) -> str:
    return getattr(check, "__name__", "check").removeprefix("check_").replace("_", " ")


def core_checks() -> list[Check]:
    return [check_redis, check_portal, check_archive, check_target, check_webhook]


# --- core checks -----------------------------------------------------------------------------


def check_redis(settings: Settings) -> Iterator[CheckResult]:
    """Redis answers PING; reports its version (the broker, ledger and locks live there)."""
    from packetworker.outbound.context import redis_for

    where = _redis_where(settings.redis_url)
    client = redis_for(settings)
    try:
        client.ping()
        version = client.info("server").get("redis_version", "?")
    except Exception as exc:
        yield fail("Redis", f"{where} does not answer ({describe_error(exc)}); check REDIS_URL")
        return
    finally:
        client.close()
    yield ok("Redis", f"{where}, Redis {version}")


def _redis_where(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or 'localhost'}:{parts.port or 6379}{parts.path}"


def check_portal(settings: Settings) -> Iterator[CheckResult]:
    """The portal accepts DM_API_KEY for every app area of DM_APP_AREA.

    The probe asks for a download link (`GET /erp/pull/{appArea}/link?path=…`) for a path no
    packet has. Pulling would prove the key too, but the pull list is a queue (receipt
    handles shaped like SQS's, dynamics-mobile.md §3.2) whose listed entries may stay hidden
    for a visibility timeout (§8.7), so a preflight pull could delay real packets. The link
    call changes nothing: the API refuses a wrong or missing `x-api-key` with 401/403 before
    it looks at the path (§2, §3.3), and with an accepted key answers a link or "no such
    packet" (404) — either proves the key.
    """
    from packetworker.outbound.context import split_list
    from packetworker.portal import PortalClient
    from packetworker.portal.errors import PortalAuthError, PortalError, PortalUnavailable

    areas = split_list(settings.dm_app_area)
    if not areas or not settings.dm_api_key.get_secret_value():
        yield fail("portal", "not configured: set DM_APP_AREA and DM_API_KEY (the worker needs it)")
        return
    for area in areas:
        part = f"portal {area}"
        probe = f"push-done/xml/prod/{area}/19700101/packetworker-check/{uuid.uuid4()}.xml"
        client = PortalClient.from_settings(
            settings, app_area=area, retries=1, timeout=min(settings.dm_http_timeout, 10.0)
        )
        try:
            client.link(probe)
        except PortalAuthError as exc:
            yield fail(part, f"API key refused (HTTP {exc.status}); check DM_API_KEY for {area}")
            continue
        except PortalUnavailable as exc:
            yield fail(part, f"{settings.dm_api_url} unavailable ({describe_error(exc)})")
            continue
        except PortalError as exc:
            if exc.status == 404:
                yield ok(part, f"API key accepted by {settings.dm_api_url}")
            else:
                yield fail(part, f"unexpected answer ({describe_error(exc)}); check DM_API_URL")
            continue
        except httpx.HTTPError as exc:
            yield fail(part, f"{settings.dm_api_url} unreachable ({describe_error(exc)})")
            continue
        finally:
            client.close()
        yield ok(part, f"API key accepted by {settings.dm_api_url}")


def check_archive(settings: Settings) -> Iterator[CheckResult]:
    """A probe object is written to ARCHIVE_URL and removed again."""
    from packetworker.pipeline.archive import FileArchive, S3Archive, open_archive

    name = f".packetworker-check/{uuid.uuid4().hex}"
    try:
        archive = open_archive(settings.archive_url, s3_endpoint_url=settings.s3_endpoint_url)
    except Exception as exc:
        yield fail("archive", f"{describe_error(exc)}; check ARCHIVE_URL")
        return
    try:
        if isinstance(archive, FileArchive):
            path = archive.root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"packetworker check\n")
            path.unlink()
            path.parent.rmdir()
        elif isinstance(archive, S3Archive):
            key = archive.prefix + name
            archive.client.put_object(Bucket=archive.bucket, Key=key, Body=b"packetworker check")
            archive.client.delete_object(Bucket=archive.bucket, Key=key)
        else:  # pragma: no cover - open_archive knows only these two
            yield skip("archive", f"no probe for {type(archive).__name__}")
            return
    except Exception as exc:
        yield fail("archive", f"cannot write to {settings.archive_url} ({describe_error(exc)})")
        return
    finally:
        archive.close()
    yield ok("archive", f"{settings.archive_url} writable (probe written and removed)")


def check_target(settings: Settings) -> Iterator[CheckResult]:
    """The configured target's own checks, or a row saying why there are none. A target
    whose settings are missing (or an unknown name) fails here, naming what to set."""
    name = settings.target
    try:
        targets.check_target(name, settings)
    except targets.NotConfigured as exc:
        yield fail(f"target {name}", str(exc))
    else:
        check = targets.live_checks(name)
        if check is not None:
            yield from check(settings)
        elif name in ("plan", "recording") or name.endswith("-emulator"):
            yield skip(f"target {name}", "local target: nothing to reach")
        else:
            yield skip(f"target {name}", "no live checks for this target yet")
    if name != "bc":
        # Outbound pushes and webhooks read Business Central whatever the inbound target is:
        # checked when configured, a "not configured" row otherwise.
        bc_checks = targets.live_checks("bc")
        if bc_checks is not None:
            yield from bc_checks(settings)


def check_webhook(settings: Settings) -> Iterator[CheckResult]:
    """WEBHOOK_URL answers BC's validation handshake: 200 echoing `validationToken` as text,
    on GET and on POST (BC's method is not documented: business-central.md §6.2)."""
    if not settings.webhook_url:
        yield skip("webhook", "not configured (WEBHOOK_URL unset): outbound changes are polled")
        return
    token = secrets.token_urlsafe(16)
    with httpx.Client(timeout=HANDSHAKE_TIMEOUT, follow_redirects=False) as client:
        for method in ("GET", "POST"):
            try:
                response = client.request(
                    method, settings.webhook_url, params={"validationToken": token}
                )
            except httpx.HTTPError as exc:
                yield fail(
                    "webhook",
                    f"{settings.webhook_url} unreachable on {method} ({describe_error(exc)}); "
                    "is the web process running and public?",
                )
                return
            if response.status_code != 200 or response.text != token:
                yield fail(
                    "webhook",
                    f"{method} handshake answered HTTP {response.status_code} without the "
                    f"token; WEBHOOK_URL must reach `packetworker web` at its webhook path",
                )
                return
    yield ok("webhook", f"{settings.webhook_url} answers the validation handshake")
