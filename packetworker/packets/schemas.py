"""Loading the shipped schemas (package data under `packetworker.schemas`), once each.

xmlschema and jsonschema are imported on first use: reading packets does not need them.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    import xmlschema

PACKET_XSD = "navmobilesync.xsd"
PACKET_JSON = "navmobilesync.schema.json"
PULL_LIST_XSD = "pull-list.xsd"
PULL_LIST_JSON = "pull-list.schema.json"
DONE_XSD = "done.xsd"
DONE_JSON = "done.schema.json"


def schema_text(name: str) -> str:
    return files("packetworker.schemas").joinpath(name).read_text(encoding="utf-8")


@cache
def xml_schema(name: str) -> xmlschema.XMLSchema11:
    """An XSD 1.1 schema (assertions, wildcards inside xs:all)."""
    import xmlschema

    return xmlschema.XMLSchema11(schema_text(name))


@cache
def json_validator(name: str) -> Any:
    import jsonschema

    schema = orjson.loads(schema_text(name))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)
