"""Entry point of the `worker` process: `dramatiq packetworker.pipeline.worker`.

The dramatiq CLI imports this module in every worker process. It sets up JSON logging with
secrets redacted, makes the settings' Redis broker the global one, and only then imports the
actors, which bind to the global broker when declared.
"""

from __future__ import annotations

from packetworker.logs import setup_logging
from packetworker.pipeline.broker import secrets_of, setup_broker
from packetworker.pipeline.context import check_configured
from packetworker.settings import get_settings
from packetworker.targets import NotConfigured

_settings = get_settings()
# dramatiq's CLI configured logging to its pipe already; this replaces the root handler with a
# redacting JSON one writing to the same pipe (sys.stderr at this point).
setup_logging(level=_settings.log_level, fmt=_settings.log_format, secrets=secrets_of(_settings))

# `packetworker worker` checked the settings before starting dramatiq; this catches a bare
# `dramatiq packetworker.pipeline.worker` without them, before any message is taken.
try:
    check_configured(_settings, allow_unknown_target=True)
except NotConfigured as exc:
    raise SystemExit(f"packetworker: {exc}") from None

broker = setup_broker(_settings)

# Actors bind to the broker set above, so they are imported only now.
from packetworker.pipeline import actors, outbound_actors  # noqa: E402

__all__ = ["actors", "broker", "outbound_actors"]
