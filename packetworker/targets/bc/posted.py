"""Where Business Central keeps a document once it is posted (pure): the look-ups a mapping
declares in `[options.posted]`, so a deployment adds or changes them without code.

A fully posted order leaves `salesOrders`; its posted invoice (`salesInvoices`, status Open
or Paid) and its shipment (`salesShipments`) carry its `externalDocumentNumber`
(business-central.md §7), so the target looks there too before it creates the order again.
Invoices and credit memos stay in their own set when posted: their own look-up finds them.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from packetworker.targets.mapping import Mapping
from packetworker.targets.mapping.config import validate_mapping


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PostedAt(_Model):
    """One entity set a posted document may be found in; `statuses` there mean "posted"
    (none given: any)."""

    entity: str = Field(min_length=1)
    statuses: list[str] | None = None


class PostedSpec(_Model):
    """`[options.posted]`: the key a posted document keeps, and per document entity set
    where BC keeps it once posted."""

    key: list[str] = Field(min_length=1)
    documents: dict[str, list[PostedAt]] = {}


Places = tuple[tuple[str, frozenset[str] | None], ...]  # (entity set, posted statuses or None)


@dataclass(frozen=True)
class PostedLookups:
    """The posted-document look-ups of one mapping."""

    key: tuple[str, ...] = ()  # only operations keyed by exactly these fields are looked for
    documents: dict[str, tuple[tuple[str, frozenset[str] | None], ...]] | None = None

    def of(
        self, entity_set: str, key: tuple[str, ...]
    ) -> tuple[tuple[str, frozenset[str] | None], ...]:
        """(entity set, posted statuses or None) to look in for a document of `entity_set`
        keyed by `key`; nothing when the mapping declares none."""
        if key != self.key or not self.documents:
            return ()
        return self.documents.get(entity_set, ())


def posted_lookups(mapping: Mapping) -> PostedLookups:
    """The mapping's `[options.posted]`; `MappingError` names the file and path at fault."""
    raw = mapping.options.get("posted")
    if raw is None:
        return PostedLookups()
    source = mapping.source or mapping.name
    spec = validate_mapping(PostedSpec, raw, source=source, at="options.posted")
    documents = {
        entity: tuple(
            (at.entity, frozenset(at.statuses) if at.statuses is not None else None)
            for at in places
        )
        for entity, places in spec.documents.items()
    }
    return PostedLookups(tuple(spec.key), documents)
