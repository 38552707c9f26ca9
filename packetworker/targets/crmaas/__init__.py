"""CRM as a Service (TeamsWork) REST API: client, subscription-key auth, errors."""

from packetworker.targets.crmaas.auth import SubscriptionKeyAuth
from packetworker.targets.crmaas.client import CrmaasClient, Resource
from packetworker.targets.crmaas.errors import (
    CrmaasAuthError,
    CrmaasConflict,
    CrmaasError,
    CrmaasNotFound,
    CrmaasThrottled,
    CrmaasUnavailable,
    CrmaasValidationError,
)

__all__ = [
    "CrmaasAuthError",
    "CrmaasClient",
    "CrmaasConflict",
    "CrmaasError",
    "CrmaasNotFound",
    "CrmaasThrottled",
    "CrmaasUnavailable",
    "CrmaasValidationError",
    "Resource",
    "SubscriptionKeyAuth",
]
