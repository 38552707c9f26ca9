"""What a Dataverse mapping's `[options]` say about the org's entity sets (pure).

The names are data a deployment edits with its mapping, not code: which navigation
properties a row may fill with a whole record (deep insert), which child collection goes
to which entity set and binds to its parent through which lookup, which alternate keys the
target may address records by, and the primary key columns that break the naming rule.
Shared by the `dataverse` and `dynamics-portal` targets (the proxy speaks Dataverse
endpoints). A wrong option is a `MappingError` naming the file.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from packetworker.targets.mapping import Mapping
from packetworker.targets.mapping.config import validate_mapping


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ChildSet(_Model):
    """Where the rows of one child collection go: their entity set and the lookup column
    (without `@odata.bind`) that binds each row to its parent."""

    entity: str
    parent: str


class EntityShape(_Model):
    """`[options]` of a Dataverse mapping (only these keys are allowed there)."""

    # Single-valued navigation property → entity set of the record created with the parent.
    nested: dict[str, str] = {}
    # Child collection of the mapping → where its rows go.
    collections: dict[str, ChildSet] = {}
    # Entity set → the columns of an alternate key the org may have (crm.md A.7).
    alternate_keys: dict[str, list[str]] = Field(default_factory=dict)
    # Entity set → its primary key column, where that is not the singular name + "id"
    # (the activity tables share `activityid`).
    id_columns: dict[str, str] = {}

    def id_column(self, entity_set: str) -> str:
        """The primary key column of an entity set (`accounts` → `accountid`)."""
        if entity_set in self.id_columns:
            return self.id_columns[entity_set]
        singular = entity_set[:-1] if entity_set.endswith("s") else entity_set
        return f"{singular}id"


def entity_shape(mapping: Mapping) -> EntityShape:
    """The mapping's `[options]` as an `EntityShape`; `MappingError` names the file."""
    source = mapping.source or mapping.name
    return validate_mapping(EntityShape, dict(mapping.options), source=source, at="options")
