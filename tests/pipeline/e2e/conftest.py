"""Fixtures for end-to-end tests: a portal sandbox over real HTTP and a `Deployment` of real
`dramatiq` worker processes on real Redis, both private to the test; the deployment's broker is
Redis or RabbitMQ (`broker`, tests/conftest.py), so each test runs on both."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from packetworker.sandbox import PortalSandbox

from .harness import Deployment

APP_AREA = "E2E"
API_KEY = "e2e-api-key-0123456789"


@pytest.fixture
def sandbox() -> Iterator[PortalSandbox]:
    # A short visibility timeout re-lists unacknowledged packets within the test's time scale,
    # as the real queue does after its (longer) one.
    with PortalSandbox(app_areas={APP_AREA: API_KEY}, visibility_timeout=2) as portal:
        yield portal


@pytest.fixture
def deployment(
    tmp_path: Path, redis_url: str, sandbox: PortalSandbox, broker: str
) -> Iterator[Deployment]:
    deployment = Deployment(
        root=tmp_path,
        redis_url=redis_url,
        portal_url=sandbox.url,
        api_key=API_KEY,
        app_area=APP_AREA,
        broker_url=broker,
    )
    yield deployment
    deployment.close()


def order_packet(number: int, *, user: str = "rep-1", lines: int = 2) -> bytes:
    """A small sales order as the Field Sales app sends it: one header, a few lines."""
    rows = [
        f'<r status="insert"><DMS_ROWID>{uuid.uuid4()}</DMS_ROWID>'
        f"<DocumentNo>SO-{number:05d}</DocumentNo><CustomerNo>C{number % 17:04d}</CustomerNo>"
        f"<OrderDate>2026-11-20</OrderDate></r>"
    ]
    line_rows = "".join(
        f'<r status="insert"><DMS_ROWID>{uuid.uuid4()}</DMS_ROWID>'
        f"<DocumentNo>SO-{number:05d}</DocumentNo><LineNo>{line * 10000}</LineNo>"
        f"<ItemNo>ITEM-{line:03d}</ItemNo><Quantity>{line + 1}</Quantity></r>"
        for line in range(1, lines + 1)
    )
    return (
        f'<NavMobileSync salesmancode="{user}">'
        f'<table tablename="SalesHeader" name="SalesHeader">{"".join(rows)}</table>'
        f'<table tablename="SalesLine" name="SalesLine">{line_rows}</table>'
        "</NavMobileSync>"
    ).encode()
