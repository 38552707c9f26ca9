"""Small sync packets written on the model of the vendor's (never copies of them)."""

from __future__ import annotations

import uuid


def xml_packet(user: str = "user1", *, records: int = 1, pad: int = 0) -> bytes:
    """A well-formed Field Sales style packet; `pad` adds that many bytes of note text."""
    rows = "".join(
        f'<r status="insert"><DMS_ROWID>{uuid.uuid4()}</DMS_ROWID><appName>SLA</appName>'
        f"<documentType>0</documentType><current>{i}</current><sync>false</sync>"
        f"<onDate>2021-07-14T10:02:40.047Z</onDate><state>1</state></r>"
        for i in range(records)
    )
    note = f"<table tablename='Note' name='Note'><r><text>{'x' * pad}</text></r></table>"
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><NavMobileSync salesmancode="{user}">'
        f'<table tablename="DocumentSerieUpdate" name="DocumentSerieUpdate">{rows}</table>'
        f"{note if pad else ''}</NavMobileSync>"
    ).encode()
