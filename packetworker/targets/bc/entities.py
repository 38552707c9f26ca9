"""The Business Central entity sets the target treats in their own way, as the mapping's
`[options.entities]` declares them (pure): data a deployment edits, not names in code.

- `journal_lines`: entity sets that live under a parent (journal lines belong to a journal,
  found by `BC_PAYMENT_JOURNAL`'s code);
- `document_lines`: each document entity set's lines collection (navigation property): deep
  inserts, line price checks and read-back;
- `blocked_documents`: per customer `blocked` value, the document entity sets BC refuses to
  create for that customer (business-central.md §3.4.2): such a refusal holds the document.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

from packetworker.targets.mapping import Mapping, MappingError
from packetworker.targets.mapping.config import validate_mapping


class EntitiesSpec(BaseModel):
    """`[options.entities]` of a Business Central mapping."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    journal_lines: dict[str, str] = {}  # entity set → its parent (journal) entity set
    document_lines: dict[str, str] = {}  # document entity set → its lines collection
    blocked_documents: dict[str, list[str]] = {}  # `blocked` value → document sets refused


@dataclass(frozen=True)
class Entities:
    """The special entity sets of one mapping."""

    journal_lines: dict[str, str]
    document_lines: dict[str, str]
    blocked_documents: dict[str, frozenset[str]]

    @property
    def holdable(self) -> frozenset[str]:
        """Every document entity set a blocked customer can hold."""
        return frozenset().union(*self.blocked_documents.values())

    def refused_for(self, blocked: str) -> frozenset[str]:
        """The document entity sets a customer with `blocked` cannot get."""
        return self.blocked_documents.get(blocked, frozenset())


def bc_entities(mapping: Mapping) -> Entities:
    """The mapping's `[options.entities]`; `MappingError` names the file and path when it is
    missing or wrong (without it, lines, journals and holds would silently go wrong)."""
    source = mapping.source or mapping.name
    raw = mapping.options.get("entities")
    if raw is None:
        raise MappingError(
            "a Business Central mapping needs [options.entities] (journal_lines, "
            "document_lines, blocked_documents)",
            source=source,
            path="options.entities",
        )
    spec = validate_mapping(EntitiesSpec, raw, source=source, at="options.entities")
    return Entities(
        dict(spec.journal_lines),
        dict(spec.document_lines),
        {value: frozenset(sets) for value, sets in spec.blocked_documents.items()},
    )
