"""CrmaasClient against the CRM as a Service emulator over real HTTP on 127.0.0.1."""

from __future__ import annotations

import pytest

from packetworker.sandbox.crmaas import CrmaasEmulator
from packetworker.settings import Settings
from packetworker.targets.crmaas import (
    CrmaasAuthError,
    CrmaasClient,
    CrmaasConflict,
    CrmaasError,
    CrmaasNotFound,
    CrmaasThrottled,
    CrmaasValidationError,
)


@pytest.fixture
def client(crmaas, fake_time):
    with CrmaasClient(
        crmaas.url,
        primary_key="primary-key-1",
        secondary_key="secondary-key-2",
        sleep=fake_time.sleep,
    ) as client:
        yield client


def contact(name: str, email: str = "", **fields):
    emails = [{"label": "Work", "value": email, "primary": True}] if email else []
    return {"name": name, "email": emails, **fields}


# --- auth -------------------------------------------------------------------------------------


def test_requests_authenticate_with_the_primary_key(crmaas, client):
    client.contacts.create(contact("Jane Doe", "jane@work.com"))

    assert crmaas.accepted_keys == ["primary"]
    assert client.auth.active == "primary"


def test_refused_primary_key_falls_back_to_the_secondary_and_sticks(crmaas, client):
    crmaas.regenerate("primary")

    client.contacts.create(contact("Jane Doe", "jane@work.com"))
    client.contacts.create(contact("John Doe", "john@work.com"))

    assert crmaas.accepted_keys == ["secondary", "secondary"]
    assert client.auth.active == "secondary"
    # one refused request with the primary, then only the secondary
    assert len(crmaas.requests_to("POST", "/directory/contacts")) == 3


def test_both_keys_refused_raises_auth_error_without_the_keys(crmaas, client):
    crmaas.regenerate("primary")
    crmaas.regenerate("secondary")

    with pytest.raises(CrmaasAuthError) as caught:
        client.contacts.create(contact("Jane Doe", "jane@work.com"))

    assert caught.value.status == 401
    assert "primary-key-1" not in str(caught.value)
    assert "secondary-key-2" not in str(caught.value)
    assert crmaas.records("contacts") == []


def test_logged_key_headers_are_masked(crmaas, client):
    client.contacts.create(contact("Jane Doe", "jane@work.com"))

    [post] = crmaas.requests_to("POST", "/directory/contacts")
    assert post.headers["Ocp-Apim-Subscription-Key"] == "***"


# --- CRUD -------------------------------------------------------------------------------------


def test_create_contact_returns_the_stored_item(crmaas, client):
    created = client.contacts.create(contact("Jane Doe", "jane@work.com", jobTitle="Engineer"))

    [stored] = crmaas.records("contacts")
    assert created == stored
    assert (stored["name"], stored["jobTitle"]) == ("Jane Doe", "Engineer")


def test_update_is_partial(crmaas, client):
    created = client.contacts.create(contact("Jane Doe", "jane@work.com", jobTitle="Engineer"))

    updated = client.contacts.update(created["id"], {"jobTitle": "Senior Engineer"})

    assert (updated["name"], updated["jobTitle"]) == ("Jane Doe", "Senior Engineer")


def test_get_and_delete(crmaas, client):
    org = client.organizations.create({"name": "Acme", "email": []})

    assert client.organizations.get(org["id"])["name"] == "Acme"
    client.organizations.delete(org["id"])
    with pytest.raises(CrmaasNotFound):
        client.organizations.get(org["id"])
    assert crmaas.records("organizations") == []


def test_list_pages_through_every_record_with_page_and_size(crmaas, client):
    for n in range(7):
        crmaas.seed("organizations", name=f"Org {n}")

    names = [o["name"] for o in client.organizations.list(size=3)]

    assert names == [f"Org {n}" for n in range(7)]
    pages = [r.query for r in crmaas.requests_to("GET", "/directory/organizations")]
    assert pages == ["page=1&size=3", "page=2&size=3", "page=3&size=3"]


def test_list_passes_filters(crmaas, client):
    client.contacts.create(contact("Jane Doe", "jane@work.com"))
    client.contacts.create(contact("John Doe", "john@work.com"))

    found = list(client.contacts.list(email="JOHN@work.com"))

    assert [c["name"] for c in found] == ["John Doe"]


# --- the contact rules' failure cases: undocumented, so switchable ------------------------------
# The API reference documents status families only; the emulator answers the contact rules per its
# `contact_errors` variant and the client classifies by status, never by code.

REFUSALS = {
    "invalid email": (lambda org: contact("Jane Doe", "jane.at.work"), 400, "invalid_email"),
    "missing email": (lambda org: contact("Jane Doe"), 400, "missing_email"),
    "duplicate email": (lambda org: contact("Jane D.", "Jane@Work.com"), 409, "duplicate_contact"),
    "unknown organization": (
        lambda org: contact("Jane Doe", "jane2@work.com", organizationId="999"),
        404,
        "organization_not_found",
    ),
}
KIND = {400: CrmaasValidationError, 409: CrmaasConflict, 404: CrmaasNotFound}


@pytest.mark.parametrize("case", REFUSALS)
def test_plain_variant_refuses_each_contact_rule_with_a_bare_400(crmaas, client, case):
    client.contacts.create(contact("Jane Doe", "jane@work.com"))
    body, _, _ = REFUSALS[case]

    with pytest.raises(CrmaasValidationError) as caught:
        client.contacts.create(body(None))

    assert (caught.value.status, caught.value.code, caught.value.transient) == (400, "", False)
    assert len(crmaas.records("contacts")) == 1


@pytest.mark.parametrize("case", REFUSALS)
def test_coded_variant_refusals_are_classified_by_status_alone(case):
    with CrmaasEmulator(contact_errors="coded") as coded:
        with CrmaasClient(coded.url, primary_key=coded.keys["primary"]) as coded_client:
            coded_client.contacts.create(contact("Jane Doe", "jane@work.com"))
            body, status, code = REFUSALS[case]

            with pytest.raises(CrmaasError) as caught:
                coded_client.contacts.create(body(None))

        assert type(caught.value) is KIND[status]
        assert (caught.value.status, caught.value.code) == (status, code)
        assert len(coded.records("contacts")) == 1


def test_lenient_variant_stores_what_it_is_sent():
    with CrmaasEmulator(contact_errors="lenient") as lenient:
        with CrmaasClient(lenient.url, primary_key=lenient.keys["primary"]) as lenient_client:
            for body, _, _ in REFUSALS.values():
                lenient_client.contacts.create(body(None))

        assert len(lenient.records("contacts")) == len(REFUSALS)


def test_contact_linked_to_an_existing_organization_is_created(crmaas, client):
    org = client.organizations.create({"name": "Acme"})

    created = client.contacts.create(contact("Jane Doe", "jane@work.com", organizationId=org["id"]))

    assert created["organizationId"] == org["id"]


# --- leads, opportunities, merges, bulk -----------------------------------------------------------


def test_lead_archive_and_unarchive(client):
    lead = client.leads.create(
        {"title": "Cloud Migration", "value": {"amount": 100, "code": "USD"}}
    )

    assert client.archive_lead(lead["id"])["isArchived"] is True
    assert client.unarchive_lead(lead["id"])["isArchived"] is False


def test_lead_conversion_creates_an_opportunity(crmaas, client):
    lead = client.leads.create(
        {"title": "Cloud Migration", "value": {"amount": 100, "code": "USD"}}
    )

    opportunity = client.convert_lead(lead["id"])

    assert (opportunity["title"], opportunity["leadId"]) == ("Cloud Migration", lead["id"])
    assert crmaas.records("opportunities") == [opportunity]
    assert client.leads.get(lead["id"])["isConverted"] is True


def test_opportunity_status_and_stage_updates(client):
    opportunity = client.opportunities.create({"title": "Deal"})

    client.update_opportunity_stage(opportunity["id"], "propose")
    lost = client.update_opportunity_status(
        opportunity["id"], "lost", lostReason={"reasonId": "too_expensive"}
    )

    assert (lost["stage"], lost["status"]) == ("propose", "lost")
    assert lost["lostReason"] == {"reasonId": "too_expensive"}


def test_merge_contacts_keeps_the_target_and_removes_the_sources(crmaas, client):
    target = client.contacts.create(contact("Jane Doe", "jane@work.com"))
    source = client.contacts.create(contact("Jane D.", "jane@home.com", jobTitle="Engineer"))

    merged = client.merge_contacts(target["id"], [source["id"]])

    assert [e["value"] for e in merged["email"]] == ["jane@work.com", "jane@home.com"]
    assert merged["jobTitle"] == "Engineer"
    assert [c["id"] for c in crmaas.records("contacts")] == [target["id"]]


def test_bulk_delete_removes_the_listed_records(crmaas, client):
    ids = [client.leads.create({"title": f"L{n}"})["id"] for n in range(3)]

    client.bulk_delete("lead", ids[:2])

    assert [lead["id"] for lead in crmaas.records("leads")] == [ids[2]]
    [bulk] = crmaas.requests_to("POST", "/pipeline/bulk-actions")
    assert bulk.json() == {"entity": "lead", "action": "delete", "ids": ids[:2]}


def test_tags_and_forms(client):
    tag = client.tags("contacts").create({"label": "newsletter", "color": "#ffa500"})
    client.put_form("contacts", {"fields": [{"id": "name", "label": "Name", "type": "text"}]})

    assert [t["label"] for t in client.tags("contacts").list()] == ["newsletter"]
    assert tag["color"] == "#ffa500"
    assert client.form("contacts") == [{"id": "name", "label": "Name", "type": "text"}]


def test_case_refers_to_an_existing_organization(crmaas, client):
    org = client.organizations.create({"name": "Acme"})
    case_type = client.case_types.create({"label": "Feature Request"})

    case = client.cases.create(
        {
            "title": "Outage",
            "status": "open",
            "organizationId": org["id"],
            "caseTypeId": case_type["id"],
        }
    )
    with pytest.raises(CrmaasValidationError):  # the default variant: a bare 400
        client.cases.create({"title": "Orphan", "organizationId": "404"})

    assert [c["id"] for c in client.cases.list(status="open")] == [case["id"]]


# --- throttling -------------------------------------------------------------------------------


def test_throttling_is_ridden_out_honouring_retry_after(crmaas, client, fake_time):
    crmaas.faults.storm(2, retry_after=4)

    client.contacts.create(contact("Jane Doe", "jane@work.com"))

    assert fake_time.sleeps == [4.0, 4.0]
    assert len(crmaas.records("contacts")) == 1


def test_retry_after_beyond_the_longest_wait_gives_up_at_once(crmaas, fake_time):
    crmaas.faults.storm(3, retry_after=300)
    client = CrmaasClient(crmaas.url, primary_key="primary-key-1", sleep=fake_time.sleep)
    with client, pytest.raises(CrmaasThrottled) as caught:
        list(client.leads.list())

    assert (caught.value.transient, caught.value.retry_after) == (True, 300.0)
    assert fake_time.sleeps == []


def test_client_is_built_from_settings(crmaas):
    settings = Settings(
        _env_file=None,
        crmaas_url=crmaas.url,
        crmaas_primary_key="stale-key",
        crmaas_secondary_key="secondary-key-2",
    )

    with CrmaasClient.from_settings(settings) as client:
        client.organizations.create({"name": "Acme"})

    assert crmaas.accepted_keys == ["secondary"]
