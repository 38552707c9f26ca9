"""Business Central (API v2.0) target: OAuth, a thin typed client, `$batch` and webhooks."""

from packetworker.targets.bc.auth import BCAuth
from packetworker.targets.bc.batch import BatchRequest, BatchResponse
from packetworker.targets.bc.client import BCClient
from packetworker.targets.bc.errors import AuthError, BCError, EntityChanged, NotFound

__all__ = [
    "AuthError",
    "BCAuth",
    "BCClient",
    "BCError",
    "BatchRequest",
    "BatchResponse",
    "EntityChanged",
    "NotFound",
]
