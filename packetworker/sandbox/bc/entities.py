"""The v2.0 entity sets the emulator serves: fields, keys, number series, navigation.

Field lists follow Microsoft's v2.0 resource reference (see docs/business-central.md §3). A
body with a property not listed here is refused, as BC refuses unknown properties, so a
mapping typo fails in tests instead of silently dropping data.
"""

from __future__ import annotations

from dataclasses import dataclass, field

EMPTY_GUID = "00000000-0000-0000-0000-000000000000"

_ADDRESS = "AddressLine1 AddressLine2 City Country State PostCode"


def _fields(spec: str, **defaults: object) -> dict[str, object]:
    """`"a b c"` → {"a": "", "b": "", "c": ""} with per-field overrides; ids default empty GUID."""
    out: dict[str, object] = {}
    for name in spec.split():
        if name in defaults:
            out[name] = defaults[name]
        elif name.endswith("Id"):
            out[name] = EMPTY_GUID
        else:
            out[name] = ""
    return out


def _addresses(*prefixes: str) -> str:
    return " ".join(f"{p}{part}" for p in prefixes for part in _ADDRESS.split())


@dataclass(frozen=True)
class EntitySet:
    name: str
    fields: dict[str, object]
    readonly_fields: frozenset[str] = frozenset()
    keys: tuple[tuple[str, ...], ...] = ()  # unique keys → Internal_EntityWithSameKeyExists
    series: str | None = None  # number series prefix for `number` when absent
    children: dict[str, str] = field(default_factory=dict)  # navigation → child set
    parent_key: str | None = None  # on child sets: the field pointing at the parent
    writable: bool = True  # posted documents are read-only
    insertable: bool = True
    webhooks: bool = False  # BC's webhook-supported list (doc §6.5)
    set_once: dict[str, str] = field(default_factory=dict)  # field → error when changed


# `id` is Editable = false on every APIV2 page; `lastModifiedDateTime` is the platform's
# SystemModifiedAt (Editable = false on nearly every page; the platform maintains it).
_ALWAYS_RO = {"id", "lastModifiedDateTime"}

_LINE = (
    "id documentId sequence itemId accountId lineType lineObjectNumber description description2 "
    "unitOfMeasureId unitOfMeasureCode quantity unitPrice discountAmount discountPercent "
    "discountAppliedBeforeTax amountExcludingTax taxCode taxPercent totalTaxAmount "
    "amountIncludingTax invoiceDiscountAllocation netAmount netTaxAmount netAmountIncludingTax "
    "shipmentDate itemVariantId locationId"
)
_LINE_DEFAULTS = dict(
    sequence=0,
    lineType="Item",
    quantity=0,
    unitPrice=0,
    discountAmount=0,
    discountPercent=0,
    discountAppliedBeforeTax=False,
    amountExcludingTax=0,
    taxPercent=0,
    totalTaxAmount=0,
    amountIncludingTax=0,
    invoiceDiscountAllocation=0,
    netAmount=0,
    netTaxAmount=0,
    netAmountIncludingTax=0,
    shipmentDate=None,
)
# Editable = false in APIV2SalesOrderLines/SalesInvoiceLines/SalesCreditMemLines.Page.al;
# documentId and sequence may be set once (their triggers refuse a change: store.py).
_LINE_RO = frozenset(
    [
        "discountAppliedBeforeTax",
        "amountExcludingTax",
        "taxPercent",
        "totalTaxAmount",
        "amountIncludingTax",
        "invoiceDiscountAllocation",
        "netAmount",
        "netTaxAmount",
        "netAmountIncludingTax",
    ]
)
# The line pages' triggers refuse changing these once set (labels CannotChangeDocumentIdNoErr,
# CannotChangeLineNoErr, CannotChangeLineObjectNoErr in APIV2SalesOrderLines.Page.al et al.).
_LINE_SET_ONCE = {
    "documentId": 'The value for "documentId" cannot be modified.',
    "sequence": "The value for sequence cannot be modified. Delete and insert the line again.",
    "lineObjectNumber": 'The value for "lineObjectNumber" cannot be modified.',
}
_TOTALS = dict(
    discountAmount=0,
    discountAppliedBeforeTax=False,
    totalAmountExcludingTax=0,
    totalTaxAmount=0,
    totalAmountIncludingTax=0,
    pricesIncludeTax=False,
)
# Editable = false in all three APIV2 sales document pages (SalesOrders, SalesInvoices,
# SalesCreditMemos .Page.al): the number comes from the number series.
_DOC_RO = frozenset(
    [
        "number",
        "customerName",
        "billToName",
        "discountAppliedBeforeTax",
        "totalAmountExcludingTax",
        "totalTaxAmount",
        "totalAmountIncludingTax",
        "status",
    ]
)
_BILL_TO_ADDRESS = frozenset(_addresses("billTo").split())
_SALES_HEADER = (
    "id number externalDocumentNumber postingDate customerId customerNumber customerName "
    "billToName billToCustomerId billToCustomerNumber shipToName shipToContact "
    f"{_addresses('sellTo', 'billTo', 'shipTo')} shortcutDimension1Code shortcutDimension2Code "
    "currencyId currencyCode pricesIncludeTax paymentTermsId shipmentMethodId salesperson "
    "discountAmount discountAppliedBeforeTax totalAmountExcludingTax totalTaxAmount "
    "totalAmountIncludingTax status lastModifiedDateTime phoneNumber email"
)

ENTITY_SETS: dict[str, EntitySet] = {}


def _register(entity: EntitySet) -> None:
    ENTITY_SETS[entity.name] = entity


_register(
    EntitySet(
        "items",
        _fields(
            "id number displayName displayName2 type itemCategoryId itemCategoryCode blocked gtin "
            "inventory unitPrice priceIncludesTax unitCost taxGroupId taxGroupCode "
            "baseUnitOfMeasureId baseUnitOfMeasureCode generalProductPostingGroupId "
            "generalProductPostingGroupCode inventoryPostingGroupId inventoryPostingGroupCode "
            "lastModifiedDateTime",
            type="Inventory",
            blocked=False,
            inventory=0,
            unitPrice=0,
            unitCost=0,
            priceIncludesTax=False,
        ),
        # APIV2Items.Page.al: only id and lastModifiedDateTime are read-only (inventory is
        # writable: BC posts an adjustment).
        keys=(("number",),),
        series="ITEM",
        children={"itemVariants": "itemVariants"},
        webhooks=True,
    )
)
_register(
    EntitySet(
        "itemVariants",
        _fields("id itemId itemNumber code description lastModifiedDateTime"),
        keys=(("itemId", "code"),),
        parent_key="itemId",
    )
)
_register(
    EntitySet(
        "customers",
        _fields(
            "id number displayName type addressLine1 addressLine2 city state country postalCode "
            "phoneNumber email website salespersonCode balanceDue creditLimit taxLiable "
            "taxAreaId taxAreaDisplayName taxRegistrationNumber currencyId currencyCode "
            "paymentTermsId shipmentMethodId paymentMethodId blocked lastModifiedDateTime",
            type="Company",
            balanceDue=0,
            creditLimit=0,
            taxLiable=False,
            blocked=" ",
        ),
        readonly_fields=frozenset({"balanceDue", "taxAreaDisplayName"}),  # APIV2Customers.Page.al
        keys=(("number",),),
        series="C",
        webhooks=True,
    )
)


def _sales_lines(name: str, fields: dict[str, object] | None = None) -> EntitySet:
    """The lines of a sales document: line fields, read-only and set-once as on every line page."""
    return EntitySet(
        name,
        _fields(_LINE, **_LINE_DEFAULTS) if fields is None else fields,
        readonly_fields=_LINE_RO,
        parent_key="documentId",
        set_once=_LINE_SET_ONCE,
    )


_register(
    EntitySet(
        "salesOrders",
        _fields(
            f"{_SALES_HEADER} orderDate partialShipping requestedDeliveryDate fullyShipped",
            **_TOTALS,
            status="Draft",
            orderDate=None,
            postingDate=None,
            requestedDeliveryDate=None,
            partialShipping=True,
            fullyShipped=False,
        ),
        readonly_fields=_DOC_RO | _BILL_TO_ADDRESS,  # APIV2SalesOrders.Page.al
        keys=(("number",),),
        series="S-ORD",
        children={"salesOrderLines": "salesOrderLines"},
        webhooks=True,
    )
)
_register(
    _sales_lines(
        "salesOrderLines",
        _fields(
            f"{_LINE} shippedQuantity invoicedQuantity invoiceQuantity shipQuantity",
            **_LINE_DEFAULTS,
            shippedQuantity=0,
            invoicedQuantity=0,
            invoiceQuantity=0,
            shipQuantity=0,
        ),
    )
)
_INVOICE_FIELDS = (
    f"{_SALES_HEADER} invoiceDate dueDate promisedPayDate customerPurchaseOrderReference "
    "orderId orderNumber disputeStatusId disputeStatus remainingAmount"
)
_register(
    EntitySet(
        "salesInvoices",
        _fields(
            _INVOICE_FIELDS,
            **_TOTALS,
            status="Draft",
            invoiceDate=None,
            postingDate=None,
            dueDate=None,
            promisedPayDate=None,
            remainingAmount=0,
        ),
        # APIV2SalesInvoices.Page.al
        readonly_fields=_DOC_RO
        | _BILL_TO_ADDRESS
        | {"orderId", "orderNumber", "pricesIncludeTax", "remainingAmount"},
        keys=(("number",),),
        series="S-INV",
        children={"salesInvoiceLines": "salesInvoiceLines"},
        webhooks=True,
    )
)
_register(_sales_lines("salesInvoiceLines"))
_register(
    EntitySet(
        "salesCreditMemos",
        _fields(
            f"{_SALES_HEADER} creditMemoDate dueDate invoiceId invoiceNumber "
            "customerReturnReasonId",
            **_TOTALS,
            status="Draft",
            creditMemoDate=None,
            postingDate=None,
            dueDate=None,
        ),
        # APIV2SalesCreditMemos.Page.al (its bill-to address is editable)
        readonly_fields=_DOC_RO | {"pricesIncludeTax"},
        keys=(("number",),),
        series="S-CR",
        children={"salesCreditMemoLines": "salesCreditMemoLines"},
        webhooks=True,
    )
)
_register(_sales_lines("salesCreditMemoLines"))
_register(
    EntitySet(
        "salesShipments",
        _fields(
            "id number externalDocumentNumber invoiceDate postingDate dueDate "
            "customerPurchaseOrderReference customerId customerNumber customerName "
            "billToCustomerId billToName billToCustomerNumber shipToName shipToContact "
            f"{_addresses('sellTo', 'billTo', 'shipTo')} currencyCode orderNumber "
            "paymentTermsCode shipmentMethodCode salesperson pricesIncludeTax "
            "lastModifiedDateTime phoneNumber email",
            invoiceDate=None,
            postingDate=None,
            dueDate=None,
            pricesIncludeTax=False,
        ),
        keys=(("number",),),
        series="S-SHPT",
        children={"salesShipmentLines": "salesShipmentLines"},
        writable=False,
        insertable=False,
    )
)
_register(
    EntitySet(
        "salesShipmentLines",
        _fields(
            "id documentId documentNo sequence lineType lineObjectNumber description "
            "description2 unitOfMeasureCode unitPrice quantity discountPercent taxPercent "
            "shipmentDate",
            sequence=0,
            lineType="Item",
            unitPrice=0,
            quantity=0,
            discountPercent=0,
            taxPercent=0,
            shipmentDate=None,
        ),
        parent_key="documentId",
        writable=False,
        insertable=False,
    )
)
_register(
    EntitySet(
        "customerPaymentJournals",
        _fields(
            "id code displayName balancingAccountId balancingAccountNumber lastModifiedDateTime"
        ),
        readonly_fields=frozenset({"balancingAccountNumber"}),  # APIV2CustPaymJournals.Page.al
        keys=(("code",),),
        children={"customerPayments": "customerPayments"},
        webhooks=True,
    )
)
_register(
    EntitySet(
        "customerPayments",
        _fields(
            "id journalId journalDisplayName lineNumber customerId customerNumber contactId "
            "postingDate documentNumber externalDocumentNumber amount appliesToInvoiceId "
            "appliesToInvoiceNumber description comment lastModifiedDateTime",
            lineNumber=0,
            amount=0,
            postingDate=None,
        ),
        # APIV2CustomerPayments.Page.al: journalId and journalDisplayName may be set, never
        # changed (store.py); only id and lastModifiedDateTime are read-only.
        parent_key="journalId",
        set_once={  # CannotEditJournalIdErr, CannotEditBatchNameErr
            "journalId": "The Journal Id cannot be changed.",
            "journalDisplayName": "The Journal Batch Display Name cannot be changed.",
        },
    )
)
_register(
    EntitySet(
        "unitsOfMeasure",
        _fields("id code displayName internationalStandardCode symbol lastModifiedDateTime"),
        keys=(("code",),),
        webhooks=True,
    )
)
_register(
    EntitySet(
        "paymentTerms",
        _fields(
            "id code displayName dueDateCalculation discountDateCalculation discountPercent "
            "calculateDiscountOnCreditMemos lastModifiedDateTime",
            discountPercent=0,
            calculateDiscountOnCreditMemos=False,
        ),
        keys=(("code",),),
        webhooks=True,
    )
)
_register(
    EntitySet(
        "currencies",
        _fields(
            "id code displayName symbol amountDecimalPlaces amountRoundingPrecision "
            "lastModifiedDateTime",
            amountDecimalPlaces="2:2",
            amountRoundingPrecision=0.01,
        ),
        keys=(("code",),),
        webhooks=True,
    )
)
_register(
    EntitySet(
        "shipmentMethods",  # business-central.md §6.5 lists it among webhook resources
        _fields("id code displayName lastModifiedDateTime"),
        keys=(("code",),),
        webhooks=True,
    )
)
_register(
    EntitySet(
        # AL: APIV2Locations.Page.al (document lines' locationId points here)
        "locations",
        _fields(
            "id code displayName contact addressLine1 addressLine2 city state country "
            "postalCode phoneNumber email website lastModifiedDateTime"
        ),
        keys=(("code",),),
    )
)
_register(
    EntitySet(
        # AL: APIV2CustReturnReasons.Page.al (reason codes; salesCreditMemos'
        # customerReturnReasonId points here)
        "customerReturnReasons",
        _fields("id code description lastModifiedDateTime"),
        keys=(("code",),),
    )
)
_register(
    EntitySet(
        "companyInformation",
        _fields(
            "id displayName addressLine1 addressLine2 city state country postalCode phoneNumber "
            "faxNumber email website taxRegistrationNumber currencyCode "
            "currentFiscalYearStartDate industry lastModifiedDateTime",
            currentFiscalYearStartDate=None,
        ),
        # APIV2CompanyInformation.Page.al
        readonly_fields=frozenset({"currencyCode", "currentFiscalYearStartDate"}),
        insertable=False,
        webhooks=True,
    )
)

for _entity in ENTITY_SETS.values():
    object.__setattr__(_entity, "readonly_fields", _entity.readonly_fields | _ALWAYS_RO)

# Parent set of each child set, for "a line changed → notify the header" (doc §6.4).
PARENTS: dict[str, str] = {
    child: parent.name for parent in ENTITY_SETS.values() for child in parent.children.values()
}
