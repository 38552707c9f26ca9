"""CRM as a Service emulator."""

from packetworker.sandbox.crmaas.emulator import CrmaasEmulator

__all__ = ["CrmaasEmulator"]
