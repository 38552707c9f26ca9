"""DataverseClient against the Dataverse emulator over real HTTP on 127.0.0.1."""

from __future__ import annotations

import threading

import pytest

from packetworker.settings import Settings
from packetworker.targets.dataverse import (
    BatchOperation,
    DataverseAuthError,
    DataverseClient,
    DuplicateDetected,
    DuplicateRecord,
    LookupTargetNotFound,
    RecordNotFound,
    Throttled,
    Unavailable,
    bind,
)
from packetworker.targets.dataverse.batch import encode_batch
from packetworker.targets.dataverse.errors import InvalidRequest
from tests.crm.support import make_dataverse_client

# --- auth -------------------------------------------------------------------------------------


def test_token_is_requested_with_client_credentials_and_environment_scope(dataverse, dv_client):
    dv_client.create("contacts", {"lastname": "Brennan"})

    assert dataverse.token_requests == [
        {
            "grant_type": "client_credentials",
            "client_id": "app-id",
            "client_secret": "***",
            "scope": f"{dataverse.url}/.default",
        }
    ]


def test_token_is_reused_while_valid(dataverse, dv_client):
    dv_client.create("contacts", {"lastname": "A"})
    dv_client.create("contacts", {"lastname": "B"})

    assert len(dataverse.token_requests) == 1


def test_token_close_to_expiry_is_renewed_before_the_call(dataverse, fake_time):
    dataverse.token_lifetime = 30  # inside the client's 60 s leeway: renewed every call
    with make_dataverse_client(dataverse, fake_time) as client:
        client.create("contacts", {"lastname": "A"})
        client.create("contacts", {"lastname": "B"})

    assert len(dataverse.token_requests) == 2
    assert len(dataverse.records("contacts")) == 2


def test_revoked_token_is_replaced_once_after_a_401(dataverse, dv_client):
    dv_client.create("contacts", {"lastname": "A"})
    dataverse.revoke_tokens()

    dv_client.create("contacts", {"lastname": "B"})

    assert len(dataverse.token_requests) == 2
    assert [r["lastname"] for r in dataverse.records("contacts")] == ["A", "B"]


def test_wrong_client_secret_raises_auth_error_without_the_secret(dataverse, fake_time):
    client = make_dataverse_client(dataverse, fake_time, client_secret="wrong-secret-xyz")
    with client, pytest.raises(DataverseAuthError) as caught:
        client.create("contacts", {"lastname": "A"})

    assert caught.value.transient is False
    assert "wrong-secret-xyz" not in str(caught.value)
    assert dataverse.records("contacts") == []


# --- create / update / upsert / delete ----------------------------------------------------------


def test_create_returns_the_id_from_odata_entityid(dataverse, dv_client):
    new_id = dv_client.create("contacts", {"firstname": "Aoife", "lastname": "Brennan"})

    [stored] = dataverse.records("contacts")
    assert stored["contactid"] == new_id
    assert (stored["firstname"], stored["lastname"]) == ("Aoife", "Brennan")


def test_requests_carry_the_odata_headers(dataverse, dv_client):
    dv_client.create("contacts", {"lastname": "A"})

    [post] = dataverse.requests_to("POST", "/contacts")
    assert post.headers["Odata-Version"] == "4.0"
    assert post.headers["Odata-Maxversion"] == "4.0"
    assert post.headers["Accept"] == "application/json"
    assert post.headers["Authorization"] == "***"


def test_update_changes_the_sent_columns_only(dataverse, dv_client):
    contact_id = dv_client.create("contacts", {"firstname": "Aoife", "lastname": "Brennan"})

    dv_client.update("contacts", contact_id, {"lastname": "Byrne"})

    [stored] = dataverse.records("contacts")
    assert (stored["firstname"], stored["lastname"]) == ("Aoife", "Byrne")
    [patch] = dataverse.requests_to("PATCH")
    assert patch.headers["If-Match"] == "*"


def test_update_of_a_missing_record_raises_record_not_found(dataverse, dv_client):
    with pytest.raises(RecordNotFound) as caught:
        dv_client.update("contacts", "00000000-0000-0000-0000-0000000000aa", {"lastname": "X"})

    assert type(caught.value) is RecordNotFound
    assert caught.value.status == 404
    assert dataverse.records("contacts") == []


def test_upsert_by_alternate_key_creates_then_updates_the_same_record(dataverse, dv_client):
    first = dv_client.upsert("accounts", {"accountnumber": "A1"}, {"name": "Contoso"})
    second = dv_client.upsert("accounts", {"accountnumber": "A1"}, {"name": "Contoso Ltd"})

    [stored] = dataverse.records("accounts")
    assert first == second == stored["accountid"]
    assert (stored["accountnumber"], stored["name"]) == ("A1", "Contoso Ltd")
    assert [r.path for r in dataverse.requests_to("PATCH")] == [
        "/api/data/v9.2/accounts(accountnumber='A1')"
    ] * 2


def test_create_only_upsert_of_an_existing_key_raises_duplicate_record(dataverse, dv_client):
    dv_client.upsert("accounts", {"accountnumber": "A1"}, {"name": "Contoso"})

    with pytest.raises(DuplicateRecord) as caught:
        dv_client.upsert("accounts", {"accountnumber": "A1"}, {"name": "Other"}, mode="create")

    assert caught.value.status == 412
    assert [r["name"] for r in dataverse.records("accounts")] == ["Contoso"]


def test_update_only_upsert_of_a_missing_key_raises_record_not_found(dataverse, dv_client):
    with pytest.raises(RecordNotFound):
        dv_client.upsert("accounts", {"accountnumber": "NOPE"}, {"name": "X"}, mode="update")

    assert dataverse.records("accounts") == []


def test_key_that_is_not_a_defined_alternate_key_is_an_invalid_request(dataverse, dv_client):
    with pytest.raises(InvalidRequest) as caught:
        dv_client.upsert("contacts", {"emailaddress1": "a@b.ie"}, {"lastname": "X"})

    assert caught.value.status == 400
    assert "not valid for resource" in caught.value.dataverse_message


def test_delete_removes_the_record(dataverse, dv_client):
    contact_id = dv_client.create("contacts", {"lastname": "A"})

    dv_client.delete("contacts", contact_id)

    assert dataverse.records("contacts") == []


def test_delete_of_a_missing_record_raises_record_not_found(dv_client):
    with pytest.raises(RecordNotFound):
        dv_client.delete("contacts", "00000000-0000-0000-0000-0000000000bb")


# --- duplicates -------------------------------------------------------------------------------


def test_duplicate_detection_runs_only_when_the_request_asks_for_it(dataverse, dv_client):
    dv_client.create("contacts", {"lastname": "A", "emailaddress1": "a@hlf.ie"})

    with pytest.raises(DuplicateDetected) as caught:
        dv_client.create(
            "contacts", {"lastname": "B", "emailaddress1": "A@hlf.ie"}, detect_duplicates=True
        )

    assert (caught.value.status, caught.value.code) == (500, "0x80040333")
    assert caught.value.transient is False
    assert len(dataverse.records("contacts")) == 1
    last_post = dataverse.requests_to("POST", "/contacts")[-1]
    assert last_post.headers["Mscrm.Suppressduplicatedetection"] == "false"


def test_duplicate_detection_is_off_by_default_as_in_the_web_api(dataverse, dv_client):
    dv_client.create("contacts", {"lastname": "A", "emailaddress1": "a@hlf.ie"})

    dv_client.create("contacts", {"lastname": "B", "emailaddress1": "a@hlf.ie"})

    assert len(dataverse.records("contacts")) == 2
    assert "Mscrm.Suppressduplicatedetection" not in dataverse.requests_to("POST")[-1].headers


def test_duplicate_detection_also_guards_updates_when_asked(dataverse, dv_client):
    dv_client.create("contacts", {"lastname": "A", "emailaddress1": "a@hlf.ie"})
    other = dv_client.create("contacts", {"lastname": "B", "emailaddress1": "b@hlf.ie"})

    with pytest.raises(DuplicateDetected):
        dv_client.update("contacts", other, {"emailaddress1": "a@hlf.ie"}, detect_duplicates=True)

    assert sorted(c["emailaddress1"] for c in dataverse.records("contacts")) == [
        "a@hlf.ie",
        "b@hlf.ie",
    ]


def test_duplicate_detection_can_be_suppressed(dataverse, dv_client):
    dv_client.create("contacts", {"lastname": "A", "emailaddress1": "a@hlf.ie"})

    dv_client.create(
        "contacts", {"lastname": "B", "emailaddress1": "a@hlf.ie"}, detect_duplicates=False
    )

    assert len(dataverse.records("contacts")) == 2
    last_post = dataverse.requests_to("POST", "/contacts")[-1]
    assert last_post.headers["Mscrm.Suppressduplicatedetection"] == "true"


def test_duplicate_alternate_key_is_reported_as_duplicate_record(dataverse, dv_client):
    dv_client.create("accounts", {"name": "Contoso", "accountnumber": "A1"})

    with pytest.raises(DuplicateRecord) as caught:
        dv_client.create(
            "accounts", {"name": "Other", "accountnumber": "A1"}, detect_duplicates=False
        )

    assert caught.value.code == "0x80040237"
    assert len(dataverse.records("accounts")) == 1


# --- lookups ----------------------------------------------------------------------------------


def test_lookup_bound_by_id_fills_the_lookup_column(dataverse, dv_client):
    account_id = dv_client.create("accounts", {"name": "Contoso", "accountnumber": "A1"})

    dv_client.create(
        "contacts",
        {"lastname": "A", "parentcustomerid_account@odata.bind": bind("accounts", account_id)},
    )

    [contact] = dataverse.records("contacts")
    assert contact["_parentcustomerid_value"] == account_id


def test_lookup_bound_by_alternate_key_fills_the_lookup_column(dataverse, dv_client):
    account_id = dv_client.create("accounts", {"name": "Contoso", "accountnumber": "A1"})

    dv_client.create(
        "contacts",
        {
            "lastname": "A",
            "parentcustomerid_account@odata.bind": bind("accounts", {"accountnumber": "A1"}),
        },
    )

    [contact] = dataverse.records("contacts")
    assert contact["_parentcustomerid_value"] == account_id


def test_lookup_to_a_missing_record_raises_lookup_target_not_found(dataverse, dv_client):
    with pytest.raises(LookupTargetNotFound) as caught:
        dv_client.create(
            "contacts",
            {
                "lastname": "A",
                "parentcustomerid_account@odata.bind": bind("accounts", {"accountnumber": "X9"}),
            },
        )

    assert (caught.value.status, caught.value.code) == (404, "0x80040217")
    assert dataverse.records("contacts") == []


# --- retrieve and query -------------------------------------------------------------------------


def test_retrieve_by_alternate_key_returns_the_selected_columns(dataverse, dv_client):
    account_id = dv_client.create(
        "accounts", {"name": "Contoso", "accountnumber": "A1", "telephone1": "1"}
    )

    record = dv_client.retrieve("accounts", {"accountnumber": "A1"}, select=["name"])

    assert record["accountid"] == account_id
    assert record["name"] == "Contoso"
    assert "telephone1" not in record


def test_query_follows_next_links_page_by_page(dataverse, dv_client):
    for n in range(7):
        dataverse.seed("contacts", lastname=f"L{n}")

    rows = list(dv_client.query("contacts", select=["lastname"], maxpagesize=3))

    assert [r["lastname"] for r in rows] == [f"L{n}" for n in range(7)]
    gets = dataverse.requests_to("GET", "/contacts")
    assert len(gets) == 3
    assert {g.headers["Prefer"] for g in gets} == {"odata.maxpagesize=3"}


def test_query_filter_selects_matching_records(dataverse, dv_client):
    dataverse.seed("contacts", lastname="A", emailaddress1="a@hlf.ie")
    dataverse.seed("contacts", lastname="B", emailaddress1="b@hlf.ie")

    rows = list(dv_client.query("contacts", filter="emailaddress1 eq 'b@hlf.ie'"))

    assert [r["lastname"] for r in rows] == ["B"]


# --- $batch -----------------------------------------------------------------------------------


def test_change_set_creates_records_that_reference_each_other(dataverse, dv_client):
    answers = dv_client.batch(
        [
            BatchOperation("POST", "accounts", {"name": "Contoso", "accountnumber": "A1"}),
            BatchOperation(
                "POST", "contacts", {"lastname": "A", "parentcustomerid_account@odata.bind": "$1"}
            ),
        ]
    )

    [account] = dataverse.records("accounts")
    [contact] = dataverse.records("contacts")
    assert [a.status for a in answers] == [204, 204]
    assert [a.entity_id for a in answers] == [account["accountid"], contact["contactid"]]
    assert contact["_parentcustomerid_value"] == account["accountid"]


def test_failed_change_set_rolls_back_every_operation(dataverse, dv_client):
    dataverse.seed("accounts", name="Existing", accountnumber="A1")

    answers = dv_client.batch(
        [
            BatchOperation("POST", "contacts", {"lastname": "Kept?"}),
            BatchOperation(
                "POST",
                "accounts",
                {"name": "Clash", "accountnumber": "A1"},
                headers={"MSCRM.SuppressDuplicateDetection": "true"},
            ),
        ]
    )

    assert dataverse.records("contacts") == []
    assert [r["name"] for r in dataverse.records("accounts")] == ["Existing"]
    [failure] = answers
    assert failure.status == 412
    assert isinstance(failure.error(), DuplicateRecord)


def _three_operations_the_second_failing() -> list[BatchOperation]:
    return [
        BatchOperation("POST", "contacts", {"lastname": "Kept"}),
        BatchOperation(
            "PATCH",
            "contacts(00000000-0000-0000-0000-0000000000cc)",
            {"lastname": "X"},
            headers={"If-Match": "*"},
        ),
        BatchOperation("POST", "contacts", {"lastname": "After the failure"}),
    ]


def test_batch_stops_at_the_first_failure_and_answers_with_its_status(dataverse, dv_client):
    answers = dv_client.batch(_three_operations_the_second_failing(), changeset=False)

    assert [a.status for a in answers] == [404]
    assert isinstance(answers[0].error(), RecordNotFound)
    assert [r["lastname"] for r in dataverse.records("contacts")] == ["Kept"]
    assert dataverse.requests_to("POST", "$batch")  # one request, decoded despite its 404


def test_batch_with_continue_on_error_runs_every_operation(dataverse, dv_client):
    answers = dv_client.batch(
        _three_operations_the_second_failing(), changeset=False, continue_on_error=True
    )

    assert [a.status for a in answers] == [204, 404, 204]
    assert sorted(r["lastname"] for r in dataverse.records("contacts")) == [
        "After the failure",
        "Kept",
    ]


def test_batch_body_with_bare_line_feeds_is_refused_as_unreadable(dataverse, dv_client):
    content_type, body = encode_batch(
        [BatchOperation("POST", "contacts", {"lastname": "A"})],
        api_path="/api/data/v9.2/",
        changeset=False,
    )

    with pytest.raises(InvalidRequest) as caught:
        dv_client._request(
            "POST",
            "$batch",
            content=body.replace(b"\r\n", b"\n"),
            headers={"Content-Type": content_type},
        )

    assert (caught.value.status, caught.value.code) == (400, "0x80048d19")
    assert dataverse.records("contacts") == []


def test_batch_of_more_than_a_thousand_operations_is_refused_whole(dataverse, dv_client):
    operations = [BatchOperation("POST", "contacts", {"lastname": f"C{n}"}) for n in range(1001)]

    with pytest.raises(InvalidRequest) as caught:
        dv_client.batch(operations, changeset=False)

    assert "1001" in caught.value.dataverse_message
    assert dataverse.records("contacts") == []


# --- service protection -----------------------------------------------------------------------


def test_throttling_storm_is_ridden_out_honouring_retry_after(dataverse, dv_client, fake_time):
    dataverse.faults.storm(2, retry_after=3)

    dv_client.create("contacts", {"lastname": "A"})

    assert fake_time.sleeps == [3.0, 3.0]
    assert dataverse.faults.throttled == 2
    assert len(dataverse.records("contacts")) == 1


def test_throttled_threads_share_one_pause(dataverse, dv_client, fake_time):
    dataverse.faults.storm(4, retry_after=5, together=4)
    errors: list[BaseException] = []

    def create(n: int) -> None:
        try:
            dv_client.create("contacts", {"lastname": f"T{n}"})
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=create, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert errors == []
    assert fake_time.sleeps == [5.0]
    assert sorted(r["lastname"] for r in dataverse.records("contacts")) == ["T0", "T1", "T2", "T3"]


def test_retry_after_beyond_the_longest_wait_gives_up_at_once(dataverse, fake_time):
    dataverse.faults.storm(5, retry_after=120)
    client = make_dataverse_client(dataverse, fake_time, backoff_max=60)
    with client, pytest.raises(Throttled) as caught:
        client.create("contacts", {"lastname": "A"})

    assert (caught.value.transient, caught.value.retry_after) == (True, 120.0)
    assert fake_time.sleeps == []
    assert dataverse.faults.throttled == 1


def test_create_is_not_resent_after_a_server_error(dataverse, dv_client):
    dataverse.faults.fail(1, status=503)

    with pytest.raises(Unavailable) as caught:
        dv_client.create("contacts", {"lastname": "A"})

    assert caught.value.transient is True
    assert len(dataverse.requests_to("POST", "/contacts")) == 1


def test_upsert_is_resent_after_a_server_error(dataverse, dv_client, fake_time):
    dataverse.faults.fail(2, status=503)

    dv_client.upsert("accounts", {"accountnumber": "A1"}, {"name": "Contoso"})

    assert len(dataverse.requests_to("PATCH")) == 3
    assert len(fake_time.sleeps) == 2
    assert [r["name"] for r in dataverse.records("accounts")] == ["Contoso"]


def test_calls_during_a_long_pause_fail_fast_without_reaching_the_server(dataverse, fake_time):
    dataverse.faults.storm(1, retry_after=120)
    client = make_dataverse_client(dataverse, fake_time, backoff_max=60)
    with client:
        with pytest.raises(Throttled):
            client.create("contacts", {"lastname": "A"})
        sent = len(dataverse.requests_to("POST", "/contacts"))

        with pytest.raises(Throttled) as caught:
            client.create("contacts", {"lastname": "B"})

    assert caught.value.retry_after == 120.0
    assert len(dataverse.requests_to("POST", "/contacts")) == sent == 1
    assert dataverse.records("contacts") == []


def test_in_flight_requests_are_capped(dataverse, fake_time):
    dataverse.faults.hold()
    with make_dataverse_client(dataverse, fake_time, max_concurrency=3) as client:
        threads = [
            threading.Thread(target=client.create, args=("contacts", {"lastname": f"C{n}"}))
            for n in range(8)
        ]
        for thread in threads:
            thread.start()
        reached = dataverse.faults.wait_in_flight(3)
        dataverse.faults.release()
        for thread in threads:
            thread.join(30)

    assert reached is True
    assert dataverse.faults.peak_in_flight == 3
    assert len(dataverse.records("contacts")) == 8


def test_client_is_built_from_settings(dataverse, fake_time):
    settings = Settings(
        _env_file=None,
        dataverse_url=dataverse.url,
        dataverse_tenant=dataverse.tenant,
        dataverse_client_id="app-id",
        dataverse_client_secret="s3cr3t-value",
        dataverse_token_url=dataverse.url + "/{tenant}/oauth2/v2.0/token",
        dataverse_max_concurrency=4,
    )

    with DataverseClient.from_settings(settings, sleep=fake_time.sleep) as client:
        new_id = client.create("contacts", {"lastname": "A"})

    assert client.gate.max_concurrency == 4
    assert [r["contactid"] for r in dataverse.records("contacts")] == [new_id]
