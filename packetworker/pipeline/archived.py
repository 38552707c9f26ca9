"""Packets in the archive: the listing kept next to a packet's bytes, the entry rebuilt from it
when the ledger has forgotten the packet, and the lookup of an attachment (`dms://<id>`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from packetworker.packets import PacketError, detect_format
from packetworker.pipeline.context import PipelineContext
from packetworker.pipeline.ledger import PacketEntry


def extension(spool: Path, list_type: str) -> str:
    """The archive key's extension: the packet format sniffed from the bytes, else `bin`."""
    if list_type == "file":
        return "bin"
    with spool.open("rb") as f:
        head = f.read(4096)
    try:
        return detect_format(head)
    except PacketError:
        return "bin"  # archived anyway; reading it will quarantine it with the reason


def archive_meta(entry: PacketEntry) -> dict[str, object]:
    """What is stored next to the bytes: enough to rebuild the entry (`recover_from_archive`)."""
    return {
        "packet_id": entry.packet_id,
        "app_area": entry.app_area,
        "user": entry.user,
        "list_type": entry.list_type,
        "source": entry.source,
        "list": {
            "url": entry.url,
            "userName": entry.user,
            "companyId": entry.company,
            "operation": entry.operation,
            "appCode": entry.app_code,
            "onDate": entry.on_date,
        },
        "received_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
    }


def recover_from_archive(ctx: PipelineContext, app_area: str, packet_id: str) -> PacketEntry | None:
    """A packet the ledger forgot (expired, or a fresh memory ledger) but the archive has."""
    key = ctx.archive.find(app_area, packet_id)
    if key is None:
        return None
    meta = ctx.archive.meta(key) or {}
    listing = meta.get("list") or {}
    entry = PacketEntry(
        packet_id=packet_id,
        app_area=app_area,
        list_type=meta.get("list_type") or "packet",
        url=listing.get("url"),
        user=meta.get("user"),
        company=listing.get("companyId"),
        operation=listing.get("operation"),
        sha256=meta.get("sha256"),
        size=meta.get("size"),
        archive_key=key,
        source="archive",
    )
    stored, _ = ctx.ledger.record_listed(entry)
    return stored


def resolve_file(ctx: PipelineContext, app_area: str, user: str | None, ref: str) -> str | None:
    """Archive key of the attachment `dms://<id>` sent by `user`, or None if we hold none.
    Like the vendor's connector, a file matches on (user, identifier)."""
    file_id = ref.removeprefix("dms://").strip()
    if not file_id:
        return None
    entry = ctx.ledger.get(file_id)
    if entry is not None and entry.app_area == app_area and entry.archive_key:
        return entry.archive_key if user in (None, entry.user) or entry.user is None else None
    key = ctx.archive.find(app_area, file_id)
    if key is None:
        return None
    owner = (ctx.archive.meta(key) or {}).get("user")
    return key if user in (None, owner) or owner is None else None


__all__: Sequence[str] = ["archive_meta", "extension", "recover_from_archive", "resolve_file"]
