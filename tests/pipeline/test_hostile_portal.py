"""The portal as it really is, and as a hostile or buggy one could be: renditions, packet ids
that are not file names, links to internal hosts, trickling downloads, huge pull lists.

Each test runs processing over real HTTP against the portal sandbox and a real Redis ledger.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
from pipeline_samples import order

from packetworker.pipeline.archive import safe_name
from packetworker.pipeline.ledger import PacketState
from packetworker.pipeline.polling import poll_once, refused_id
from packetworker.pipeline.processing import process_packet
from packetworker.pipeline.results import TransientError
from packetworker.targets.recording import RecordingTarget


@pytest.fixture
def ledger(redis_ledger):
    return redis_ledger


def drain(ctx, app_area="DEMO"):
    polled = poll_once(ctx, app_area)
    return polled, [process_packet(ctx, app_area, i) for i in polled.new_ids]


def storage_gets(sandbox) -> list[str]:
    return [r.path for r in sandbox.requests() if r.server == "storage" and r.method == "GET"]


# --- renditions ---------------------------------------------------------------------------


def test_a_packet_listed_by_its_json_rendition_is_applied_from_the_xml_one(sandbox, make_ctx):
    ctx = make_ctx(sandbox)
    packet_id = sandbox.enqueue("DEMO", order("SO1", lines=2), user="u1")

    _, [result] = drain(ctx)
    acked = poll_once(ctx, "DEMO").acked

    assert result.state == "applied"
    assert result.outcomes == {"applied": 3}
    assert acked == {"packet": 1}
    [path] = storage_gets(sandbox)
    assert "/push-done/xml/" in path
    assert path.endswith(f"/{packet_id}.xml")


def test_as_listed_tries_the_xml_rendition_before_giving_up_on_an_unreadable_one(
    sandbox, make_ctx, caplog
):
    ctx = make_ctx(sandbox, dm_packet_rendition="as-listed")
    packet_id = sandbox.enqueue("DEMO", order("SO2", lines=1), user="u1")

    with caplog.at_level(logging.WARNING, logger="packetworker"):
        _, [result] = drain(ctx)

    entry = ctx.ledger.get(packet_id)
    assert result.state == "applied"
    assert entry.result == "applied"
    assert entry.archive_key.endswith(".xml")
    gets = storage_gets(sandbox)
    assert ["/push-done/json/" in gets[0], "/push-done/xml/" in gets[1]] == [True, True]
    assert "listed rendition unreadable" in caplog.text


def test_as_listed_reads_a_listed_rendition_it_can_read_without_the_xml_one(sandbox, make_ctx):
    """A packet whose listed path is the XML one (an older portal) is read as listed."""
    ctx = make_ctx(sandbox, dm_packet_rendition="as-listed")
    sandbox.enqueue("DEMO", order("SO3"), user="u1")
    message = next(iter(sandbox.queue("DEMO")._messages.values()))
    message.url = message.url.replace("/json/", "/xml/").replace(".json", ".xml")

    _, [result] = drain(ctx)

    assert result.state == "applied"
    assert len(storage_gets(sandbox)) == 1


# --- packet ids are never file names ---------------------------------------------------------


class _WatchingTarget(RecordingTarget):
    """Records, while each batch is applied (the spool file exists), every file under `root`
    outside the archive."""

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root
        self.files_seen: set[Path] = set()

    def apply(self, records, *, ctx):
        archive = self.root / "archive"
        self.files_seen |= {
            p for p in self.root.rglob("*") if p.is_file() and archive not in p.parents
        }
        return super().apply(records, ctx=ctx)


@pytest.mark.parametrize(
    "packet_id",
    ["../../../../../../../../../escape", "../x", "a/b/../c.xml", "x" * 1000, "semi;colon ü"],
)
def test_any_id_the_portal_gives_is_processed_under_a_safe_name(
    sandbox, make_ctx, tmp_path, packet_id
):
    target = _WatchingTarget(tmp_path)
    ctx = make_ctx(sandbox, target=target)
    sandbox.enqueue("DEMO", order("SO4"), user="u1", packet_id=packet_id)

    polled, [result] = drain(ctx)
    acked = poll_once(ctx, "DEMO").acked

    assert polled.new_ids == [packet_id]
    assert (result.state, acked) == ("applied", {"packet": 1})
    assert sandbox.pending("DEMO") == []
    spool = (tmp_path / "spool").resolve()
    assert target.files_seen  # the spool file was there while the packet was applied
    assert all(p.resolve().parent == spool for p in target.files_seen)
    key = ctx.ledger.get(packet_id).archive_key
    area, _, _, _, name = key.split("/")
    assert (area, name) == ("DEMO", f"{safe_name(packet_id)}.xml")
    assert len(name) < 120
    assert ctx.archive.find("DEMO", packet_id) == key


def test_safe_names_keep_plain_ids_and_never_collide():
    guid = "438a12ad-d3cf-43e3-aa5e-f6dbea35224a"

    assert safe_name(guid) == guid
    assert safe_name("a/b") != safe_name("a_b")
    assert safe_name("a_b") == "a_b"
    assert "~" in safe_name("a/b")
    assert safe_name("..") != safe_name("...")
    assert "/" not in safe_name("../../x")
    assert not safe_name("../../x").startswith(".")


@pytest.mark.parametrize(
    ("packet_id", "reason"),
    [
        ("", "the packet id is empty"),
        ("p" * 5000, "the packet id is 5000 characters long (limit 1024)"),
        ("bad\nid", "the packet id holds control characters"),
    ],
)
def test_an_id_no_packet_can_have_is_refused_once_and_never_acknowledged(
    sandbox, make_ctx, caplog, packet_id, reason
):
    ctx = make_ctx(sandbox)
    sandbox.enqueue("DEMO", order("SO5"), user="u1", packet_id=packet_id)

    with caplog.at_level(logging.ERROR, logger="packetworker"):
        first = poll_once(ctx, "DEMO")
        sandbox.clock.advance(sandbox.visibility_timeout + 1)  # listed again
        second = poll_once(ctx, "DEMO")

    assert (first.new_ids, first.requeue_ids, second.new_ids, second.requeue_ids) == (
        [],
        [],
        [],
        [],
    )
    entry = ctx.ledger.get(refused_id(packet_id))
    assert entry.state is PacketState.LISTED
    assert entry.receipt_handle is None
    assert entry.url is None
    assert reason in entry.last_error
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == [
        entry.last_error
    ]
    assert sandbox.pending("DEMO") == [packet_id]
    assert sandbox.done_calls("DEMO") == []
    assert storage_gets(sandbox) == []


# --- links -------------------------------------------------------------------------------------


def test_a_link_to_an_internal_host_is_never_fetched_nor_acknowledged(sandbox, make_ctx):
    # The sandbox's links are http://127.0.0.1: refused unless DM_STORAGE_HTTP_HOSTS lists it.
    ctx = make_ctx(sandbox, dm_storage_http_hosts="")
    packet_id = sandbox.enqueue("DEMO", order("SO6"), user="u1")

    _, [result] = drain(ctx)
    poll_once(ctx, "DEMO")

    entry = ctx.ledger.get(packet_id)
    assert result.state != "applied"
    assert not entry.terminal
    assert "refused link" in entry.last_error
    assert re.search(r"X-Amz-Signature=(?!\*\*\*)", entry.last_error) is None
    assert storage_gets(sandbox) == []
    assert ctx.target.entries() == []
    assert sandbox.done_calls("DEMO") == []


# --- download deadline -------------------------------------------------------------------------


def test_a_trickling_download_is_stopped_at_its_deadline_and_not_acknowledged(sandbox, make_ctx):
    ctx = make_ctx(sandbox, dm_download_deadline=0.5, link_attempts=1)
    packet_id = sandbox.enqueue("DEMO", order("SO7", lines=40), user="u1")
    # One byte every 50 ms: never quiet long enough for a read timeout, done after minutes.
    sandbox.faults.trickle(0.05, piece_bytes=1, path_prefix=f"/{sandbox.storage.bucket}/")
    poll_once(ctx, "DEMO")

    with pytest.raises(TransientError, match=r"deadline of 0\.5s"):
        process_packet(ctx, "DEMO", packet_id)

    entry = ctx.ledger.get(packet_id)
    assert not entry.terminal
    assert entry.archive_key is None
    assert ctx.ledger.pending_acks("DEMO", "packet") == []
    assert list((ctx.spool_dir).iterdir()) == []


# --- pull lists are capped ---------------------------------------------------------------------


def test_a_poll_records_at_most_the_cap_and_the_rest_come_later(sandbox, make_ctx):
    ctx = make_ctx(sandbox, dm_poll_max_entries=4)
    ids = [sandbox.enqueue("DEMO", order(f"SO{n}"), user="u1") for n in range(10)]

    first, results = drain(ctx)
    acked = poll_once(ctx, "DEMO").acked
    sandbox.clock.advance(sandbox.visibility_timeout + 1)  # what was listed but not taken
    later = poll_once(ctx, "DEMO")

    assert (first.listed, len(first.new_ids)) == (4, 4)
    assert {r.state for r in results} == {"applied"}
    assert acked == {"packet": 4}
    assert (later.listed, len(later.new_ids)) == (4, 4)
    assert set(later.new_ids).isdisjoint(first.new_ids)
    assert sum(1 for i in ids if ctx.ledger.get(i)) == 8
