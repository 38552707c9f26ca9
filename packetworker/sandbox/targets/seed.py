"""Master data for a Business Central emulator, from a TOML file (pure apart from reading it).

The shipped `seed.toml` holds what the bundled samples refer to: customers, items, the
customer payment journal, and the payment terms and return reasons their documents name.
Any other file of the same shape can be given instead.
"""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

SEEDED_SETS = (
    "customers",
    "items",
    "customerPaymentJournals",
    "paymentTerms",
    "shipmentMethods",
    "currencies",
    "customerReturnReasons",
)


class Seedable(Protocol):
    """What seeding needs from an emulator (`BCSandbox` has it)."""

    def add(self, entity_set: str, company: str | None = None, **fields: Any) -> dict: ...


def load_seed(path: str | Path | None = None) -> dict[str, Any]:
    """The seed file at `path`, or the shipped one."""
    if path is None:
        text = resources.files(__package__).joinpath("seed.toml").read_text(encoding="utf-8")
    else:
        text = Path(path).read_text(encoding="utf-8")
    return tomllib.loads(text)


def seed(sandbox: Seedable, data: dict[str, Any]) -> int:
    """Insert every seeded entity into the emulator's company; how many were added."""
    company = data.get("company")
    added = 0
    for entity_set in SEEDED_SETS:
        for fields in data.get(entity_set, []):
            sandbox.add(entity_set, company, **fields)
            added += 1
    return added
