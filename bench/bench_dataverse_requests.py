"""Dataverse requests per applied record: `$batch` with one change set per document, next to
one call per record, both measured in this run against the Dataverse emulator on loopback.

The packet is a day of field sales: `--orders` sales orders of `--lines` lines each (items
from a catalogue of `--items`), a visit activity per order, for `--customers` customers.
Requests are counted at the emulator (the Web API only; token requests are not records'
cost). The goal is <= 0.1 requests per applied record with `$batch`.

    python bench/bench_dataverse_requests.py [--orders 200] [--lines 8] [--items 40]
"""

from __future__ import annotations

import argparse
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from packetworker.packets.model import PacketHeader, Record, Status, Table  # noqa: E402
from packetworker.sandbox.dataverse import DataverseEmulator  # noqa: E402
from packetworker.sandbox.targets.crm import CREDENTIALS, quiet_server_logs  # noqa: E402
from packetworker.sandbox.targets.dataverse import field_sales_entities  # noqa: E402
from packetworker.targets.base import ApplyContext, Outcome  # noqa: E402
from packetworker.targets.dataverse import DataverseAuth, DataverseClient  # noqa: E402
from packetworker.targets.dataverse.target import DataverseTarget  # noqa: E402
from packetworker.targets.mapping import load_mapping  # noqa: E402

GOAL = 0.1


def record(table: str, **fields: str) -> Record:
    return Record(Table(table, {"name": table}), Status.INSERT, dict(fields))


def field_sales_day(*, orders: int, lines: int, items: int, customers: int) -> list[Record]:
    out: list[Record] = []
    for number in range(orders):
        customer = f"C-{number % customers:04d}"
        document = f"SO-{number:05d}"
        out.append(
            record(
                "CustomerActivity",
                DMS_ROWID=str(uuid.uuid4()),
                CustomerNo=customer,
                VisitNo=f"V-{number:05d}",
                OnDate="2026-03-11T09:22:10Z",
                Action="0",
            )
        )
        out.append(
            record(
                "SalesHeader",
                DMS_ROWID=str(uuid.uuid4()),
                no=document,
                documentType="0",
                customerNo=customer,
            )
        )
        for line in range(lines):
            out.append(
                record(
                    "SalesLine",
                    DMS_ROWID=str(uuid.uuid4()),
                    documentNo=document,
                    lineNo=str((line + 1) * 1000),
                    no=f"I-{(number * lines + line) % items:04d}",
                    quantity=str(line + 1),
                    unitOfMeasure="PCS",
                    unitPrice="1.25",
                )
            )
    return out


def measure(records: list[Record], *, customers: int, items: int, use_batch: bool) -> tuple:
    emulator = DataverseEmulator(
        clients={CREDENTIALS.client_id: CREDENTIALS.client_secret},
        entities=field_sales_entities(),
    )
    with emulator:
        for number in range(customers):
            emulator.seed("accounts", accountnumber=f"C-{number:04d}", name=f"Customer {number}")
        for number in range(items):
            emulator.seed("products", productnumber=f"I-{number:04d}", name=f"Item {number}")
        emulator.seed("uoms", name="PCS")
        auth = DataverseAuth(
            environment_url=emulator.url,
            tenant=emulator.tenant,
            client_id=CREDENTIALS.client_id,
            client_secret=CREDENTIALS.client_secret,
            token_url=emulator.token_url,
        )
        target = DataverseTarget(
            DataverseClient(emulator.url, auth=auth),
            mapping=load_mapping("dataverse-field-sales"),
            use_batch=use_batch,
        )
        try:
            ctx = ApplyContext("BENCH", "bench-packet", header=PacketHeader("bench-user"))
            outcomes = target.apply(records, ctx=ctx)
        finally:
            target.close()
        applied = sum(1 for o in outcomes if o.outcome is Outcome.APPLIED)
        failed = [o for o in outcomes if o.outcome is Outcome.FAILED]
        if failed:
            raise SystemExit(f"{len(failed)} records failed, e.g. {failed[0].message}")
        requests = len([r for r in emulator.requests if "/api/data/" in r.path])
        created = len(emulator.records("salesorderdetails"))
    return applied, requests, created


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=200)
    parser.add_argument("--lines", type=int, default=8)
    parser.add_argument("--items", type=int, default=40)
    parser.add_argument("--customers", type=int, default=25)
    args = parser.parse_args()
    quiet_server_logs()
    records = field_sales_day(
        orders=args.orders, lines=args.lines, items=args.items, customers=args.customers
    )
    print(
        f"{len(records)} records: {args.orders} orders x {args.lines} lines + 1 visit each; "
        f"{args.customers} customers, {args.items} items"
    )
    rows = []
    for label, use_batch in (("one call per record", False), ("$batch, change sets", True)):
        applied, requests, lines = measure(
            records, customers=args.customers, items=args.items, use_batch=use_batch
        )
        rows.append((label, applied, requests, requests / applied, lines))
    baseline = rows[0][3]
    print(f"{'mode':<22}{'applied':>9}{'requests':>10}{'req/record':>12}{'vs baseline':>13}")
    for label, applied, requests, per_record, _ in rows:
        print(
            f"{label:<22}{applied:>9}{requests:>10}{per_record:>12.4f}"
            f"{per_record / baseline:>12.3f}x"
        )
    per_record = rows[1][3]
    verdict = "meets" if per_record <= GOAL else "MISSES"
    print(f"$batch: {per_record:.4f} requests per applied record ({verdict} the goal <= {GOAL})")
    if per_record > GOAL:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
