"""A local Business Central API v2.0 emulator (OAuth, OData, $batch, webhooks)."""

from packetworker.sandbox.bc.clock import ManualClock
from packetworker.sandbox.bc.server import BCSandbox, LoggedRequest

__all__ = ["BCSandbox", "LoggedRequest", "ManualClock"]
