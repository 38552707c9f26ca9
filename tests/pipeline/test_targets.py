"""Targets: registry, the plan (dry-run) target, the recording target and its fault hooks."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import orjson
import pytest

from packetworker.packets.model import Record, Status, Table
from packetworker.settings import Settings
from packetworker.targets import ApplyContext, Outcome, RecordOutcome, TargetError, get_target
from packetworker.targets.base import record_key
from packetworker.targets.plan import PlanTarget
from packetworker.targets.recording import (
    JsonlStore,
    MemoryStore,
    RecordingTarget,
    SimulatedCrash,
)

CTX = ApplyContext(app_area="DEMO", packet_id="p1", user="u1")


def rec(table: str, status: Status = Status.INSERT, **fields: str) -> Record:
    return Record(Table(table), status, dict(fields))


def test_registry_builds_targets_by_name(tmp_path):
    settings = Settings(_env_file=None, plan_output=str(tmp_path / "plan.jsonl"))

    assert isinstance(get_target("plan", settings), PlanTarget)
    assert isinstance(get_target("recording", settings), RecordingTarget)
    with pytest.raises(ValueError, match=r"unknown target 'nope' \(known: .*plan.*recording"):
        get_target("nope", settings)


def test_record_key_prefers_dms_rowid_then_a_document_number():
    assert record_key(rec("SalesHeader", DMS_ROWID="r1", no="SO1")) == "r1"
    assert record_key(rec("SalesHeader", no="SO1")) == "no=SO1"
    assert record_key(rec("Note", text="hello")) is None


def test_plan_writes_one_json_line_per_operation(tmp_path):
    out = tmp_path / "plan" / "plan.jsonl"
    target = PlanTarget(output=out)
    records = [
        rec("Customer", Status.INSERT, DMS_ROWID="c1", Name="A"),
        rec("Customer", Status.UPDATE, DMS_ROWID="c2"),
        rec("Customer", Status.DELETE, DMS_ROWID="c3"),
        rec("Customer", Status.UPSERT, No="C4"),
        rec("Customer", Status.READ, DMS_ROWID="c5"),
    ]

    outcomes = target.apply(records, ctx=CTX)
    target.close()

    lines = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert [(line["op"], line["key"]) for line in lines] == [
        ("create", "c1"),
        ("update", "c2"),
        ("delete", "c3"),
        ("upsert", "No=C4"),
    ]
    assert lines[0] == {
        "op": "create",
        "table": "Customer",
        "key": "c1",
        "fields": {"DMS_ROWID": "c1", "Name": "A"},
        "packet_id": "p1",
    }
    assert [o.outcome for o in outcomes] == [Outcome.APPLIED] * 4 + [Outcome.SKIPPED]


def test_plan_to_stdout(capsysbinary):
    PlanTarget(output="-").apply([rec("T", DMS_ROWID="r1")], ctx=CTX)

    assert orjson.loads(capsysbinary.readouterr().out)["key"] == "r1"


def test_recording_answers_unchanged_for_a_key_it_already_has():
    target = RecordingTarget()

    first = target.apply([rec("T", DMS_ROWID="r1"), rec("T", DMS_ROWID="r2")], ctx=CTX)
    second = target.apply([rec("T", DMS_ROWID="r1")], ctx=CTX)

    assert [o.outcome for o in first] == [Outcome.APPLIED, Outcome.APPLIED]
    assert second == [RecordOutcome("T", "r1", Outcome.UNCHANGED, "T/r1")]
    assert [e["key"] for e in target.entries()] == ["T/r1", "T/r2"]


def test_recording_keys_rows_without_an_id_by_document_number_or_content():
    target = RecordingTarget()

    outcomes = target.apply(
        [rec("H", no="SO1"), rec("H", no="SO1"), rec("N", t="x"), rec("N", t="x")], ctx=CTX
    )

    assert [o.outcome for o in outcomes] == [
        Outcome.APPLIED,
        Outcome.UNCHANGED,
        Outcome.APPLIED,
        Outcome.UNCHANGED,
    ]


def test_recording_fault_hooks_fail_transiently_then_recover():
    target = RecordingTarget(fail_transient=1)

    with pytest.raises(TargetError) as raised:
        target.apply([rec("T", DMS_ROWID="r1")], ctx=CTX)

    assert raised.value.transient is True
    assert target.apply([rec("T", DMS_ROWID="r1")], ctx=CTX)[0].outcome is Outcome.APPLIED


def test_recording_fault_hooks_fail_a_table_and_crash_once():
    target = RecordingTarget(fail_tables={"Bad"}, crash_after=2)

    outcomes = target.apply([rec("Bad", DMS_ROWID="b1"), rec("T", DMS_ROWID="r1")], ctx=CTX)
    with pytest.raises(SimulatedCrash):
        target.apply([rec("T", DMS_ROWID="r2"), rec("T", DMS_ROWID="r3")], ctx=CTX)

    assert [o.outcome for o in outcomes] == [Outcome.FAILED, Outcome.APPLIED]
    assert [e["key"] for e in target.entries()] == ["T/r1", "T/r2"]


def test_memory_and_file_stores_agree(tmp_path):
    items = [{"key": "a"}, {"key": "b"}, {"key": "a"}]

    assert MemoryStore().put_many(items) == [True, True, False]
    assert JsonlStore(tmp_path / "r.jsonl").put_many(items) == [True, True, False]


def test_file_store_sees_what_another_instance_wrote(tmp_path):
    first, second = JsonlStore(tmp_path / "r.jsonl"), JsonlStore(tmp_path / "r.jsonl")

    first.put_many([{"key": "a"}])

    assert second.put_many([{"key": "a"}, {"key": "b"}]) == [False, True]
    assert [e["key"] for e in first.entries()] == ["a", "b"]


def _apply_all(path: str, start, keys: list[str], results) -> None:
    store = JsonlStore(path)
    start.wait(timeout=30)
    results.put(sum(store.put_many([{"key": k}])[0] for k in keys))


def test_file_store_stores_each_key_once_across_processes(tmp_path):
    path = str(tmp_path / "shared.jsonl")
    keys = [f"k{i}" for i in range(200)]
    mp = multiprocessing.get_context("fork")
    start, results = mp.Barrier(4), mp.Queue()
    workers = [mp.Process(target=_apply_all, args=(path, start, keys, results)) for _ in range(4)]
    for worker in workers:
        worker.start()
    stored = [results.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)

    lines = Path(path).read_bytes().splitlines()
    assert sum(stored) == 200
    assert sorted(orjson.loads(line)["key"] for line in lines) == sorted(keys)
