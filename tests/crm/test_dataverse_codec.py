"""Pure parts of the Dataverse client: addresses, the $batch codec, error mapping."""

from __future__ import annotations

import pytest

from packetworker.targets.dataverse.batch import BatchOperation, decode_batch, encode_batch
from packetworker.targets.dataverse.errors import (
    DataverseAuthError,
    DuplicateDetected,
    DuplicateRecord,
    InvalidRequest,
    LookupTargetNotFound,
    PreconditionFailed,
    RecordNotFound,
    Throttled,
    Unavailable,
    error_for,
)
from packetworker.targets.dataverse.odata import bind, entity_id, record_path

GUID = "00000000-0000-0000-0000-000000000001"


def test_alternate_key_strings_are_quoted_with_quotes_doubled():
    assert record_path("contacts", {"lastname": "O'Brien"}) == "contacts(lastname='O''Brien')"


def test_multi_part_alternate_key_keeps_numbers_bare():
    assert bind("accounts", {"accountnumber": "A1", "region": 4}) == (
        "/accounts(accountnumber='A1',region=4)"
    )


def test_a_plain_string_key_must_be_a_guid():
    with pytest.raises(ValueError, match="not a GUID"):
        record_path("accounts", "A1")


def test_entity_id_is_read_from_the_odata_entityid_uri():
    assert entity_id(f"https://org.crm4.dynamics.com/api/data/v9.2/accounts({GUID})") == GUID


def test_change_set_numbers_content_ids_and_prefixes_the_api_path():
    content_type, body = encode_batch(
        [
            BatchOperation("POST", "accounts", {"name": "A"}),
            BatchOperation("PATCH", "$1", {"name": "B"}),
        ],
        api_path="/api/data/v9.2/",
        changeset=True,
        boundary="batch_x",
    )
    text = body.decode()

    assert content_type == "multipart/mixed; boundary=batch_x"
    assert "Content-ID: 1\r\n\r\nPOST /api/data/v9.2/accounts HTTP/1.1\r\n" in text
    assert "Content-ID: 2\r\n\r\nPATCH $1 HTTP/1.1\r\n" in text
    assert 'Content-Type: application/json; type=entry\r\n\r\n{"name": "A"}' in text
    assert text.endswith("--batch_x--\r\n")


def test_change_set_refuses_get_requests():
    with pytest.raises(ValueError, match="GET"):
        encode_batch(
            [BatchOperation("GET", "accounts")], api_path="/api/data/v9.2/", changeset=True
        )


def test_batch_response_is_decoded_in_order_with_change_sets_flattened():
    body = (
        "--batchresponse_1\r\n"
        "Content-Type: multipart/mixed; boundary=changesetresponse_2\r\n\r\n"
        "--changesetresponse_2\r\n"
        "Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n"
        "Content-ID: 1\r\n\r\n"
        "HTTP/1.1 204 No Content\r\n"
        f"OData-EntityId: https://org.crm.dynamics.com/api/data/v9.2/accounts({GUID})\r\n\r\n\r\n"
        "--changesetresponse_2--\r\n"
        "--batchresponse_1\r\n"
        "Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
        "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n\r\n"
        '{"error":{"code":"0x80040217","message":"contact With Id = x Does Not Exist"}}\r\n'
        "--batchresponse_1--\r\n"
    ).encode()

    first, second = decode_batch("multipart/mixed; boundary=batchresponse_1", body)

    assert (first.status, first.content_id, first.entity_id) == (204, "1", GUID)
    assert first.error() is None
    assert second.status == 404
    assert isinstance(second.error(), RecordNotFound)


@pytest.mark.parametrize(
    ("status", "code", "message", "creates", "kind", "transient"),
    [
        (412, "0x80040237", "Cannot insert duplicate key", False, DuplicateRecord, False),
        (
            412,
            "",
            "A record with matching key values already exists.",
            False,
            DuplicateRecord,
            False,
        ),
        (
            412,
            "",
            "The version of the existing record doesn't match",
            False,
            PreconditionFailed,
            False,
        ),
        (500, "0x80040333", "duplicate of the current record", False, DuplicateDetected, False),
        (404, "0x80040217", "account With Id = x Does Not Exist", False, RecordNotFound, False),
        (
            404,
            "0x80040217",
            "account With Id = x Does Not Exist",
            True,
            LookupTargetNotFound,
            False,
        ),
        (429, "0x80072322", "Number of requests exceeded", False, Throttled, True),
        (401, "", "Unauthorized", False, DataverseAuthError, False),
        (400, "0x80044331", "too long", False, InvalidRequest, False),
        (503, "", "Service Unavailable", False, Unavailable, True),
    ],
)
def test_errors_map_to_clear_outcomes(status, code, message, creates, kind, transient):
    error = error_for(status, code, message, creates=creates)

    assert type(error) is kind
    assert error.transient is transient


def test_error_messages_never_carry_bearer_tokens():
    error = error_for(400, "", "echo: Authorization: Bearer eyJ0eXAiOiJKV1QiLCJh.payload.sig")

    assert "eyJ0eXAiOiJKV1QiLCJh" not in str(error)
