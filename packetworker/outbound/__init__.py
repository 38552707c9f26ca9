"""Outbound: Business Central → mobile users (master-data pushes, documents, webhooks).

Pure builders and BC readers beside the pipeline: no Dramatiq here. The pipeline's
`outbound_actors` and the `web` process call these plain functions.
"""

from packetworker.outbound.context import OutboundContext, WebhookConfig, parse_user_map
from packetworker.outbound.mapping import MappingError, OutboundMapping, load_mapping
from packetworker.outbound.notifications import (
    Handled,
    Notification,
    handle_notification,
    parse_notification,
    poll_changes,
)
from packetworker.outbound.push import (
    DocumentOutcome,
    InvalidOutboundPacket,
    Mode,
    PushOutcome,
    push_document,
    push_user,
)
from packetworker.outbound.state import (
    MemoryOutboundState,
    OutboundState,
    RedisOutboundState,
    SubscriptionRecord,
)
from packetworker.outbound.subscriptions import SubscriptionOutcome, ensure_subscriptions

__all__ = [
    "DocumentOutcome",
    "Handled",
    "InvalidOutboundPacket",
    "MappingError",
    "MemoryOutboundState",
    "Mode",
    "Notification",
    "OutboundContext",
    "OutboundMapping",
    "OutboundState",
    "PushOutcome",
    "RedisOutboundState",
    "SubscriptionOutcome",
    "SubscriptionRecord",
    "WebhookConfig",
    "ensure_subscriptions",
    "handle_notification",
    "load_mapping",
    "parse_notification",
    "parse_user_map",
    "poll_changes",
    "push_document",
    "push_user",
]
