"""How BC's sales line pages apply a request body (business-central.md §3.5.1).

The three line pages (APIV2SalesOrderLines, APIV2SalesInvoiceLines, APIV2SalesCreditMemLines)
sit on a temporary buffer: each field's page trigger only *registers* that the field was
set, and `TypeHelper.TransferFieldsWithValidate` then replays the registered fields, in
order, onto the real Sales Line, validating each one only if its value differs from what
the line holds at that moment. Validating the item, the unit of measure or the quantity
recalculates the unit price, so a `unitPrice` registered before them is overwritten and one
registered after them is kept — 0 included.

Two points the sources leave open are switches (`LineRules`): whether registration follows
the JSON property order or the page's field order, and whether a value equal to the one the
buffer already holds (a 0 price on a new line) fires its trigger at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal, Protocol

from packetworker.sandbox.bc.entities import EMPTY_GUID
from packetworker.sandbox.bc.errors import ODataError

# The pages' field order (APIV2SalesOrderLines.Page.al, APIV2SalesInvoiceLines.Page.al,
# APIV2SalesCreditMemLines.Page.al): credit memo lines list unitPrice before quantity.
_HEAD = (
    *("documentId", "sequence", "itemId", "accountId", "lineType", "lineObjectNumber"),
    *("description", "description2", "unitOfMeasureId", "unitOfMeasureCode"),
)
_TAIL = ("discountAmount", "discountPercent", "taxCode", "shipmentDate")
PAGE_ORDER: dict[str, tuple[str, ...]] = {
    "salesOrderLines": (
        *_HEAD,
        "quantity",
        "unitPrice",
        *_TAIL,
        *("shippedQuantity", "invoicedQuantity", "invoiceQuantity", "shipQuantity"),
        "itemVariantId",
        "locationId",
    ),
    "salesInvoiceLines": (*_HEAD, "quantity", "unitPrice", *_TAIL, "itemVariantId", "locationId"),
    "salesCreditMemoLines": (
        *_HEAD,
        "unitPrice",
        "quantity",
        *_TAIL,
        "itemVariantId",
        "locationId",
    ),
}
LINE_SETS = frozenset(PAGE_ORDER)

# Validating these on a Sales Line runs the price calculation (SalesLine.Table.al: No.,
# Unit of Measure Code and Quantity call UpdateUnitPrice).
_REPRICE = frozenset(
    {"itemId", "lineObjectNumber", "unitOfMeasureId", "unitOfMeasureCode", "quantity"}
)
_ITEM_REF = ("itemId", "lineObjectNumber")


@dataclass
class LineRules:
    """The unsettled parts of §3.5.1, switchable so the client is tested against both."""

    order: Literal["json", "page"] = "json"  # JSON order: hint on ALAppExtensions#14276
    unchanged_fires: bool = True  # a value equal to the buffer's (0 on a new line) registers


class Catalog(Protocol):
    """What line validation needs from the company's data."""

    def item(self, field: str, value: Any) -> dict | None: ...

    def units(self, item: dict) -> dict[str, Decimal]: ...

    def unit_code(self, unit_id: str) -> str: ...

    def variant(self, variant_id: Any) -> dict | None: ...

    def location(self, location_id: Any) -> dict | None: ...


def same(a: Any, b: Any) -> bool:
    """BC compares field values, not JSON spellings: 0 == 0.0 == "0"."""
    try:
        return Decimal(str(a)) == Decimal(str(b))
    except ArithmeticError:
        return str(a if a is not None else "") == str(b if b is not None else "")


def registered(entity_set: str, buffer: dict, body: dict, rules: LineRules) -> list[str]:
    """The body's fields whose page trigger fires, in the order they fire."""
    names = list(body)
    if rules.order == "page":
        rank = {name: n for n, name in enumerate(PAGE_ORDER[entity_set])}
        names.sort(key=lambda name: rank.get(name, len(rank)))
    if not rules.unchanged_fires:
        names = [n for n in names if not same(buffer.get(n), body[n])]
    return names


def apply_body(
    entity_set: str,
    line: dict,
    body: dict,
    *,
    rules: LineRules,
    catalog: Catalog,
    creating: bool,
) -> None:
    """Apply `body` to `line` (defaults on insert, the stored line on PATCH) as BC does."""
    buffer = dict(line)
    if creating:  # OnNewRecord registers Type first
        line["lineType"] = body.get("lineType", line.get("lineType") or "Item")
    for name in registered(entity_set, buffer, body, rules):
        value = body[name]
        if same(line.get(name), value):
            continue  # TransferFieldsWithValidate validates only values that differ
        _validate(line, name, value, body, catalog)
    amounts(line)


def fill_seeded(line: dict, given: dict, catalog: Catalog) -> None:
    """A seeded or copied (posted) line: fill what its item implies, keep what was `given`."""
    item = _item_of(line, line, catalog)
    if item is not None:
        line["itemId"], line["lineObjectNumber"] = item["id"], item["number"]
        line["description"] = line.get("description") or item["displayName"]
        line["unitOfMeasureCode"] = line.get("unitOfMeasureCode") or item["baseUnitOfMeasureCode"]
        if given.get("unitPrice") in (None, ""):
            line["unitPrice"] = item["unitPrice"]
    amounts(line)


def amounts(line: dict) -> None:
    quantity = float(line.get("quantity") or 0)
    price = float(line.get("unitPrice") or 0)
    amount = round(quantity * price * (1 - float(line.get("discountPercent") or 0) / 100), 2)
    line["amountExcludingTax"] = line["netAmount"] = amount
    line["amountIncludingTax"] = line["netAmountIncludingTax"] = amount


def _validate(line: dict, name: str, value: Any, body: dict, catalog: Catalog) -> None:
    is_item = line.get("lineType") == "Item"
    if name in _ITEM_REF and is_item:
        item = catalog.item("id" if name == "itemId" else "number", value)
        if item is None:
            raise ODataError(400, "Application_DialogException", "Item does not exist.")
        line["itemId"], line["lineObjectNumber"] = item["id"], item["number"]
        line["description"] = item["displayName"]
        line["unitOfMeasureCode"] = item["baseUnitOfMeasureCode"]
    elif name in _RELATIONS:
        line[name] = _related(line, name, value, catalog)
    elif name in ("unitOfMeasureCode", "unitOfMeasureId") and is_item:
        code = catalog.unit_code(value) if name == "unitOfMeasureId" else str(value or "")
        line["unitOfMeasureCode"] = _checked_unit(line, body, code, catalog)
        if name == "unitOfMeasureId":
            line["unitOfMeasureId"] = value
    else:
        line[name] = value
    if name in _REPRICE and is_item:
        _reprice(line, catalog)


def _checked_unit(line: dict, body: dict, code: str, catalog: Catalog) -> str:
    """`code` as the item has it; anything else fails the relation to Item Unit of Measure
    (business-central.md §3.5.1: SalesInvoiceLineAggregate.Table.al, SalesLine.Table.al)."""
    if code == "":
        return ""  # a blank code means qty per unit 1 (UnitofMeasureManagement)
    item = _item_of(line, body, catalog)
    units = catalog.units(item) if item is not None else {}
    for known in units:
        if known.lower() == code.lower():
            return known
    # Exact wording unconfirmed (business-central.md §9.13); the platform's relation error.
    number = item["number"] if item is not None else ""
    raise ODataError(
        400,
        "Internal_InvalidTableRelation",
        f"The field Unit of Measure Code of table Sales Line contains a value ({code}) that "
        f"cannot be found in the related table (Item Unit of Measure). Item No.='{number}'",
    )


# Sales Invoice Line Aggregate (SalesInvoiceLineAggregate.Table.al), the lines' buffer:
# "Variant Id" relates to "Item Variant".SystemId where "Item No." = the line's item, and
# "Location Id" to Location.SystemId; a blank GUID clears the code.
_RELATIONS = {
    "itemVariantId": ("Variant Id", "Item Variant"),
    "locationId": ("Location Id", "Location"),
}


def _related(line: dict, name: str, value: Any, catalog: Catalog) -> Any:
    """`value` when the related record exists (for a variant: of the line's item), else the
    platform's table relation error (its exact wording is unconfirmed, as for units)."""
    if value in (None, "", EMPTY_GUID):
        return EMPTY_GUID
    if name == "itemVariantId":
        found = catalog.variant(value)
        item = _item_of(line, line, catalog)
        ok = found is not None and item is not None and found.get("itemId") == item["id"]
    else:
        ok = catalog.location(value) is not None
    if ok:
        return value
    field, table = _RELATIONS[name]
    raise ODataError(
        400,
        "Internal_InvalidTableRelation",
        f"The field {field} of table Sales Invoice Line Aggregate contains a value ({value}) "
        f"that cannot be found in the related table ({table}).",
    )


def _item_of(line: dict, body: dict, catalog: Catalog) -> dict | None:
    """The line's item, else the one the body names (the buffer's relation sees it)."""
    for source in (line, body):
        if source.get("itemId") not in (None, "", EMPTY_GUID):
            return catalog.item("id", source["itemId"])
        if source.get("lineObjectNumber"):
            return catalog.item("number", source["lineObjectNumber"])
    return None


def _reprice(line: dict, catalog: Catalog) -> None:
    """The price calculation: the item's price for the line's unit (no price lists here)."""
    item = _item_of(line, line, catalog)
    if item is None:
        return
    per_unit = catalog.units(item).get(line.get("unitOfMeasureCode") or "", Decimal(1))
    line["unitPrice"] = float(Decimal(str(item.get("unitPrice") or 0)) * per_unit)
