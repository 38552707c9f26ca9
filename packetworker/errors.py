"""The root of every error packetworker raises on purpose.

`except PacketworkerError` separates what the project raised — with a redacted message and a
verdict on retrying — from bugs and library errors. `transient` says whether the same work may
succeed later (a service away, a slot not free); each layer's own classes keep their names
and set it (as a class attribute, or per instance where the answer decides).

Pure: no imports, so every layer (the pure `packets/` included) can derive from it.
"""

from __future__ import annotations


class PacketworkerError(Exception):
    """Base of the project's errors. `transient`: worth trying again later."""

    transient: bool = False
