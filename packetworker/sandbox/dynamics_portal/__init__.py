"""Dynamics portal proxy emulator."""

from packetworker.sandbox.dynamics_portal.emulator import DynamicsPortalEmulator

__all__ = ["DynamicsPortalEmulator"]
