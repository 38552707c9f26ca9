"""Fixtures for the Business Central target: a seeded emulator over real HTTP, targets
connected to it, and helpers that read packets the way the pipeline does."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from support.vendor import vendor_packet_path

from packetworker.packets.model import PacketHeader, Record, Status, Table
from packetworker.packets.reader import open_packet
from packetworker.sandbox.bc import BCSandbox
from packetworker.sandbox.targets.seed import load_seed, seed
from packetworker.targets import ApplyContext, RecordOutcome
from packetworker.targets.base import WriteJournal
from packetworker.targets.bc import BCAuth, BCClient
from packetworker.targets.bc.target import BCTarget

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples"


class Sleeps(list):
    """An injectable sleep that records the waits a client asked for instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


class CrashAfter(httpx.BaseTransport):
    """A transport that dies like a killed worker: after `limit` `$batch` calls went through,
    the next request raises before it is sent."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.batches = 0
        self._inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.batches >= self.limit:
            raise SimulatedCrash(f"worker killed after {self.batches} $batch calls")
        response = self._inner.handle_request(request)
        if request.url.path.endswith("/$batch"):
            self.batches += 1
        return response

    def close(self) -> None:
        self._inner.close()


class SimulatedCrash(BaseException):
    """Not an Exception: like SIGKILL, nothing in the target may catch it."""


@pytest.fixture
def bc() -> Iterator[BCSandbox]:
    """A BC emulator seeded with the customers, items and journal the samples refer to."""
    with BCSandbox(page_size=10) as sandbox:
        seed(sandbox, load_seed())
        yield sandbox


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def make_target(bc: BCSandbox, sleeps: Sleeps) -> Iterator[Callable[..., BCTarget]]:
    targets: list[BCTarget] = []

    def make(
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 30.0,
        client_secret: str | None = None,
        **options,
    ) -> BCTarget:
        secret = client_secret or bc.client_secret
        auth = BCAuth(token_url=bc.token_url, client_id=bc.client_id, client_secret=secret)
        client = BCClient(
            api_url=bc.api_url,
            tenant=bc.tenant,
            environment=bc.environment,
            auth=auth,
            company="CRONUS",
            transport=transport,
            sleep=sleeps,
            timeout=timeout,
        )
        target = BCTarget(client=client, **options)
        targets.append(target)
        return target

    yield make
    for target in targets:
        target.close()


@pytest.fixture
def target(make_target) -> BCTarget:
    return make_target()


def rec(table: str, status: Status = Status.INSERT, /, **fields: str) -> Record:
    """A packet record built in code; keyword names are the packet's field names."""
    return Record(Table(table, {"name": table}), status, dict(fields))


def read_packet(path: Path) -> tuple[PacketHeader, list[Record]]:
    with open_packet(path) as reader:
        return reader.header, list(reader)


def vendor_packet(packet_id: str) -> Path:
    return vendor_packet_path(packet_id)


def apply_file(
    target: BCTarget, path: Path, *, journal: WriteJournal | None = None
) -> list[RecordOutcome]:
    header, records = read_packet(path)
    return apply_records(target, records, header=header, packet_id=path.stem, journal=journal)


def apply_records(
    target: BCTarget,
    records: list[Record],
    *,
    header: PacketHeader | None = None,
    packet_id: str = "p1",
    journal: WriteJournal | None = None,
) -> list[RecordOutcome]:
    ctx = ApplyContext(
        app_area="TEST", packet_id=packet_id, user="rep-1", header=header, journal=journal
    )
    return target.apply(records, ctx=ctx)


def documents(bc: BCSandbox, entity_set: str, lines: str) -> dict[str, list[tuple]]:
    """externalDocumentNumber -> [(item, quantity, unit of measure)] of each stored document."""
    out: dict[str, list[tuple]] = {}
    stored_lines = bc.store(None, lines)
    for header in bc.store(None, entity_set):
        assert header["externalDocumentNumber"] not in out, "document stored twice"
        out[header["externalDocumentNumber"]] = [
            (line["lineObjectNumber"], line["quantity"], line["unitOfMeasureCode"])
            for line in sorted(stored_lines, key=lambda line: line["sequence"])
            if line["documentId"] == header["id"]
        ]
    return out


def orders(bc: BCSandbox) -> dict[str, list[tuple]]:
    return documents(bc, "salesOrders", "salesOrderLines")


def credit_memos(bc: BCSandbox) -> dict[str, list[tuple]]:
    return documents(bc, "salesCreditMemos", "salesCreditMemoLines")


def payments(bc: BCSandbox) -> list[tuple]:
    return sorted(
        (p["externalDocumentNumber"], p["customerNumber"], p["amount"], p["appliesToInvoiceNumber"])
        for p in bc.store(None, "customerPayments")
    )


def api_requests(bc: BCSandbox) -> list[tuple[str, str]]:
    """(method, path after the company) of every API request the emulator answered."""
    out = []
    for r in bc.requests:
        if "/companies(" in r.path:
            out.append((r.method, r.path.split(")/", 1)[1]))
        elif r.path.endswith("$batch"):
            out.append((r.method, "$batch"))
    return out
