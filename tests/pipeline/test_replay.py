"""Replay: files, folders, globs and archived ids through the real processing path, with
no services at all (memory ledger, file archive, plan target)."""

from __future__ import annotations

import hashlib

import orjson
import pytest
from pipeline_samples import order, xml_packet

from packetworker.pipeline.archive import open_archive
from packetworker.pipeline.context import PipelineContext
from packetworker.pipeline.ledger import MemoryLedger, RedisLedger
from packetworker.pipeline.replay import expand, packet_id_for, replay
from packetworker.settings import Settings
from packetworker.targets.recording import RecordingTarget

ID1 = "438a12ad-0000-4000-8000-000000000001"
ID2 = "438a12ad-0000-4000-8000-000000000002"


@pytest.fixture
def no_services(tmp_path, monkeypatch):
    """A working directory with no configuration and REDIS_URL unset."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("REDIS_URL", raising=False)
    return tmp_path


@pytest.fixture
def samples(tmp_path):
    folder = tmp_path / "samples"
    (folder / "nested").mkdir(parents=True)
    (folder / f"{ID1}.xml").write_bytes(order("SO1", lines=2))
    (folder / f"{ID1}.xml.meta").write_text('{"userName": "meta-user", "receiptHandle": "AQEB"}')
    (folder / f"{ID1}.xml.expected").write_text("not a packet")
    (folder / "nested" / f"{ID2}.xml").write_bytes(order("SO2"))
    return folder


def replay_ctx(tmp_path, **overrides):
    settings = Settings(
        _env_file=None,
        archive_url=f"file://{tmp_path}/archive",
        spool_dir=tmp_path / "spool",
        **overrides,
    )
    return PipelineContext(
        settings=settings,
        ledger=MemoryLedger(),
        archive=open_archive(settings.archive_url),
        target=RecordingTarget(),
        portal_factory=lambda area: pytest.fail(f"replay asked for a portal ({area})"),
        spool_dir=settings.spool_dir,
    )


def test_a_folder_replays_with_no_services_configured(no_services, samples):
    ctx = PipelineContext.for_replay(Settings(_env_file=None, target="plan"))

    summary = replay([str(samples)], ctx=ctx)
    ctx.close()

    plan = [orjson.loads(line) for line in (no_services / "var/plan.jsonl").read_bytes().split()]
    assert isinstance(ctx.ledger, MemoryLedger)
    assert summary.packets == 2
    assert summary.states == {"applied": 2}
    assert summary.records == {"applied": 5}
    assert [(p["op"], p["table"], p["key"], p["packet_id"]) for p in plan][:2] == [
        ("create", "SalesHeader", "SO1-h", ID1),
        ("create", "SalesLine", "SO1-l0", ID1),
    ]
    assert len(list((no_services / "var/archive/REPLAY").rglob(f"{ID1}.xml"))) == 1


def test_for_replay_uses_redis_when_redis_url_is_set_and_answers(
    no_services, monkeypatch, pipeline_redis_url
):
    monkeypatch.setenv("REDIS_URL", pipeline_redis_url)

    ctx = PipelineContext.for_replay(Settings(_env_file=None, target="plan"))

    assert isinstance(ctx.ledger, RedisLedger)
    ctx.close()


def test_for_replay_falls_back_to_memory_when_redis_does_not_answer(no_services, monkeypatch):
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")

    ctx = PipelineContext.for_replay(Settings(_env_file=None, target="plan"))

    assert isinstance(ctx.ledger, MemoryLedger)


def test_folders_yield_packet_files_only_recursively(samples):
    assert [p.name for p in expand(str(samples))] == [f"{ID1}.xml", f"{ID2}.xml"]


def test_globs_expand_to_matching_packets(samples):
    assert [p.name for p in expand(str(samples / "**" / "*.xml"))] == [
        f"{ID1}.xml",
        f"{ID2}.xml",
    ]


def test_a_uuid_file_name_is_the_packet_id_else_a_content_hash(tmp_path):
    named = tmp_path / f"{ID1}.xml"
    other = tmp_path / "order.xml"
    named.write_bytes(b"<a/>")
    other.write_bytes(b"<a/>")

    assert packet_id_for(named) == ID1
    assert packet_id_for(other) == hashlib.sha256(b"<a/>").hexdigest()[:32]


def test_vendor_meta_supplies_the_user_but_never_the_receipt_handle(tmp_path, samples):
    ctx = replay_ctx(tmp_path)

    replay([str(samples / f"{ID1}.xml")], ctx=ctx)

    entry = ctx.ledger.get(ID1)
    assert entry.user == "meta-user"
    assert entry.receipt_handle is None
    assert ctx.ledger.pending_acks("REPLAY", "packet") == []


def test_replaying_twice_applies_once(tmp_path, samples):
    ctx = replay_ctx(tmp_path)

    replay([str(samples)], ctx=ctx)
    again = replay([str(samples)], ctx=ctx)

    assert again.states == {"applied": 2}
    assert again.records == {}
    assert len(ctx.target.entries()) == 5


def test_same_content_under_two_names_is_one_apply_and_one_duplicate(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.xml").write_bytes(order("SO1"))
    (tmp_path / "in" / f"{ID1}.xml").write_bytes(order("SO1"))
    ctx = replay_ctx(tmp_path)

    summary = replay([str(tmp_path / "in")], ctx=ctx)

    assert summary.packets == 2
    assert summary.records == {"applied": 2}
    # Files replay in name order: the UUID-named one comes first and owns the content.
    assert summary.duplicates == {packet_id_for(tmp_path / "in" / "a.xml"): ID1}


def test_bad_packets_are_quarantined_with_their_reason(tmp_path):
    bad = tmp_path / "bad.xml"
    bad.write_bytes(b"<NavMobileSync salesmancode='u'><table>")
    ctx = replay_ctx(tmp_path)

    summary = replay([str(bad)], ctx=ctx)

    [(packet_id, reason)] = summary.quarantined.items()
    assert packet_id == packet_id_for(bad)
    assert reason.startswith("invalid packet:")
    assert summary.states == {"quarantined": 1}


def test_an_archived_packet_id_replays_from_the_archive(tmp_path, samples):
    replay([str(samples / f"{ID1}.xml")], ctx=replay_ctx(tmp_path))
    fresh = replay_ctx(tmp_path)  # new memory ledger, same archive

    summary = replay([ID1], ctx=fresh)

    assert summary.states == {"applied": 1}
    assert summary.records == {"applied": 3}
    assert fresh.ledger.get(ID1).user == "meta-user"


def test_an_unknown_argument_is_reported(tmp_path):
    ctx = replay_ctx(tmp_path)

    summary = replay([str(tmp_path / "missing.xml")], ctx=ctx)

    assert summary.packets == 0
    assert summary.errors == {
        str(tmp_path / "missing.xml"): "no such file, folder, glob match or archived packet"
    }


def test_progress_is_called_after_each_packet(tmp_path, samples):
    seen = []

    replay([str(samples)], ctx=replay_ctx(tmp_path), progress=lambda i, r: seen.append(r.state))

    assert seen == ["applied", "applied"]


def test_a_transient_target_failure_is_reported_not_raised(tmp_path):
    path = tmp_path / "p.xml"
    path.write_bytes(xml_packet("u1", ("Customer", "c1", {"Name": "A"})))
    ctx = replay_ctx(tmp_path)
    ctx.target = RecordingTarget(fail_transient=1)

    summary = replay([str(path)], ctx=ctx)

    assert summary.states == {"failed": 1}
    assert summary.errors[packet_id_for(path)].startswith("transient:")
