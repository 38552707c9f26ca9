"""Several suites check against the vendor's seven real packets: make their absence loud."""

from __future__ import annotations

from support.vendor import require_vendor_packets, vendor_packet_paths


def test_the_seven_vendor_packets_are_read_in_place():
    require_vendor_packets()
    assert len(vendor_packet_paths()) == 7
