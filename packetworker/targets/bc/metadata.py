"""Business Central's service metadata (`$metadata`, OData CSDL XML): which entity sets
exist and which properties and navigation properties their entity types have.

Read by `packetworker check` to prove a mapping names only what the tenant has, before a
packet finds out. Parsed without DTDs, entities or network access.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lxml import etree

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


@dataclass(frozen=True)
class EntityType:
    properties: frozenset[str]
    navigation: dict[str, str] = field(default_factory=dict)  # name → entity type name


@dataclass(frozen=True)
class Metadata:
    """Entity sets (name → entity type name) and entity types (unqualified name → type)."""

    entity_sets: dict[str, str]
    types: dict[str, EntityType]

    def of_set(self, entity_set: str) -> EntityType | None:
        name = self.entity_sets.get(entity_set)
        return self.types.get(name) if name is not None else None


def _unqualified(type_name: str) -> str:
    """`Collection(Microsoft.NAV.salesOrderLine)` → `salesOrderLine`."""
    if type_name.startswith("Collection(") and type_name.endswith(")"):
        type_name = type_name[len("Collection(") : -1]
    return type_name.rsplit(".", 1)[-1]


def parse_metadata(document: bytes) -> Metadata:
    """The entity sets and types of an EDMX document (namespace-agnostic; ValueError if it
    is not XML)."""
    try:
        root = etree.fromstring(document, parser=_PARSER)
    except etree.XMLSyntaxError as exc:
        raise ValueError(f"$metadata is not XML: {exc}") from None
    types: dict[str, EntityType] = {}
    sets: dict[str, str] = {}
    for node in root.iter("{*}EntityType"):
        props = frozenset(p.get("Name", "") for p in node.iterchildren("{*}Property"))
        navs = {
            n.get("Name", ""): _unqualified(n.get("Type", ""))
            for n in node.iterchildren("{*}NavigationProperty")
        }
        types[node.get("Name", "")] = EntityType(props, navs)
    for node in root.iter("{*}EntitySet"):
        sets[node.get("Name", "")] = _unqualified(node.get("EntityType", ""))
    return Metadata(sets, types)
