"""HTTP requests per applied record when the BC target applies 1,000 order lines.

10 sales-order packets of 100 lines each (plus their headers) go to the Business Central
emulator twice, in the same run, on fresh emulators:

- **batched**: `BCTarget` — one `$filter` look-up per entity set per packet (open orders,
  and posted invoices and shipments, where a posted order went), documents as deep inserts
  (header and lines in one operation) grouped into `$batch` calls;
- **naive**: one call per record — per document the same three look-ups, a POST of the
  header and a POST of each line under it (what a record-at-a-time integration does).

It prints the requests the emulator received (token and company calls included) per applied
record for each strategy, and their ratio. Goal: batched <= 0.05 next to naive >= 1.

    python bench/bench_bc_requests.py [--orders 10] [--lines 100]
"""

from __future__ import annotations

import argparse

from packetworker.packets.model import Record, Status, Table
from packetworker.sandbox.bc import BCSandbox
from packetworker.targets.base import ApplyContext, Outcome
from packetworker.targets.bc import BCAuth, BCClient
from packetworker.targets.bc.odata import literal
from packetworker.targets.bc.target import BCTarget

CUSTOMER = "C-BENCH"
ITEM = "ITEM-BENCH"
# Where an order may be: open, or posted as an invoice and a shipment.
POSTED_OR_OPEN = ("salesOrders", "salesInvoices", "salesShipments")


def rec(table: str, **fields: str) -> Record:
    return Record(Table(table, {"name": table}), Status.INSERT, fields)


def packet(order: int, lines: int) -> list[Record]:
    number = f"SO-{order:05d}"
    records = [
        rec(
            "SalesHeader",
            DMS_ROWID=f"h{order}",
            documentType="0",
            no=number,
            customerNo=CUSTOMER,
            dateCreated="2026-03-11T09:00:00Z",
        )
    ]
    records += [
        rec(
            "SalesLine",
            DMS_ROWID=f"h{order}-l{n}",
            documentNo=number,
            lineNo=str(n * 1000),
            no=ITEM,
            quantity=str(n % 7 + 1),
            unitOfMeasure="PCS",
        )
        for n in range(1, lines + 1)
    ]
    return records


def emulator() -> BCSandbox:
    sandbox = BCSandbox(page_size=1000)
    sandbox.start()
    sandbox.add_customer(number=CUSTOMER)
    sandbox.add_item(number=ITEM, unitPrice=1.5)
    return sandbox


def client_for(sandbox: BCSandbox) -> BCClient:
    auth = BCAuth(
        token_url=sandbox.token_url,
        client_id=sandbox.client_id,
        client_secret=sandbox.client_secret,
    )
    return BCClient(
        api_url=sandbox.api_url,
        tenant=sandbox.tenant,
        environment=sandbox.environment,
        auth=auth,
        company="CRONUS",
    )


def batched(packets: list[list[Record]]) -> tuple[int, int]:
    sandbox = emulator()
    target = BCTarget(client=client_for(sandbox))
    applied = 0
    try:
        for n, records in enumerate(packets):
            ctx = ApplyContext(app_area="BENCH", packet_id=f"p{n}")
            applied += sum(o.outcome is Outcome.APPLIED for o in target.apply(records, ctx=ctx))
        return len(sandbox.requests), applied
    finally:
        target.close()
        sandbox.stop()


def naive(packets: list[list[Record]]) -> tuple[int, int]:
    sandbox = emulator()
    client = client_for(sandbox)
    applied = 0
    try:
        for records in packets:
            header, *lines = records
            number = header.fields["no"]
            where = f"externalDocumentNumber eq {literal(number)}"
            if any(client.find_one(name, where) for name in POSTED_OR_OPEN):
                continue
            order = client.create(
                "salesOrders",
                {"externalDocumentNumber": number, "customerNumber": CUSTOMER},
            )
            applied += 1
            for line in lines:
                client.create(
                    f"salesOrders({order['id']})/salesOrderLines",
                    {
                        "lineType": "Item",
                        "lineObjectNumber": line.fields["no"],
                        "quantity": int(line.fields["quantity"]),
                    },
                )
                applied += 1
        return len(sandbox.requests), applied
    finally:
        client.close()
        sandbox.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=10)
    parser.add_argument("--lines", type=int, default=100)
    args = parser.parse_args()
    packets = [packet(n, args.lines) for n in range(args.orders)]
    print(f"{args.orders} orders x {args.lines} lines = {args.orders * args.lines} order lines")
    results = {
        "naive (one call per record)": naive(packets),
        "batched + deep insert": batched(packets),
    }
    per_record = {}
    for name, (requests, applied) in results.items():
        per_record[name] = requests / applied
        print(
            f"{name:30} {requests:6d} requests / {applied} applied records = "
            f"{per_record[name]:.4f} requests per record"
        )
    base, ours = per_record.values()
    print(f"ratio batched / naive: {ours / base:.4f} ({base / ours:.0f}x fewer requests)")
    print(
        f"goal batched <= 0.05: {'met' if ours <= 0.05 else 'MISSED'}; "
        f"naive >= 1: {'met' if base >= 1 else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
