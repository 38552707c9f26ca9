"""Sales document lines as Business Central keeps their prices (pure: no I/O).

BC's line pages replay the fields of a request in order, and validating the item, the unit
of measure or the quantity recalculates the unit price (business-central.md §3.5.1). So a
line is sent with the fields that choose item, unit and quantity first and `unitPrice` after
them; whether BC replays in JSON order or its page's order, and whether a 0 price on a new
line registers at all, is not settled, so the line is also read back and patched where BC's
price differs from the packet's (`price_corrections`).

The mapping option `line_prices` says whose price wins: `packet` (the above) or `price-list`
(no `unitPrice` is sent; BC prices the line).
"""

from __future__ import annotations

from collections.abc import Collection
from collections.abc import Mapping as MappingABC
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from packetworker.targets.bc.batch import BatchRequest

LinePrices = Literal["packet", "price-list"]
LINE_PRICES: tuple[LinePrices, ...] = ("packet", "price-list")

# What chooses the line's item, unit and quantity: validated first, each may reprice.
_FIRST = (
    "lineType",
    "sequence",
    "itemId",
    "accountId",
    "lineObjectNumber",
    "itemVariantId",
    "locationId",
    "unitOfMeasureId",
    "unitOfMeasureCode",
    "quantity",
)
# The price, and the discounts computed from it, come last.
_LAST = ("unitPrice", "discountPercent", "discountAmount")


def line_prices_option(options: MappingABC[str, Any]) -> LinePrices:
    """The mapping's `line_prices` option (default `packet`); anything else is refused."""
    value = options.get("line_prices", "packet")
    if value not in LINE_PRICES:
        raise ValueError(
            f"mapping option line_prices = {value!r}: use one of {', '.join(LINE_PRICES)}"
        )
    return value


def for_insert(
    children: dict[str, list[dict]], prices: LinePrices, lines: Collection[str]
) -> dict[str, list[dict]]:
    """The document's collections with every line's fields in the order BC keeps its price
    (`lines`: the collections that are document lines)."""
    return {
        nav: [ordered_line(row, prices) for row in rows] if nav in lines else rows
        for nav, rows in children.items()
    }


def ordered_line(row: dict, prices: LinePrices) -> dict:
    """`row` with item, unit and quantity first and the price after them (none with
    `price-list`)."""
    first = {name: row[name] for name in _FIRST if name in row}
    rest = {name: value for name, value in row.items() if name not in first and name not in _LAST}
    last = {name: row[name] for name in _LAST if name in row}
    if prices == "price-list":
        last.pop("unitPrice", None)
    return {**first, **rest, **last}


def price_corrections(path: str, sent: list[dict], stored: list[dict] | None) -> list:
    """PATCHes that give each stored line the `unitPrice` it was sent with, where BC holds
    another. `path` is the lines collection under its document; lines are matched by
    `sequence`, or by position when the packet gave none."""
    by_position = sorted(stored or [], key=lambda line: line.get("sequence") or 0)
    by_sequence = {line.get("sequence"): line for line in by_position}
    out: list[BatchRequest] = []
    for n, row in enumerate(sent):
        if "unitPrice" not in row:
            continue
        if row.get("sequence") is not None:
            line = by_sequence.get(row["sequence"])
        else:
            line = by_position[n] if n < len(by_position) else None
        if line is None or not line.get("id"):
            continue
        if same_price(line.get("unitPrice"), row["unitPrice"]):
            continue
        out.append(
            BatchRequest(
                "PATCH",
                f"{path}({line['id']})",
                body={"unitPrice": row["unitPrice"]},
                etag=line.get("@odata.etag") or "*",
            )
        )
    return out


def same_price(a: Any, b: Any) -> bool:
    try:
        return Decimal(str(a)) == Decimal(str(b))
    except (InvalidOperation, ValueError):
        return False
