"""`GET .../api/v2.0/$metadata`: the emulator's entity sets as an OData v4 CSDL (EDMX) document.

BC serves its service metadata there (business-central.md §2: "`GET .../api/v2.0/$metadata`
gives EDMX"); its entity types live in the `Microsoft.NAV` namespace, one `EntitySet` per
entity type in the `NAV` container, and document lines hang off their header as collection
navigation properties (OData CSDL XML v4.01 §8, §13). The document is built from
`ENTITY_SETS`, so it names exactly the fields the emulator accepts.
"""

from __future__ import annotations

from lxml import etree

from packetworker.sandbox.bc.entities import ENTITY_SETS, EntitySet

EDMX_NS = "http://docs.oasis-open.org/odata/ns/edmx"  # OData CSDL XML v4.01 §3.1
EDM_NS = "http://docs.oasis-open.org/odata/ns/edm"  # OData CSDL XML v4.01 §3.1
NAMESPACE = "Microsoft.NAV"  # BC's schema namespace (bound actions are Microsoft.NAV.<name>)
_COMPANY_FIELDS = [  # business-central.md §2
    *("id", "systemVersion", "timestamp", "name", "displayName", "businessProfileId"),
    *("systemCreatedAt", "systemCreatedBy", "systemModifiedAt", "systemModifiedBy"),
]


def type_name(entity_set: str) -> str:
    """BC's entity type for a set: `customers` → `customer`, `companies` → `company`."""
    if entity_set.endswith("ies"):
        return entity_set[:-3] + "y"
    return entity_set[:-1] if entity_set.endswith("s") else entity_set


def _edm_type(name: str, default: object) -> str:
    if name == "id" or name.endswith("Id"):
        return "Edm.Guid"
    if isinstance(default, bool):
        return "Edm.Boolean"
    if isinstance(default, int | float):
        return "Edm.Decimal"
    return "Edm.String"


def _entity_type(schema: etree._Element, name: str, fields: dict[str, object]) -> etree._Element:
    node = etree.SubElement(schema, f"{{{EDM_NS}}}EntityType", Name=name)
    key = etree.SubElement(node, f"{{{EDM_NS}}}Key")
    etree.SubElement(key, f"{{{EDM_NS}}}PropertyRef", Name="id")
    for field, default in fields.items():
        attrs = {"Name": field, "Type": _edm_type(field, default)}
        if field == "id":
            attrs["Nullable"] = "false"
        etree.SubElement(node, f"{{{EDM_NS}}}Property", **attrs)
    return node


def edmx(entity_sets: dict[str, EntitySet] = ENTITY_SETS) -> bytes:
    """The CSDL document of `entity_sets` (plus `companies`)."""
    root = etree.Element(f"{{{EDMX_NS}}}Edmx", nsmap={"edmx": EDMX_NS}, Version="4.0")
    services = etree.SubElement(root, f"{{{EDMX_NS}}}DataServices")
    schema = etree.SubElement(
        services, f"{{{EDM_NS}}}Schema", nsmap={None: EDM_NS}, Namespace=NAMESPACE
    )
    _entity_type(schema, "company", dict.fromkeys(_COMPANY_FIELDS, ""))
    for spec in entity_sets.values():
        node = _entity_type(schema, type_name(spec.name), spec.fields)
        for nav, child in spec.children.items():
            etree.SubElement(
                node,
                f"{{{EDM_NS}}}NavigationProperty",
                Name=nav,
                Type=f"Collection({NAMESPACE}.{type_name(child)})",
                ContainsTarget="true",
            )
    container = etree.SubElement(schema, f"{{{EDM_NS}}}EntityContainer", Name="NAV")
    for name in ("companies", *entity_sets):
        etree.SubElement(
            container,
            f"{{{EDM_NS}}}EntitySet",
            Name=name,
            EntityType=f"{NAMESPACE}.{type_name(name)}",
        )
    return etree.tostring(root, xml_declaration=True, encoding="utf-8")
