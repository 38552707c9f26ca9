"""The Dynamics portal proxy (a REST facade over Dynamics 365): client, session auth, errors."""

from packetworker.targets.dynamics_portal.auth import Session, SessionAuth
from packetworker.targets.dynamics_portal.client import PATH_PREFIX, DynamicsPortalClient
from packetworker.targets.dynamics_portal.errors import (
    DuplicateRecord,
    DynamicsPortalAuthError,
    DynamicsPortalError,
    InvalidRequest,
    RecordNotFound,
    Throttled,
    Unavailable,
)

__all__ = [
    "PATH_PREFIX",
    "DuplicateRecord",
    "DynamicsPortalAuthError",
    "DynamicsPortalClient",
    "DynamicsPortalError",
    "InvalidRequest",
    "RecordNotFound",
    "Session",
    "SessionAuth",
    "Throttled",
    "Unavailable",
]
