"""The `packetworker` command line. Each module registers its commands on one Typer app."""

from __future__ import annotations

import sys
from urllib.parse import urlsplit

import redis

from packetworker.cli import (  # noqa: F401  (registers commands)
    bc,
    check,
    outbound,
    packets,
    pipeline,
    portal,
)
from packetworker.cli.app import app
from packetworker.redact import redact_text
from packetworker.settings import get_settings
from packetworker.targets import NotConfigured

# Exit status of a command refused for a missing or wrong setting (as for a usage error).
NOT_CONFIGURED = 2
# Exit status of a command that could not reach a service it needs (Redis).
UNAVAILABLE = 1


def redis_location(url: str) -> str:
    """`REDIS_URL` as shown to an operator: scheme, host, port and database, no password."""
    try:
        parts = urlsplit(url)
        host = f"{parts.hostname or 'localhost'}:{parts.port or 6379}"
    except ValueError:
        return "REDIS_URL"
    return f"{parts.scheme}://{host}{parts.path}"


def main() -> None:
    """Run the CLI; a missing setting or an unreachable Redis ends it with one line saying
    what to do, not a traceback."""
    try:
        app()
    except NotConfigured as exc:
        print(f"packetworker: {exc}", file=sys.stderr, flush=True)
        sys.exit(NOT_CONFIGURED)
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        url = get_settings().redis_url
        reason = redact_text(str(exc).rstrip("."), urlsplit(url).password or "")
        print(
            f"packetworker: Redis at {redis_location(url)} does not answer ({reason}); "
            "start Redis or point REDIS_URL at it",
            file=sys.stderr,
            flush=True,
        )
        sys.exit(UNAVAILABLE)
