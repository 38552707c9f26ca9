"""Declarative mappings from packet tables to target entities (data files, not code).

A mapping file (TOML) says, per packet table, which target entity a record becomes, which
fields identify it (the idempotency key), how each target field is produced (source field
aliases, static values, JMESPath formulas, conversions, lookups), which child tables are
attached as collections, and which rules a record must pass. `Mapper` applies it:

    mapping = load_mapping("bc-field-sales")
    for item in Mapper(mapping).map_packet(header, records):
        ...  # item.outcome: mapped / skipped / filtered / ignored / error (item.fault: why)

File format (one file per target data model; shipped ones in `packetworker/mapping_files/`):

    name, description
    unknown_tables = "skip" | "quarantine"   # a table the file does not name
    ignore_tables = [...]                     # acknowledged, no action
    [options]                                 # switches of the target (e.g. bc line_prices)
    [tables.<Table>]
    entity = "salesOrders"                    # or [tables.<Table>.routes] (below)
    operation = "create" | "update" | "upsert" | "status"   # status: follow each record
    key = [target fields]                     # idempotency key, checked by the target
    update_fields = [...]                     # what an upsert may change on an existing record
    prevent_duplicate, duplicate_message      # an existing key is an error, not an update
    when = "<JMESPath>"                       # filter: falsy → outcome `filtered`
    fields.<target> = "Src" | ["SrcA", "srcA"] | { from, convert, max_length, values,
                                                   default, into }
    static.<target> = <any TOML value>
    formula.<target> = "<JMESPath>" | { expr, convert, max_length, into }
    lookups.<target> = { from, entity, match, where, bind, message, into }  # resolved by
                                              # the target; where = { <field> = [aliases] }
                                              # (BC: one record matching every field)
    required = [target fields]
    [[tables.<Table>.checks]] field, required | pattern | test, error, summary,
                                description, resolution
    [tables.<Table>.children.<ChildTable>]    # same rows as a table, plus:
        collection, parent_key, child_key, inherit, append = "<JMESPath>", emit
    collections.<name> = "<JMESPath>"         # child rows computed from the record itself
    [tables.<Table>.routes] by = [discriminator aliases]
    [tables.<Table>.routes.cases.<value>] entity, collections = { <Child> = "<name>" },
                                          fields / static / formula overrides, drop = [...]

    [lookup_entities.<name>] entity, match     # where this target keeps what lookups name
                                              # by a neutral entity (`company`)
    [contact_fields] number, first_name, last_name, email, custom, company, addresses,
                     address_once             # a contact mapping: what its fields mean
    [contact_columns] entity, number, email, rowid, columns, address_columns,
                      address_slots, address_column, company_bind
                                              # a CRM mapping: where it keeps a contact

Targets read their own `[options]` as typed data too, e.g. BC's `line_prices` and `posted`
(`targets/bc/posted.py`: where a posted document is looked for) and Dataverse's `nested`,
`collections`, `alternate_keys` (`targets/dataverse/shape.py`). Every error in a file is a
`MappingError` naming the file and the path at fault; a record the mapper cannot map has a
`MappingFault` kind (`item.fault`) for the target to decide on, and a message for people.
The outbound mapping (`outbound/mapping.py`, BC → mobile) is read by the same loader.

`convert` is one of string, int, decimal, bool, date, datetime, base64. Expressions are
JMESPath (string literals in single quotes) over the record's fields plus `header`,
`table`, `parent` (in a child) and `children.<ChildTable>` (in a parent); see
`expressions.py` for the extra functions (custom_field, concat, default, choose, lookup,
dec_add/dec_sub/dec_mul/dec_neg/dec_sum, lower, upper, trim).

This package is pure: no network, no Redis, no Dramatiq.
"""

from packetworker.targets.mapping.config import (
    ContactColumns,
    ContactFields,
    LookupAt,
    Mapping,
    MappingError,
    load_mapping,
    parse_mapping,
    shipped_mappings,
)
from packetworker.targets.mapping.engine import Mapper
from packetworker.targets.mapping.operations import (
    Action,
    ItemOutcome,
    LookupNotFound,
    LookupRef,
    MappedItem,
    MappingFault,
    Operation,
    resolve_lookups,
)

__all__ = [
    "Action",
    "ContactColumns",
    "ContactFields",
    "ItemOutcome",
    "LookupAt",
    "LookupNotFound",
    "LookupRef",
    "MappedItem",
    "Mapper",
    "Mapping",
    "MappingError",
    "MappingFault",
    "Operation",
    "load_mapping",
    "parse_mapping",
    "resolve_lookups",
    "shipped_mappings",
]
