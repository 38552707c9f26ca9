"""JSON $batch: splitting at 100 operations and all-or-nothing batches."""

from __future__ import annotations

import pytest

from packetworker.targets.bc import BatchRequest


def test_150_operations_are_sent_as_two_batch_calls(sandbox, client):
    ops = [BatchRequest("POST", "items", {"number": f"B{n:03d}"}) for n in range(150)]

    results = client.batch(ops)

    batch_calls = [r for r in sandbox.requests if r.path.endswith("/$batch")]
    assert len(batch_calls) == 2
    assert [r.status for r in results] == [201] * 150
    assert all(r.committed for r in results)
    assert len({r.id for r in results}) == 150
    assert len(sandbox.store("CRONUS", "items")) == 150


def test_atomic_batch_rolls_back_everything_when_one_op_fails(sandbox, client):
    sandbox.add_item(number="DUP")
    ops = [
        BatchRequest("POST", "items", {"number": "NEW1"}),
        BatchRequest("POST", "items", {"number": "DUP"}),
        BatchRequest("POST", "items", {"number": "NEW2"}),
    ]

    results = client.batch(ops, atomic=True)

    assert [r.status for r in results] == [201, 400, None]
    assert [r.committed for r in results] == [False, False, False]
    assert results[1].error().code == "Internal_EntityWithSameKeyExists"
    assert [i["number"] for i in sandbox.store("CRONUS", "items")] == ["DUP"]


def test_non_atomic_batch_keeps_what_ran_before_the_failure(sandbox, client):
    sandbox.add_item(number="DUP")
    ops = [
        BatchRequest("POST", "items", {"number": "NEW1"}),
        BatchRequest("POST", "items", {"number": "DUP"}),
        BatchRequest("POST", "items", {"number": "NEW2"}),
    ]

    results = client.batch(ops)

    assert [r.committed for r in results] == [True, False, False]
    assert sorted(i["number"] for i in sandbox.store("CRONUS", "items")) == ["DUP", "NEW1"]


def test_atomic_batch_over_100_operations_is_refused_before_sending(sandbox, client):
    ops = [BatchRequest("POST", "items", {"number": f"B{n}"}) for n in range(101)]

    with pytest.raises(ValueError, match="at most 100"):
        client.batch(ops, atomic=True)

    assert not [r for r in sandbox.requests if r.path.endswith("/$batch")]


def test_batch_patch_uses_the_etag(sandbox, client):
    item = client.create("items", {"number": "P1"})

    results = client.batch(
        [BatchRequest("PATCH", f"items({item['id']})", {"displayName": "x"}, etag='W/"stale"')]
    )

    assert results[0].status == 409  # business-central.md §4.3
    assert results[0].error().code == "Request_EntityChanged"
