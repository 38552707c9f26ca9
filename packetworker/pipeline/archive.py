"""The archive: raw packet bytes, written once, kept as received.

Every packet is archived before it is applied, acknowledged or quarantined, so "done" is
never posted for bytes we do not hold. Key layout:

    {app_area}/{yyyy}/{mm}/{dd}/{name}.{xml|json|bin}   the body, byte for byte
    …/{name}.{ext}.meta.json                           packet id, app area, user, list
                                                       metadata, sha256, size, received at

`name` is `safe_name(packet_id)`: the id itself when it is a plain token (a GUID, as real ids
are), else a sanitised prefix and a hash of it — a packet id from the portal is never a path.

Metadata never holds a receipt handle or a URL's signature (`clean_meta`). **Write once**:
putting an existing key with the same sha256 is a no-op; with another sha256 it is an
`ArchiveConflict`. Backends: a local directory (`file://`) and S3 (`s3://`, via boto3).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from packetworker.errors import PacketworkerError
from packetworker.redact import redact_url

META_SUFFIX = ".meta.json"
_SECRET_META_KEYS = {"receipt_handle", "receipthandle", "link", "download_url", "presigned_url"}


class ArchiveError(PacketworkerError):
    """The archive could not store or read an object."""


class ArchiveConflict(ArchiveError):
    """A key already holds different bytes: the archive is write-once."""


_PLAIN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,99}")
_UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9_-]+")


def safe_name(packet_id: str) -> str:
    """A file and object name for `packet_id`, whatever the id holds (`..`, `/`, 5,000
    characters): a plain id (letters, digits, `-`, `_`; at most 100) is kept as it is, any
    other becomes `<sanitised prefix>~<sha256>`. `~` never occurs in a kept id, so the two
    forms cannot collide, and the name is always short enough for any file system."""
    if _PLAIN_ID.fullmatch(packet_id):
        return packet_id
    prefix = _UNSAFE_CHARS.sub("_", packet_id)[:40].strip("_")
    digest = hashlib.sha256(packet_id.encode("utf-8", "surrogatepass")).hexdigest()[:40]
    return f"{prefix}~{digest}"


def archive_key(app_area: str, packet_id: str, *, ext: str, received_at: datetime) -> str:
    """`{app_area}/{yyyy}/{mm}/{dd}/{safe_name(packet_id)}.{ext}` (UTC date of receipt)."""
    day = received_at.astimezone(UTC)
    return f"{app_area}/{day:%Y/%m/%d}/{safe_name(packet_id)}.{ext}"


def clean_meta(meta: Mapping[str, Any]) -> dict[str, Any]:
    """Metadata fit for the archive: no receipt handles, links or URL signatures."""
    out: dict[str, Any] = {}
    for key, value in meta.items():
        if key.lower().replace("-", "_") in _SECRET_META_KEYS:
            continue
        if isinstance(value, Mapping):
            value = clean_meta(value)
        elif isinstance(value, str) and "://" in value:
            value = redact_url(value)
        out[key] = value
    return out


def _sha256_of(stream: BinaryIO) -> str:
    digest = hashlib.sha256()
    for chunk in iter(lambda: stream.read(1 << 16), b""):
        digest.update(chunk)
    return digest.hexdigest()


class Archive(ABC):
    @abstractmethod
    def put(
        self, key: str, source: Path, *, sha256: str, size: int, meta: Mapping[str, Any]
    ) -> bool:
        """Store the file `source` under `key` with its metadata, once.
        True if written now, False if the same bytes were already there."""

    @abstractmethod
    def get(self, key: str) -> BinaryIO:
        """A readable stream of the body (caller closes it)."""

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def meta(self, key: str) -> dict[str, Any] | None: ...

    @abstractmethod
    def keys(self, app_area: str) -> Iterator[str]:
        """Body keys of one app area (not metadata), in no particular order."""

    def find(self, app_area: str, packet_id: str) -> str | None:
        """The key of `packet_id`'s body, searching the app area (the ledger's `archive_key`
        is the fast path; this is for replay and recovery)."""
        name = safe_name(packet_id)
        for key in self.keys(app_area):
            if key.rsplit("/", 1)[-1].split(".", 1)[0] == name:
                return key
        return None

    def _stored_sha256(self, key: str) -> str:
        meta = self.meta(key)
        if meta and meta.get("sha256"):
            return str(meta["sha256"])
        with self.get(key) as stream:  # body written but its metadata was not (crash)
            return _sha256_of(stream)

    def _check_existing(self, key: str, sha256: str) -> bool:
        """True if `key` already holds these bytes; raise if it holds others."""
        if not self.exists(key):
            return False
        if self._stored_sha256(key) != sha256:
            raise ArchiveConflict(f"{key} already archived with different content")
        return True

    def close(self) -> None:  # noqa: B027 - nothing to release for a directory
        pass


class FileArchive(Archive):
    """A local directory. Writes go to a temporary file then `os.link` into place, which
    fails if the key appeared meanwhile — so concurrent writers cannot overwrite."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise ArchiveError(f"archive key escapes the archive: {key!r}")
        return path

    def put(
        self, key: str, source: Path, *, sha256: str, size: int, meta: Mapping[str, Any]
    ) -> bool:
        path = self._path(key)
        meta_path = path.with_name(path.name + META_SUFFIX)
        written = False
        if not self._check_existing(key, sha256):
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
            try:
                with source.open("rb") as src, tmp.open("wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
                    dst.flush()
                    os.fsync(dst.fileno())
                try:
                    os.link(tmp, path)
                    written = True
                except FileExistsError:
                    self._check_existing(key, sha256)
            finally:
                tmp.unlink(missing_ok=True)
        if not meta_path.exists():
            body = {**clean_meta(meta), "sha256": sha256, "size": size}
            tmp = meta_path.with_name(f".{meta_path.name}.{uuid.uuid4().hex}.tmp")
            tmp.write_bytes(orjson.dumps(body, option=orjson.OPT_INDENT_2))
            os.replace(tmp, meta_path)
        return written

    def get(self, key: str) -> BinaryIO:
        try:
            return self._path(key).open("rb")
        except FileNotFoundError:
            raise ArchiveError(f"{key} is not in the archive") from None

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def meta(self, key: str) -> dict[str, Any] | None:
        path = self._path(key)
        meta_path = path.with_name(path.name + META_SUFFIX)
        try:
            return orjson.loads(meta_path.read_bytes())
        except FileNotFoundError:
            return None

    def keys(self, app_area: str) -> Iterator[str]:
        base = self._path(app_area)
        for path in base.glob("*/*/*/*"):
            if path.is_file() and not path.name.startswith(".") and META_SUFFIX not in path.name:
                yield path.relative_to(self.root.resolve()).as_posix()


class S3Archive(Archive):
    """An S3 bucket (or MinIO). The body's sha256 is also stored as object metadata."""

    def __init__(self, bucket: str, prefix: str = "", *, client: Any) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.client = client

    def _key(self, key: str) -> str:
        return self.prefix + key

    def _head(self, key: str) -> dict[str, Any] | None:
        from botocore.exceptions import ClientError

        try:
            return self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise ArchiveError(f"cannot read {key} from the archive: {exc}") from None

    def _stored_sha256(self, key: str) -> str:
        head = self._head(key)
        sha = (head or {}).get("Metadata", {}).get("sha256")
        return sha or super()._stored_sha256(key)

    def put(
        self, key: str, source: Path, *, sha256: str, size: int, meta: Mapping[str, Any]
    ) -> bool:
        written = False
        if not self._check_existing(key, sha256):
            with source.open("rb") as src:
                # upload_fileobj streams in parts: memory does not grow with the packet.
                self.client.upload_fileobj(
                    src, self.bucket, self._key(key), ExtraArgs={"Metadata": {"sha256": sha256}}
                )
            written = True
        meta_key = key + META_SUFFIX
        if written or self._head(meta_key) is None:
            body = {**clean_meta(meta), "sha256": sha256, "size": size}
            self.client.put_object(
                Bucket=self.bucket,
                Key=self._key(meta_key),
                Body=orjson.dumps(body, option=orjson.OPT_INDENT_2),
                ContentType="application/json",
            )
        return written

    def get(self, key: str) -> BinaryIO:
        from botocore.exceptions import ClientError

        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"]
        except ClientError as exc:
            raise ArchiveError(f"{key} is not in the archive: {exc}") from None

    def exists(self, key: str) -> bool:
        return self._head(key) is not None

    def meta(self, key: str) -> dict[str, Any] | None:
        if not self.exists(key + META_SUFFIX):
            return None
        with self.get(key + META_SUFFIX) as body:
            return orjson.loads(body.read())

    def keys(self, app_area: str) -> Iterator[str]:
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self._key(app_area + "/")):
            for item in page.get("Contents", []):
                key = item["Key"][len(self.prefix) :]
                if not key.endswith(META_SUFFIX):
                    yield key

    def close(self) -> None:
        self.client.close()


def open_archive(url: str, *, s3_endpoint_url: str | None = None) -> Archive:
    """`file:///abs/path`, `file://./relative` or `s3://bucket/prefix`."""
    if url.startswith("file://"):
        return FileArchive(Path(url.removeprefix("file://")))
    if url.startswith("s3://"):
        import boto3

        bucket, _, prefix = url.removeprefix("s3://").partition("/")
        if not bucket:
            raise ValueError("s3 archive URL needs a bucket: s3://bucket/prefix")
        return S3Archive(bucket, prefix, client=boto3.client("s3", endpoint_url=s3_endpoint_url))
    raise ValueError(f"unsupported archive URL {url!r} (use file:// or s3://)")
