"""The settings every CRM target takes: its mapping, the contact mapping, the record-error
policy."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from packetworker.targets.mapping import load_mapping

if TYPE_CHECKING:
    from packetworker.settings import Settings

RecordErrors = Literal["quarantine", "skip"]


def crm_options(settings: Settings, mapping: str) -> dict[str, Any]:
    """The settings every CRM target takes: its mapping, the contact mapping, the policy."""
    contacts = settings.contact_mapping
    return {
        "mapping": load_mapping(mapping),
        "contact_mapping": load_mapping(contacts) if contacts else None,
        "record_errors": settings.crm_record_errors,
    }
