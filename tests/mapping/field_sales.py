"""Field Sales records built in code, shared by the tests of the shipped field-sales mappings."""

from __future__ import annotations

from packetworker.packets.model import Record

from .conftest import rec

#: A customer created on the device, with the connector's field names.
CUSTOMER = rec(
    "Customer",
    DMS_ROWID="c1",
    No="C0002",
    Name="Corner Shop",
    Address="1 Main St",
    City="Sofia",
    Contact="Ivan Petrov",
    PhoneNo="+359 2 000",
    DYM_Latitude="42.6610964",
    DYM_Longitude="23.2916713",
)

#: A sales line's field names: the vendor connector's, and the Field Sales app's own.
CONNECTOR_LINE = (
    "DocumentNo", "LineNo", "No", "Quantity", "UnitPrice", "UnitofMeasureCode", "LineDiscountAmount"
)  # fmt: skip
APP_LINE = (
    "documentNo", "lineNo", "no", "quantity", "unitPrice", "unitOfMeasure", "lineDiscountAmount"
)  # fmt: skip


def sales_lines(names: tuple[str, ...], document: str, *lines: tuple[str, ...]) -> list[Record]:
    """`SalesLine` rows l1, l2, … of `document`. Each of `lines` holds the values of `names[1:]`
    in order (line number, item, quantity, unit price, unit, discount); trailing ones may be
    left out."""
    return [
        rec("SalesLine", DMS_ROWID=f"l{n}", **dict(zip(names, (document, *values), strict=False)))
        for n, values in enumerate(lines, 1)
    ]
