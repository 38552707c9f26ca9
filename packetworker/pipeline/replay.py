"""Replay: run packets from files, folders, globs or the archive through the same
processing path, in process, with no portal and no acknowledgements.

A file's packet id is its UUID stem (vendor files are named `<id>.xml`) or else the first
32 hex digits of its sha256. A vendor `<file>.meta` next to it supplies the user and list
metadata. An argument that is neither a path nor a glob match is looked up as an archived
packet id. Replaying what the ledger already applied is a no-op (nothing applied twice).
"""

from __future__ import annotations

import glob
import hashlib
import logging
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import orjson

from packetworker.pipeline.archive import archive_key
from packetworker.pipeline.context import PipelineContext
from packetworker.pipeline.ledger import PacketEntry
from packetworker.pipeline.processing import run_packet
from packetworker.pipeline.results import ProcessResult, TransientError

logger = logging.getLogger(__name__)

PACKET_SUFFIXES = (".xml", ".json")
DEFAULT_APP_AREA = "REPLAY"


@dataclass
class ReplaySummary:
    packets: int = 0
    records: dict[str, int] = field(default_factory=dict)  # outcome -> count
    states: dict[str, int] = field(default_factory=dict)  # final state -> packets
    quarantined: dict[str, str] = field(default_factory=dict)  # packet id -> reason
    held: dict[str, str] = field(default_factory=dict)  # packet id -> why it waits
    duplicates: dict[str, str] = field(default_factory=dict)  # packet id -> original id
    errors: dict[str, str] = field(default_factory=dict)  # packet id or argument -> error

    def add(self, result: ProcessResult) -> None:
        self.packets += 1
        self.states[result.state] = self.states.get(result.state, 0) + 1
        self.records = dict(Counter(self.records) + Counter(result.outcomes))
        if result.state == "quarantined":
            self.quarantined[result.packet_id] = result.error or ""
        elif result.state == "waiting":
            self.held[result.packet_id] = result.error or ""
        elif result.duplicate_of:
            self.duplicates[result.packet_id] = result.duplicate_of
        elif result.error:
            self.errors[result.packet_id] = result.error


Progress = Callable[[str, ProcessResult], None]


def replay(
    paths: Sequence[str],
    *,
    ctx: PipelineContext,
    progress: Progress | None = None,
    app_area: str | None = None,
) -> ReplaySummary:
    """Process every packet `paths` name; `progress(item, result)` after each one."""
    app_area = app_area or ctx.settings.dm_app_area or DEFAULT_APP_AREA
    summary = ReplaySummary()
    for item in paths:
        found = False
        for path in expand(item):
            found = True
            summary.add(_report(progress, str(path), replay_file(ctx, path, app_area=app_area)))
        if found:
            continue
        if ctx.ledger.get(item) or ctx.archive.find(app_area, item):
            summary.add(_report(progress, item, _run(ctx, app_area, item)))
        else:
            summary.errors[item] = "no such file, folder, glob match or archived packet"
    return summary


def expand(item: str) -> Iterator[Path]:
    """The packet files an argument names: a file as given; a folder's `*.xml`/`*.json`,
    recursively; a glob's matches (folders among them walked the same way)."""
    path = Path(item)
    if path.is_file():
        yield path
        return
    if path.is_dir():
        yield from _walk(path)
        return
    if glob.has_magic(item):
        for match in sorted(glob.glob(item, recursive=True)):
            candidate = Path(match)
            if candidate.is_dir():
                yield from _walk(candidate)
            elif candidate.suffix.lower() in PACKET_SUFFIXES:
                yield candidate


def _walk(folder: Path) -> Iterator[Path]:
    # Only packet files: `*.expected`, `*.meta` and the like sit next to samples.
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.suffix.lower() in PACKET_SUFFIXES:
            yield path


def packet_id_for(path: Path) -> str:
    """The file's UUID stem, or a content hash when the name is not a packet id."""
    try:
        return str(uuid.UUID(path.stem))
    except ValueError:
        digest = hashlib.sha256()
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 16), b""):
                digest.update(chunk)
        return digest.hexdigest()[:32]


def stage_file(ctx: PipelineContext, path: Path, *, app_area: str) -> str:
    """Put a local packet into the archive and return its id, so that any worker can process
    it by id (`replay --queue`): a packet the ledger lacks is recovered from the archive."""
    packet_id = packet_id_for(path)
    if ctx.archive.find(app_area, packet_id) is None:
        digest, size = hashlib.sha256(), 0
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 16), b""):
                digest.update(chunk)
                size += len(chunk)
        meta = _vendor_meta(path)
        key = archive_key(
            app_area, packet_id, ext=path.suffix.lstrip(".").lower(), received_at=datetime.now(UTC)
        )
        ctx.archive.put(
            key,
            path,
            sha256=digest.hexdigest(),
            size=size,
            meta={
                "packet_id": packet_id,
                "app_area": app_area,
                "user": meta.get("userName"),
                "list_type": "packet",
                "source": "replay",
                "list": {k: meta.get(k) for k in ("companyId", "operation", "appCode", "onDate")},
            },
        )
    return packet_id


def replay_file(ctx: PipelineContext, path: Path, *, app_area: str) -> ProcessResult:
    """Record `path` in the ledger as a replayed packet and process it from the file."""
    packet_id = packet_id_for(path)
    meta = _vendor_meta(path)
    entry = PacketEntry(
        packet_id=packet_id,
        app_area=app_area,
        list_type="packet",
        url=None,
        user=meta.get("userName"),
        company=meta.get("companyId"),
        operation=meta.get("operation"),
        app_code=meta.get("appCode"),
        on_date=meta.get("onDate"),
        source="replay",
    )
    ctx.ledger.record_listed(entry)
    return _run(ctx, app_area, packet_id, local=path)


def _run(
    ctx: PipelineContext, app_area: str, packet_id: str, *, local: Path | None = None
) -> ProcessResult:
    try:
        return run_packet(ctx, app_area, packet_id, local=local)
    except TransientError as exc:
        return ProcessResult(packet_id, "failed", error=f"transient: {exc}")
    except Exception as exc:  # one bad packet must not stop a replay of many
        logger.exception("replay of %s failed", packet_id)
        return ProcessResult(packet_id, "failed", error=f"{type(exc).__name__}: {exc}")


def _vendor_meta(path: Path) -> dict[str, str]:
    meta = path.with_name(path.name + ".meta")
    try:
        data = orjson.loads(meta.read_bytes())
    except (FileNotFoundError, orjson.JSONDecodeError):
        return {}
    if not isinstance(data, dict):
        return {}
    # Keep list metadata only; a receipt handle in a saved .meta is of no use here.
    return {k: v for k, v in data.items() if isinstance(v, str) and k != "receiptHandle"}


def _report(progress: Progress | None, item: str, result: ProcessResult) -> ProcessResult:
    if progress is not None:
        progress(item, result)
    return result
