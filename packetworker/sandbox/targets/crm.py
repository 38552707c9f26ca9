"""What the CRM emulator targets share: each starts its emulator in process, seeded with
what the samples reference (the customer their orders and visits name, its items and units),
so `packetworker replay samples/ --target dataverse-emulator|crmaas-emulator|
dynamics-portal-emulator` works on a fresh clone. Used only when named.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

# What `samples/` reference without creating it: the customer of the orders, visits and
# payments (also the company of the linked-contact sample), the items and the units.
SAMPLE_CUSTOMER = {"number": "PV-01042", "name": "Бакалия „Тракия“ ЕООД", "city": "Пловдив"}
SAMPLE_ITEMS = {"W-1001": "Mineral water 0.5 l", "C-3007": "Coffee 250 g", "J-2040": "Juice 1 l"}
SAMPLE_UNITS = ("БР", "ПК")


def dynamics_sample_records(*, city: bool = True) -> Iterator[tuple[str, dict[str, str]]]:
    """(entity set, columns) of the sample records in Dynamics 365 (Dataverse) terms: the
    customer's account (with its city when `city`), the items as products, the units."""
    account = {"accountnumber": SAMPLE_CUSTOMER["number"], "name": SAMPLE_CUSTOMER["name"]}
    if city:
        account["address1_city"] = SAMPLE_CUSTOMER["city"]
    yield "accounts", account
    for number, name in SAMPLE_ITEMS.items():
        yield "products", {"productnumber": number, "name": name}
    for unit in SAMPLE_UNITS:
        yield "uoms", {"name": unit}


@dataclass(frozen=True, slots=True)
class EmbeddedCredentials:
    """What a client needs to talk to an embedded emulator (made-up, local only)."""

    client_id: str = "embedded-app"
    client_secret: str = "embedded-secret"
    primary_key: str = "embedded-primary-key"
    secondary_key: str = "embedded-secondary-key"
    portal_scope: str = "Dynamics365.ReadWrite"


CREDENTIALS = EmbeddedCredentials()


def quiet_server_logs() -> None:
    """The emulators serve with werkzeug, which logs every request at INFO: noise in a
    replay's output (the requests are what the summary reports)."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
