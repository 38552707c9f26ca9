"""Dataverse requests per applied record: `$batch` with one change set per document, next to
one call per record, both measured in this run against the Dataverse emulator on loopback;
and the same orders as one packet each (as devices send them), applied packet by packet or
in groups (`apply_group`, as the pipeline's `process_packets` does), sharing `$batch`es.

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


def field_sales_day(*, orders: int, lines: int, items: int, customers: int) -> list[list[Record]]:
    """One packet per order: its visit, the order and its lines."""
    packets: list[list[Record]] = []
    for number in range(orders):
        out: list[Record] = []
        packets.append(out)
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
    return packets


def measure(
    packets: list[list[Record]], *, customers: int, items: int, use_batch: bool, group: int
) -> tuple:
    """Apply `packets` in groups of `group` (one `apply_group` call each); the applied
    records, the Web API requests and the order lines created."""
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
        outcomes = []
        try:
            for start in range(0, len(packets), group):
                results = target.apply_group(
                    [
                        (records, ApplyContext("BENCH", f"p{n}", header=PacketHeader("bench")))
                        for n, records in enumerate(packets[start : start + group], start)
                    ]
                )
                for result in results:
                    if isinstance(result, Exception):
                        raise SystemExit(f"a packet failed: {result}")
                    outcomes += result
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
    parser.add_argument("--group", type=int, default=100, help="packets per apply_group")
    args = parser.parse_args()
    quiet_server_logs()
    packets = field_sales_day(
        orders=args.orders, lines=args.lines, items=args.items, customers=args.customers
    )
    day = [[record for packet in packets for record in packet]]  # the whole day, one packet
    print(
        f"{len(day[0])} records: {args.orders} orders x {args.lines} lines + 1 visit each; "
        f"{args.customers} customers, {args.items} items"
    )
    modes = (
        ("one call per record", day, False, 1),
        ("$batch, change sets", day, True, 1),
        ("$batch, per packet", packets, True, 1),
        (f"$batch, groups of {args.group}", packets, True, args.group),
    )
    rows = []
    for label, applied_packets, use_batch, group in modes:
        applied, requests, lines = measure(
            applied_packets,
            customers=args.customers,
            items=args.items,
            use_batch=use_batch,
            group=group,
        )
        rows.append((label, applied, requests, requests / applied, lines))
    baseline = rows[0][3]
    print(f"{'mode':<26}{'applied':>9}{'requests':>10}{'req/record':>12}{'vs baseline':>13}")
    for label, applied, requests, per_record, _ in rows:
        print(
            f"{label:<26}{applied:>9}{requests:>10}{per_record:>12.4f}"
            f"{per_record / baseline:>12.3f}x"
        )
    per_packet, grouped = rows[2][2], rows[3][2]
    print(
        f"one packet per order: {per_packet / args.orders:.2f} requests per packet alone, "
        f"{grouped / args.orders:.3f} grouped ({grouped / per_packet:.3f}x)"
    )
    per_record = rows[1][3]
    verdict = "meets" if per_record <= GOAL else "MISSES"
    print(f"$batch: {per_record:.4f} requests per applied record ({verdict} the goal <= {GOAL})")
    if per_record > GOAL:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
