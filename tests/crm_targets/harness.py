"""One harness per CRM: its emulator on 127.0.0.1, a target talking to it over HTTP, and
read-back of what the CRM holds, in one shape the tests can compare across CRMs."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packetworker.packets import open_packet
from packetworker.sandbox.crmaas import CrmaasEmulator
from packetworker.sandbox.dataverse import DataverseEmulator, default_entities
from packetworker.sandbox.dynamics_portal import DynamicsPortalEmulator
from packetworker.sandbox.targets.crm import CREDENTIALS, SAMPLE_CUSTOMER
from packetworker.sandbox.targets.crmaas import seed_samples as seed_crmaas
from packetworker.sandbox.targets.dataverse import field_sales_entities
from packetworker.sandbox.targets.dataverse import seed_samples as seed_dataverse
from packetworker.sandbox.targets.dynamics_portal import seed as seed_portal_record
from packetworker.sandbox.targets.dynamics_portal import seed_samples as seed_portal
from packetworker.targets.base import ApplyContext, RecordOutcome
from packetworker.targets.crm.options import RecordErrors
from packetworker.targets.crm.target import CrmTarget
from packetworker.targets.crmaas.client import CrmaasClient
from packetworker.targets.crmaas.target import CrmaasTarget
from packetworker.targets.dataverse.target import DataverseTarget
from packetworker.targets.dynamics_portal.client import DynamicsPortalClient
from packetworker.targets.dynamics_portal.target import DynamicsPortalTarget, RecordIndex
from packetworker.targets.mapping import load_mapping
from tests.crm.support import FakeTime, make_dataverse_client

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
CONTACTS = SAMPLES / "contacts"
CRMS = ("dataverse", "crmaas", "dynamics-portal")


@dataclass(frozen=True)
class ContactView:
    """A contact as any CRM holds it."""

    id: str
    number: str | None
    name: str
    email: str | None
    company_id: str | None
    address: str  # every address value, joined


def read_packet(path: Path) -> tuple[Any, list[Any]]:
    with open_packet(path) as reader:
        return reader.header, list(reader)


class Harness(ABC):
    name: str
    target: CrmTarget
    time: FakeTime

    def apply(
        self, records: list[Any], *, header: Any = None, refs: Any = None
    ) -> list[RecordOutcome]:
        ctx = ApplyContext("TEST", "packet-1", user="rep-plovdiv-07", header=header, refs=refs)
        return self.target.apply(records, ctx=ctx)

    def restart(self) -> None:
        """Close the target and start a new one on the same CRM, as a new worker process
        would: nothing the old one held in memory survives."""
        self.target.close()
        self.target = self._new_target()

    @abstractmethod
    def _new_target(self) -> CrmTarget: ...

    def apply_file(self, path: Path) -> list[RecordOutcome]:
        header, records = read_packet(path)
        return self.apply(records, header=header)

    @property
    @abstractmethod
    def emulator(self) -> Any: ...

    @abstractmethod
    def company_id(self) -> str:
        """The id of the seeded sample customer (the linked contact's company)."""

    @abstractmethod
    def contacts(self) -> list[ContactView]: ...

    @abstractmethod
    def seed_contact(self, *, number: str, email: str) -> str:
        """A contact already in the CRM (not from this target)."""

    @abstractmethod
    def counts(self) -> dict[str, int]:
        """How many records of each kind the CRM holds."""


class DataverseHarness(Harness):
    name = "dataverse"

    def __init__(self, emulator: DataverseEmulator, record_errors: RecordErrors) -> None:
        self._emulator = emulator
        self.time = FakeTime()
        self.record_errors = record_errors
        self.target = self._new_target()

    def _new_target(self) -> DataverseTarget:
        client = make_dataverse_client(
            self._emulator,
            self.time,
            client_id=CREDENTIALS.client_id,
            client_secret=CREDENTIALS.client_secret,
        )
        return DataverseTarget(
            client,
            mapping=load_mapping("dataverse-field-sales"),
            contact_mapping=load_mapping("ipaas-contact"),
            record_errors=self.record_errors,
        )

    @property
    def emulator(self) -> DataverseEmulator:
        return self._emulator

    def company_id(self) -> str:
        accounts = self._emulator.records("accounts")
        return next(a["accountid"] for a in accounts if a["accountnumber"] == "PV-01042")

    def contacts(self) -> list[ContactView]:
        return [
            ContactView(
                id=c["contactid"],
                number=c.get("new_customernumber"),
                name=" ".join(p for p in (c.get("firstname"), c.get("lastname")) if p),
                email=c.get("emailaddress1"),
                company_id=c.get("_parentcustomerid_value"),
                address=" ".join(str(v) for k, v in c.items() if k.startswith("address")),
            )
            for c in self._emulator.records("contacts")
            if c.get("new_customernumber")
        ]

    def seed_contact(self, *, number: str, email: str) -> str:
        return self._emulator.seed(
            "contacts", new_customernumber=number, emailaddress1=email, lastname="Existing"
        )

    def counts(self) -> dict[str, int]:
        return {
            "customers": len(self._emulator.records("accounts")),
            "contacts": len(self._emulator.records("contacts")),
            "activities": len(self._emulator.records("appointments")),
            "orders": len(self._emulator.records("salesorders")),
            "order lines": len(self._emulator.records("salesorderdetails")),
        }


class CrmaasHarness(Harness):
    name = "crmaas"

    def __init__(self, emulator: CrmaasEmulator, record_errors: RecordErrors) -> None:
        self._emulator = emulator
        self.time = FakeTime()
        self.record_errors = record_errors
        self.target = self._new_target()

    def _new_target(self) -> CrmaasTarget:
        client = CrmaasClient(
            self._emulator.url,
            primary_key=self._emulator.keys["primary"],
            secondary_key=self._emulator.keys["secondary"],
            page_size=2,  # small pages, so reads really page
            sleep=self.time.sleep,
        )
        return CrmaasTarget(
            client,
            mapping=load_mapping("crmaas-field-sales"),
            contact_mapping=load_mapping("ipaas-contact"),
            record_errors=self.record_errors,
        )

    @property
    def emulator(self) -> CrmaasEmulator:
        return self._emulator

    def company_id(self) -> str:
        return next(
            o["id"]
            for o in self._emulator.records("organizations")
            if (o.get("customFields") or {}).get("customer_number") == "PV-01042"
        )

    def contacts(self) -> list[ContactView]:
        return [
            ContactView(
                id=c["id"],
                number=(c.get("customFields") or {}).get("customer_number"),
                name=c["name"],
                email=next((e["value"] for e in c.get("email") or []), None),
                company_id=c.get("organizationId"),
                address=str(c.get("address") or ""),
            )
            for c in self._emulator.records("contacts")
            if (c.get("customFields") or {}).get("customer_number")
        ]

    def seed_contact(self, *, number: str, email: str) -> str:
        return self._emulator.seed(
            "contacts",
            name="Existing",
            email=[{"label": "Work", "value": email, "primary": True}],
            customFields={"customer_number": number},
        )

    def counts(self) -> dict[str, int]:
        return {
            "customers": len(self._emulator.records("organizations")),
            "contacts": len(self._emulator.records("contacts")),
            "activities": len(self._emulator.records("cases")),
            "orders": len(self._emulator.records("opportunities")),
        }


class PortalHarness(Harness):
    name = "dynamics-portal"

    def __init__(self, emulator: DynamicsPortalEmulator, record_errors: RecordErrors) -> None:
        self._emulator = emulator
        self.time = FakeTime()
        self.record_errors = record_errors
        self.index = RecordIndex()
        seed_portal(emulator, self.index)
        # What a deployment seeds every new index with (the samples' account and items).
        self._seeded = {rid: dict(r) for rid, r in emulator.records.items()}
        self.target = self._new_target()

    def _new_target(self) -> DynamicsPortalTarget:
        client = DynamicsPortalClient(
            self._emulator.url,
            client_id=CREDENTIALS.client_id,
            scope=CREDENTIALS.portal_scope,
            sleep=self.time.sleep,
        )
        if getattr(self, "target", None) is not None:  # a restart: a fresh, seeded index
            self.index = RecordIndex()
            for record_id, record in self._seeded.items():
                entity_set = record["endpoint"].rsplit("/", 1)[-1]
                self.index.remember(entity_set, record_id, record["fields"])
        return DynamicsPortalTarget(
            client,
            mapping=load_mapping("dataverse-field-sales"),
            contact_mapping=load_mapping("ipaas-contact"),
            record_errors=self.record_errors,
            index=self.index,
        )

    @property
    def emulator(self) -> DynamicsPortalEmulator:
        return self._emulator

    def _fields(self, entity_set: str) -> list[tuple[str, dict[str, Any]]]:
        return [
            (record_id, r["fields"])
            for record_id, r in list(self._emulator.records.items())
            if r["endpoint"] == f"/api/data/v9.2/{entity_set}"
        ]

    def company_id(self) -> str:
        return next(i for i, f in self._fields("accounts") if f["accountnumber"] == "PV-01042")

    def contacts(self) -> list[ContactView]:
        views = []
        for record_id, c in self._fields("contacts"):
            if not c.get("new_customernumber"):
                continue
            bind = c.get("parentcustomerid_account@odata.bind")
            views.append(
                ContactView(
                    id=record_id,
                    number=c.get("new_customernumber"),
                    name=" ".join(p for p in (c.get("firstname"), c.get("lastname")) if p),
                    email=c.get("emailaddress1"),
                    company_id=bind[len("/accounts(") : -1] if bind else None,
                    address=" ".join(str(v) for k, v in c.items() if k.startswith("address")),
                )
            )
        return views

    def seed_contact(self, *, number: str, email: str) -> str:
        return seed_portal_record(
            self._emulator,
            self.index,
            "contacts",
            new_customernumber=number,
            emailaddress1=email,
            lastname="Existing",
        )

    def counts(self) -> dict[str, int]:
        return {
            "customers": len(self._fields("accounts")),
            "contacts": len(self._fields("contacts")),
            "activities": len(self._fields("appointments")),
            "orders": len(self._fields("salesorders")),
            "order lines": len(self._fields("salesorderdetails")),
        }


def dataverse_org(**org: Any) -> dict[str, Any]:
    """The Field Sales tables, with accounts and contacts as `default_entities(**org)`."""
    return {**field_sales_entities(), **default_entities(**org)}


@contextmanager
def harness_for(
    name: str,
    *,
    record_errors: RecordErrors = "quarantine",
    org: dict[str, Any] | None = None,
    emulator_options: dict[str, Any] | None = None,
) -> Iterator[Harness]:
    """A started, seeded emulator of CRM `name` and a target on it; both stopped after.
    `org` shapes a Dataverse org (`default_entities` options); `emulator_options` go to the
    emulator's constructor."""
    options = dict(emulator_options or {})
    if name == "dataverse":
        emulator: Any = DataverseEmulator(
            clients={CREDENTIALS.client_id: CREDENTIALS.client_secret},
            entities=dataverse_org(**(org or {})),
            **options,
        )
        with emulator:
            seed_dataverse(emulator)
            harness: Harness = DataverseHarness(emulator, record_errors)
            yield harness
            harness.target.close()
    elif name == "crmaas":
        with CrmaasEmulator(**options) as emulator:
            seed_crmaas(emulator)
            harness = CrmaasHarness(emulator, record_errors)
            yield harness
            harness.target.close()
    else:
        with DynamicsPortalEmulator(
            clients={CREDENTIALS.client_id: CREDENTIALS.portal_scope}, **options
        ) as emulator:
            harness = PortalHarness(emulator, record_errors)
            yield harness
            harness.target.close()


__all__ = ["CONTACTS", "CRMS", "SAMPLES", "SAMPLE_CUSTOMER", "ContactView", "Harness"]
