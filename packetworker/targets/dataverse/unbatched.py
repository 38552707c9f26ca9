"""Dataverse writes without `$batch`: each operation of a change set as its own request,
the baseline `bench/bench_dataverse_requests.py` measures `$batch` against (`use_batch=False`).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote

from packetworker.targets.dataverse.batch import BatchOperation, BatchResponse
from packetworker.targets.dataverse.client import DataverseClient
from packetworker.targets.dataverse.errors import DataverseError
from packetworker.targets.dataverse.odata import is_guid


def send_one_by_one(
    client: DataverseClient, groups: list[list[BatchOperation]]
) -> dict[str, BatchResponse]:
    """Each operation as its own request: the baseline the batch is measured against
    (no atomicity: a group stops at its first failure)."""
    answers: dict[str, BatchResponse] = {}
    for group in groups:
        made: dict[str, tuple[str, str]] = {}  # content id -> (entity set, GUID)
        for op in group:
            body = {
                k: (_ref(v, made) if k.endswith("@odata.bind") else v)
                for k, v in (op.body or {}).items()
            }
            entity_set = op.path.split("(", 1)[0]
            try:
                if op.method == "POST":
                    new_id = client.create(entity_set, body)
                else:
                    key = _parse_path_key(op.path)
                    new_id = client.upsert(entity_set, key, body, mode="create") or ""
            except DataverseError as error:
                if error.transient:
                    raise
                answers[op.content_id or ""] = _failed(error)
                break
            made[op.content_id or ""] = (entity_set, new_id)
            uri = f"{client.url}{client.api_path}{entity_set}({new_id})"
            answers[op.content_id or ""] = BatchResponse(
                204, {"odata-entityid": uri}, b"", op.content_id
            )
    return answers


def _ref(value: Any, made: dict[str, tuple[str, str]]) -> Any:
    text = str(value)
    if text.startswith("$") and text[1:] in made:
        entity_set, guid = made[text[1:]]
        return f"/{entity_set}({guid})"
    return value


def _parse_path_key(path: str) -> str | dict[str, Any]:
    inner = unquote(path.split("(", 1)[1].rsplit(")", 1)[0])
    if is_guid(inner):
        return inner
    column, _, raw = inner.partition("=")
    return {column: raw[1:-1].replace("''", "'") if raw.startswith("'") else raw}


def _failed(error: DataverseError) -> BatchResponse:
    payload = {"error": {"code": error.code, "message": error.dataverse_message}}
    return BatchResponse(error.status, {}, json.dumps(payload).encode(), None)
