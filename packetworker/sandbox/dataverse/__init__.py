"""Dataverse Web API v9.2 emulator (token endpoint included)."""

from packetworker.sandbox.dataverse.emulator import DataverseEmulator
from packetworker.sandbox.dataverse.model import AlternateKey, EntityDef, Lookup, default_entities

__all__ = ["AlternateKey", "DataverseEmulator", "EntityDef", "Lookup", "default_entities"]
