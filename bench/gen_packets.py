"""Synthetic Field Sales packets for benchmarks, written straight to disk in any size.

Records look like real SalesLine records (18 fields, Cyrillic names, GUID row ids), so the
per-record work matches what the worker sees. Generation is plain byte templating: fast,
and independent of the writer under test.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import orjson

FIELDS = (
    "DMS_ROWID", "dateCreated", "no", "lineNo", "documentNo", "name", "quantity",
    "unitOfMeasure", "unitPrice", "amount", "vatAmount", "lineDiscountPercent",
    "lineDiscountAmount", "vatPercent", "totalAmount", "isSuppItem", "salesUnitFactor",
    "actionType",
)  # fmt: skip


def _values(i: int) -> list[str]:
    return [
        str(uuid.UUID(int=i + 1)),
        f"2026-03-{i % 28 + 1:02d}T10:28:{i % 60:02d}.858Z",
        f"{60000 + i % 997}",
        f"{(i % 50 + 1) * 1000}",
        f"BSO-{i // 50:08d}",
        f"Минерална вода Планина {i % 37} x 0.5л",
        f"{i % 9 + 1}",
        "БР",
        f"{i % 400 / 7:.4f}",
        f"{i % 900 / 3:.2f}",
        "0",
        "0",
        "0",
        "20",
        f"{i % 900 / 3:.2f}",
        "false",
        "1",
        str(i % 2),
    ]


def write_xml_packet(path: Path, target_bytes: int) -> int:
    """Write an XML packet of about `target_bytes`; returns the number of records."""
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with open(path, "wb") as f:
        f.write(b'<?xml version="1.0" encoding="UTF-8"?>\n<NavMobileSync salesmancode="bench">')
        f.write(b'<table tablename="SalesLine" name="SalesLine">')
        written = 0
        while written < target_bytes:
            chunk = []
            for _ in range(1000):
                pairs = zip(FIELDS, _values(count), strict=True)
                body = "".join(f"<{k}>{v}</{k}>" for k, v in pairs)
                chunk.append(f'<r status="insert">{body}</r>')
                count += 1
            data = "".join(chunk).encode()
            f.write(data)
            written += len(data)
        f.write(b"</table></NavMobileSync>")
    return count


def write_json_packet(path: Path, target_bytes: int) -> int:
    """Write a JSON packet (the canonical shape) of about `target_bytes`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with open(path, "wb") as f:
        f.write(b'{"salesmancode":"bench","tables":[{"tablename":"SalesLine","records":[')
        written = 0
        while written < target_bytes:
            parts = []
            for _ in range(1000):
                rec = {"status": "insert", "fields": dict(zip(FIELDS, _values(count), strict=True))}
                parts.append(orjson.dumps(rec))
                count += 1
            data = (b"," if written else b"") + b",\n".join(parts)
            f.write(data)
            written += len(data)
        f.write(b"]}]}")
    return count


def write_orders_packet(
    path: Path, target_bytes: int, *, lines: int = 10, pad: int = 0, customer: str = "C-1"
) -> int:
    """Write an XML packet of about `target_bytes` of sales orders (a header and `lines`
    lines each, items `ITEM-01`…), every header first and then every line, as the app
    lists its tables. `pad` adds that many characters of an unmapped `comment` to each line.
    Returns the number of orders. Two passes over the orders: headers, then lines."""
    path.parent.mkdir(parents=True, exist_ok=True)
    line_bytes = len(_order_lines(0, lines, pad))
    orders = max(1, target_bytes // (line_bytes + 200))
    with open(path, "wb") as f:
        f.write(b'<?xml version="1.0" encoding="UTF-8"?>\n<NavMobileSync salesmancode="bench">')
        f.write(b'<table tablename="SalesHeader" name="SalesHeader">')
        for start in range(0, orders, 1000):
            f.write(
                "".join(
                    f'<r status="insert"><DMS_ROWID>{uuid.UUID(int=n + 1)}</DMS_ROWID>'
                    f"<no>SO-{n:08d}</no><documentType>0</documentType>"
                    f"<customerNo>{customer}</customerNo>"
                    f"<dateCreated>2026-03-{n % 28 + 1:02d}T10:28:00Z</dateCreated></r>"
                    for n in range(start, min(start + 1000, orders))
                ).encode()
            )
        f.write(b'</table><table tablename="SalesLine" name="SalesLine">')
        for start in range(0, orders, 100):
            f.write(
                b"".join(
                    _order_lines(n, lines, pad) for n in range(start, min(start + 100, orders))
                )
            )
        f.write(b"</table></NavMobileSync>")
    return orders


def _order_lines(n: int, lines: int, pad: int) -> bytes:
    out = []
    for i in range(1, lines + 1):
        _, created, _, _, _, name, *_rest = _values(n * lines + i)
        out.append(
            f'<r status="insert"><DMS_ROWID>{uuid.UUID(int=(n + 1) << 32 | i)}</DMS_ROWID>'
            f"<documentNo>SO-{n:08d}</documentNo><lineNo>{i * 10000}</lineNo>"
            f"<no>ITEM-{i % 10 + 1:02d}</no><quantity>{i % 9 + 1}</quantity>"
            f"<dateCreated>{created}</dateCreated><name>{name}</name>"
            f"<isSuppItem>false</isSuppItem><salesUnitFactor>1</salesUnitFactor>"
            f"<comment>{'x' * pad}</comment></r>"
        )
    return "".join(out).encode()
