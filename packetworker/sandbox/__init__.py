"""Local emulators for development, demos and tests.

`PortalSandbox` emulates the Dynamics Mobile ERP API (pull lists with SQS-like receipt
handles, download links, done, push) over real HTTP on loopback, with moto's S3 behind a
front that enforces presigned-URL expiry.
"""

from packetworker.sandbox.base import Clock, LoggedRequest
from packetworker.sandbox.faults import Faults
from packetworker.sandbox.portal_sandbox import PortalSandbox
from packetworker.sandbox.records import DoneCall, Upload
from packetworker.sandbox.serve import serve_forever

__all__ = [
    "Clock",
    "DoneCall",
    "Faults",
    "LoggedRequest",
    "PortalSandbox",
    "Upload",
    "serve_forever",
]
