"""Error classification and redaction (pure)."""

from __future__ import annotations

import pickle

import pytest

from packetworker.targets.bc.errors import EntityChanged, NotFound, error_from_response


def body(code: str, message: str = "m") -> dict:
    return {"error": {"code": code, "message": message}}


@pytest.mark.parametrize(
    ("status", "code", "transient"),
    [
        (400, "Internal_EntityWithSameKeyExists", False),
        (400, "BadRequest_NotFound", False),
        (404, "Internal_RecordNotFound", False),
        (400, "Application_DialogException", False),
        (429, "Application_TooManyRequests", True),
        (503, "Unknown", True),
        (504, "HTTP_504", True),
        (500, "Internal_ServerError", True),
        (500, "Internal_RecordNotFound", False),
    ],
)
def test_classification(status, code, transient):
    assert error_from_response(status, body(code)).transient is transient


def test_stale_etag_is_its_own_class_for_409_and_412():
    assert isinstance(error_from_response(409, body("Request_EntityChanged")), EntityChanged)
    assert isinstance(error_from_response(412, body("Request_EntityChanged")), EntityChanged)


def test_404_is_not_found():
    assert isinstance(error_from_response(404, body("BadRequest_NotFound")), NotFound)


def test_echoed_bearer_token_never_reaches_the_message():
    error = error_from_response(
        400, body("BadRequest", "bad header Authorization: Bearer eyJabc.def")
    )

    assert "eyJabc" not in str(error)


def test_errors_survive_pickling():
    error = error_from_response(429, body("Application_TooManyRequests"), retry_after=3)

    clone = pickle.loads(pickle.dumps(error))

    assert (clone.status, clone.code, clone.transient, clone.retry_after) == (
        429,
        error.code,
        True,
        3,
    )
