"""Dataverse Web API v9.2 (Dynamics 365 CE / Power Platform): client, auth, batch, errors."""

from packetworker.targets.dataverse.auth import DataverseAuth
from packetworker.targets.dataverse.batch import BatchOperation, BatchResponse
from packetworker.targets.dataverse.client import DataverseClient
from packetworker.targets.dataverse.errors import (
    DataverseAuthError,
    DataverseError,
    DuplicateDetected,
    DuplicateRecord,
    InvalidRequest,
    LookupTargetNotFound,
    PreconditionFailed,
    RecordNotFound,
    Throttled,
    Unavailable,
)
from packetworker.targets.dataverse.odata import bind, record_path

__all__ = [
    "BatchOperation",
    "BatchResponse",
    "DataverseAuth",
    "DataverseAuthError",
    "DataverseClient",
    "DataverseError",
    "DuplicateDetected",
    "DuplicateRecord",
    "InvalidRequest",
    "LookupTargetNotFound",
    "PreconditionFailed",
    "RecordNotFound",
    "Throttled",
    "Unavailable",
    "bind",
    "record_path",
]
