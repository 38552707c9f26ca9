"""Sync packets built in code for the pipeline tests (no vendor data copied)."""

from __future__ import annotations

from xml.sax.saxutils import escape, quoteattr


def xml_packet(user: str = "u1", *rows: tuple[str, str | None, dict[str, str]]) -> bytes:
    """A sync packet: rows of (table, DMS_ROWID or None, fields), tables kept contiguous."""
    parts = [f"<NavMobileSync salesmancode={quoteattr(user)}>"]
    current = None
    for table, rowid, fields in rows:
        if table != current:
            if current is not None:
                parts.append("</table>")
            parts.append(f"<table tablename={quoteattr(table)} name={quoteattr(table)}>")
            current = table
        cells = {"DMS_ROWID": rowid, **fields} if rowid else fields
        inner = "".join(f"<{k}>{escape(v)}</{k}>" for k, v in cells.items())
        parts.append(f'<r status="insert">{inner}</r>')
    if current is not None:
        parts.append("</table>")
    parts.append("</NavMobileSync>")
    return "".join(parts).encode()


def order(no: str, *, lines: int = 1, user: str = "u1") -> bytes:
    """A sales order packet: one header and `lines` lines, ids derived from `no`."""
    rows = [("SalesHeader", f"{no}-h", {"no": no, "customerNo": "C1"})]
    rows += [
        ("SalesLine", f"{no}-l{i}", {"documentNo": no, "lineNo": str(i)}) for i in range(lines)
    ]
    return xml_packet(user, *rows)
