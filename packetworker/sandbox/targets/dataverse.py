"""The `dataverse-emulator` target: the dataverse target against a Dataverse emulator.

The emulator's stock tables are accounts and contacts; the Field Sales mapping also writes
appointments and sales orders with their lines, and looks up products and units, so those
are declared here the way a Sales environment has them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from packetworker.sandbox.dataverse import DataverseEmulator
from packetworker.sandbox.dataverse.model import EntityDef, Lookup, default_entities
from packetworker.sandbox.targets.crm import (
    CREDENTIALS,
    dynamics_sample_records,
    quiet_server_logs,
)
from packetworker.sandbox.targets.emulated import start_emulated
from packetworker.settings import Settings
from packetworker.targets.crm.options import crm_options
from packetworker.targets.dataverse.auth import DataverseAuth
from packetworker.targets.dataverse.client import DataverseClient
from packetworker.targets.dataverse.target import DataverseTarget

logger = logging.getLogger(__name__)


def field_sales_entities() -> dict[str, EntityDef]:
    """accounts and contacts, plus what a Dynamics 365 Sales environment adds."""
    entities = default_entities()
    entities["appointments"] = EntityDef(
        "appointments",
        "appointment",
        "activityid",
        lookups={"regardingobjectid_account_appointment": Lookup("accounts", "regardingobjectid")},
    )
    entities["salesorders"] = EntityDef(
        "salesorders",
        "salesorder",
        "salesorderid",
        lookups={"customerid_account": Lookup("accounts", "customerid")},
    )
    entities["salesorderdetails"] = EntityDef(
        "salesorderdetails",
        "salesorderdetail",
        "salesorderdetailid",
        lookups={
            "salesorderid": Lookup("salesorders", "salesorderid"),
            "productid": Lookup("products", "productid"),
            "uomid": Lookup("uoms", "uomid"),
        },
    )
    entities["products"] = EntityDef(
        "products", "product", "productid", alternate_keys=(("productnumber",),)
    )
    entities["uoms"] = EntityDef("uoms", "uom", "uomid")
    return entities


def seed_samples(emulator: DataverseEmulator) -> None:
    """What the samples reference without creating it."""
    for entity_set, columns in dynamics_sample_records():
        emulator.seed(entity_set, **columns)


def embedded_target(**options: Any) -> DataverseTarget:
    """A target on a running, seeded emulator, which its `close()` stops."""
    emulator = DataverseEmulator(
        clients={CREDENTIALS.client_id: CREDENTIALS.client_secret},
        entities=field_sales_entities(),
    )
    quiet_server_logs()

    def connect(emulator: DataverseEmulator, stop: Callable[[], None]) -> DataverseTarget:
        seed_samples(emulator)
        logger.info("dataverse-emulator: Dataverse emulator at %s", emulator.url)
        auth = DataverseAuth(
            environment_url=emulator.url,
            tenant=emulator.tenant,
            client_id=CREDENTIALS.client_id,
            client_secret=CREDENTIALS.client_secret,
            token_url=emulator.token_url,
        )
        client = DataverseClient(emulator.url, auth=auth)
        return DataverseTarget(client, on_close=stop, **options)

    return start_emulated(emulator, connect)


def target_from_settings(settings: Settings) -> DataverseTarget:
    """The target on a fresh emulator, with the mapping options the settings give."""
    return embedded_target(**crm_options(settings, settings.dataverse_mapping))
