"""Dataverse Web API v9.2 emulator (token endpoint included)."""

from packetworker.sandbox.dataverse.emulator import DataverseEmulator
from packetworker.sandbox.dataverse.model import EntityDef, Lookup, default_entities

__all__ = ["DataverseEmulator", "EntityDef", "Lookup", "default_entities"]
