"""A local Business Central API v2.0 emulator (OAuth, OData, $batch, webhooks)."""

from packetworker.sandbox.base import Clock, LoggedRequest
from packetworker.sandbox.bc.server import BCSandbox

__all__ = ["BCSandbox", "Clock", "LoggedRequest"]
