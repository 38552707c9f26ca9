"""The vendor's real packets, read in place from `../shared/reference/vendor-packets`.

They are never copied into the repository. Tests use them when the folder is present; on CI
(`CI` set), where it always is, a missing folder fails the run instead of skipping tests.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VENDOR_PACKETS = Path(
    os.environ.get(
        "PACKETWORKER_VENDOR_PACKETS", ROOT.parent / "shared" / "reference" / "vendor-packets"
    )
)


def vendor_packet_paths() -> list[Path]:
    """Every vendor packet (`*.xml`), sorted; [] when the folder is absent (see below)."""
    return sorted(VENDOR_PACKETS.glob("*.xml")) if VENDOR_PACKETS.is_dir() else []


def require_vendor_packets() -> None:
    """Fail on CI, skip elsewhere, when the vendor packets are not there to read."""
    if vendor_packet_paths():
        return
    message = f"vendor reference packets are not available at {VENDOR_PACKETS}"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def vendor_packet_path(packet_id: str) -> Path:
    """One vendor packet by id."""
    require_vendor_packets()
    return VENDOR_PACKETS / f"{packet_id}.xml"
