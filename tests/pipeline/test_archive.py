"""Archive: write once, metadata without secrets, find, on a directory and on S3 (moto)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from packetworker.pipeline.archive import (
    ArchiveConflict,
    FileArchive,
    S3Archive,
    archive_key,
    clean_meta,
    open_archive,
)

BODY = b'<NavMobileSync salesmancode="u1"><table tablename="T"/></NavMobileSync>'
SHA = hashlib.sha256(BODY).hexdigest()
KEY = "DEMO/2026/11/23/p1.xml"


@pytest.fixture(params=["file", "s3"])
def archive(request, tmp_path):
    if request.param == "file":
        return FileArchive(tmp_path / "archive")
    client, bucket = request.getfixturevalue("s3_bucket")
    return S3Archive(bucket, "raw", client=client)


@pytest.fixture
def body_file(tmp_path: Path) -> Path:
    path = tmp_path / "spool.xml"
    path.write_bytes(BODY)
    return path


def test_key_layout_uses_app_area_and_utc_date():
    when = datetime(2026, 1, 2, 23, 30, tzinfo=UTC)

    assert archive_key("DEMO", "p1", ext="json", received_at=when) == "DEMO/2026/01/02/p1.json"


def test_put_stores_body_and_metadata(archive, body_file):
    written = archive.put(KEY, body_file, sha256=SHA, size=len(BODY), meta={"packet_id": "p1"})

    assert written is True
    with archive.get(KEY) as stream:
        assert stream.read() == BODY
    assert archive.meta(KEY) == {"packet_id": "p1", "sha256": SHA, "size": len(BODY)}


def test_putting_the_same_bytes_again_is_a_no_op(archive, body_file):
    archive.put(KEY, body_file, sha256=SHA, size=len(BODY), meta={"packet_id": "p1"})

    again = archive.put(KEY, body_file, sha256=SHA, size=len(BODY), meta={"packet_id": "other"})

    assert again is False
    assert archive.meta(KEY)["packet_id"] == "p1"


def test_putting_different_bytes_under_an_existing_key_is_refused(archive, body_file, tmp_path):
    archive.put(KEY, body_file, sha256=SHA, size=len(BODY), meta={})
    other = tmp_path / "other.xml"
    other.write_bytes(b"<other/>")

    with pytest.raises(ArchiveConflict, match="already archived with different content"):
        archive.put(KEY, other, sha256=hashlib.sha256(b"<other/>").hexdigest(), size=8, meta={})
    with archive.get(KEY) as stream:
        assert stream.read() == BODY


def test_metadata_never_holds_receipt_handles_or_signatures(archive, body_file):
    meta = {
        "packet_id": "p1",
        "list": {
            "receiptHandle": "AQEBsecret",
            "url": "push-done/xml/prod/DEMO/20261123/u1/p1.xml",
            "operation": "Sales Order",
        },
        "source": "https://bucket.s3.amazonaws.com/p1.xml?X-Amz-Signature=abc123&X-Amz-Date=1",
    }

    archive.put(KEY, body_file, sha256=SHA, size=len(BODY), meta=meta)

    stored = archive.meta(KEY)
    assert "receiptHandle" not in stored["list"]
    assert stored["list"]["url"] == "push-done/xml/prod/DEMO/20261123/u1/p1.xml"
    assert "abc123" not in stored["source"]
    assert "X-Amz-Date=1" in stored["source"]


def test_find_locates_a_packet_by_id_without_its_date(archive, body_file):
    archive.put(KEY, body_file, sha256=SHA, size=len(BODY), meta={})

    assert archive.find("DEMO", "p1") == KEY
    assert archive.find("DEMO", "p2") is None
    assert archive.find("OTHER", "p1") is None


def test_exists_is_false_until_put(archive, body_file):
    assert archive.exists(KEY) is False
    archive.put(KEY, body_file, sha256=SHA, size=len(BODY), meta={})
    assert archive.exists(KEY) is True


def test_body_without_metadata_is_compared_by_hashing_it(tmp_path, body_file):
    archive = FileArchive(tmp_path / "a")
    target = tmp_path / "a" / KEY
    target.parent.mkdir(parents=True)
    target.write_bytes(BODY)  # a crash after the body, before its metadata

    assert archive.put(KEY, body_file, sha256=SHA, size=len(BODY), meta={"k": 1}) is False
    assert archive.meta(KEY) == {"k": 1, "sha256": SHA, "size": len(BODY)}


def test_file_keys_cannot_escape_the_root(tmp_path, body_file):
    archive = FileArchive(tmp_path / "a")

    with pytest.raises(Exception, match="escapes the archive"):
        archive.put("../x.xml", body_file, sha256=SHA, size=len(BODY), meta={})


def test_clean_meta_drops_nested_secrets():
    assert clean_meta({"a": {"receipt_handle": "x", "b": 1}}) == {"a": {"b": 1}}


def test_open_archive_reads_file_urls(tmp_path):
    absolute = open_archive(f"file://{tmp_path}/arc")
    relative = open_archive("file://./var/archive")

    assert isinstance(absolute, FileArchive)
    assert absolute.root == tmp_path / "arc"
    assert relative.root == Path("./var/archive")


def test_open_archive_reads_s3_urls_with_an_endpoint(s3_bucket, moto_endpoint, body_file):
    _, bucket = s3_bucket

    archive = open_archive(f"s3://{bucket}/raw/packets", s3_endpoint_url=moto_endpoint)
    archive.put(KEY, body_file, sha256=SHA, size=len(BODY), meta={})

    assert isinstance(archive, S3Archive)
    assert archive.prefix == "raw/packets/"
    assert archive.find("DEMO", "p1") == KEY


def test_open_archive_refuses_other_schemes():
    with pytest.raises(ValueError, match="unsupported archive URL"):
        open_archive("ftp://host/x")
