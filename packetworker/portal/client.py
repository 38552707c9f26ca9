"""A thin, typed client for the Dynamics Mobile ERP API (pull, link, download, done, push).

One shared `httpx.Client` carries the `x-api-key` for API calls; presigned storage URLs go
through a second client that never has the key, so it cannot leak to object storage. No
business rules live here: callers decide what to pull, when to ack and what to push.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Collection, Iterator, Sequence
from typing import IO, TYPE_CHECKING, Any, BinaryIO, Literal, TypeVar
from urllib.parse import quote

import httpx
import orjson
from tenacity import RetryCallState

from packetworker.http import is_transient_status, never_sent, open_client, resend_policy
from packetworker.portal.entries import (
    Download,
    ListFormatError,
    PullEntry,
    PushResult,
    done_body,
    iter_list,
)
from packetworker.portal.errors import (
    DownloadDeadline,
    DownloadTooLarge,
    LinkExpired,
    PortalAuthError,
    PortalError,
    PortalProtocolError,
    PortalUnavailable,
)
from packetworker.portal.links import Resolver, check_link, parse_hosts, system_resolver
from packetworker.redact import redact_text, redact_url
from packetworker.request_budget import (
    WINDOW_SECONDS,
    LocalLimiter,
    RequestLimiter,
    SlotUnavailable,
    limiter_for,
)
from packetworker.retrying import parse_retry_after

if TYPE_CHECKING:
    from packetworker.settings import Settings

log = logging.getLogger("packetworker.portal")

DEFAULT_BASE_URL = "https://api.portal.dynamicsmobile.com/mobile"
CHUNK_BYTES = 64 * 1024
_EXCERPT_BYTES = 2048
# Bodies pushed from a non-seekable stream are spooled so a retry can send them again.
_SPOOL_IN_MEMORY = 8 * 1024 * 1024
# Storage answers these when a presigned URL expired or its signature does not match.
_LINK_REFUSED = frozenset({400, 401, 403})

T = TypeVar("T")


class RetryableStatus(Exception):
    """Internal: an answer worth retrying (429/5xx); carries what the final error needs."""

    def __init__(self, response: httpx.Response, body: bytes) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.status = response.status_code
        self.body = body
        self.retry_after = parse_retry_after(response.headers.get("retry-after"))


def _worth_retrying(error: BaseException) -> bool:
    """Connection errors and transient answers; not a request budget that had no slot
    (waiting again is the caller's call)."""
    if isinstance(error, SlotUnavailable):
        return False
    return isinstance(error, httpx.TransportError | RetryableStatus)


class PortalClient:
    """Client for one application area. Use as a context manager or call `close()`.

    Storage URLs the portal hands out (download links, push `uploadPath`) are checked before
    any request (`links.check_link`): https only and no internal addresses, except for
    `storage_hosts`. Downloads stop at `download_deadline` seconds in total.
    """

    def __init__(
        self,
        *,
        base_url: str = DEFAULT_BASE_URL,
        app_area: str,
        api_key: str,
        timeout: float = 30.0,
        retries: int = 5,
        max_download_bytes: int = 512 * 1024 * 1024,
        download_deadline: float = 300.0,
        storage_hosts: Collection[str] = (),
        resolve: Resolver = system_resolver,
        transport: httpx.BaseTransport | None = None,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        limiter: RequestLimiter | None = None,
    ) -> None:
        if not app_area:
            raise ValueError("app_area is required")
        self.base_url = base_url.rstrip("/")
        self.app_area = app_area
        self.retries = retries
        self.max_download_bytes = max_download_bytes
        self.download_deadline = download_deadline
        self.storage_hosts = frozenset(h.lower() for h in storage_hosts)
        self._resolve = resolve
        self._monotonic = monotonic
        self._timeout = timeout
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self._sleep = sleep
        self._secrets = (api_key,) if api_key else ()
        limits = httpx.Timeout(timeout)  # connect, read, write and pool alike
        self._api = open_client(
            service=None,  # /metrics counts target systems' requests, not the portal's
            # API calls spend the app area's request budget; storage links do not.
            transport=transport,
            limiter=limiter,
            headers={"x-api-key": api_key, "Content-Type": "application/json"},
            timeout=limits,
            follow_redirects=False,  # a redirect must never carry the key elsewhere
        )
        self._storage = open_client(
            service=None, transport=transport, timeout=limits, follow_redirects=False
        )

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> PortalClient:
        """A client configured from `Settings`; keyword overrides win. Its API calls spend the
        injected `"portal:<app area>"` request budget if there is one, else one of its own."""
        app_area = overrides.get("app_area", settings.dm_app_area)
        limiter = limiter_for(f"portal:{app_area}") or LocalLimiter(
            settings.dm_max_concurrency,
            per_window=settings.dm_requests_per_5_min,
            window=WINDOW_SECONDS,
            wait=settings.request_slot_wait,
        )
        options: dict[str, Any] = {
            "base_url": settings.dm_api_url,
            "app_area": settings.dm_app_area,
            "api_key": settings.dm_api_key.get_secret_value(),
            "timeout": settings.dm_http_timeout,
            "retries": settings.dm_http_retries,
            "max_download_bytes": settings.max_packet_bytes,
            "download_deadline": settings.dm_download_deadline,
            "storage_hosts": parse_hosts(settings.dm_storage_http_hosts),
            "limiter": limiter,
        }
        options.update(overrides)
        return cls(**options)

    # --- API calls ---------------------------------------------------------------------------

    def pull(
        self,
        *,
        packet_type: Literal["packet", "file"] = "packet",
        format: Literal["json", "xml"] = "json",  # the API's own parameter name
        limit: int | None = None,
    ) -> list[PullEntry]:
        """List pending inbound packets (or files), each with a fresh receipt handle; at most
        `limit` of them. The list is parsed as it arrives and the read stops at the limit,
        so a huge list costs only the entries kept (the rest are listed again later)."""
        url = self._path("pull")

        def read(response: httpx.Response) -> list[PullEntry]:
            try:
                return list(iter_list(response.iter_bytes(), limit=limit))
            except ListFormatError as exc:
                raise PortalProtocolError(
                    f"unusable pull list: {exc}", status=response.status_code
                ) from None

        return self._call_streamed(
            "GET", url, read, params={"packetType": packet_type, "format": format}
        )

    def link(self, path: str) -> str:
        """A temporary download URL for a listed entry's `url` (JSON `{"url"}` or plain text)."""
        response = self._call("GET", self._path("pull", "link"), params={"path": path})
        text = response.text.strip()
        url: Any = text
        if text.startswith(("{", '"')):
            try:
                data = orjson.loads(text)
            except orjson.JSONDecodeError:
                data = None
            url = data.get("url") if isinstance(data, dict) else data
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            raise self._error(PortalProtocolError, "link answer holds no URL", response)
        return url

    def done(
        self,
        entries: Sequence[PullEntry],
        *,
        packet_type: Literal["packet", "file"] = "packet",
        format: Literal["json", "xml"] = "xml",  # the API's own parameter name
    ) -> None:
        """Acknowledge `entries` in one call (their latest receipt handles). No-op for []."""
        if not entries:
            return
        body, content_type = done_body(entries, format)
        response = self._call(
            "POST",
            self._path("pull", "done"),
            params={"format": format, "packetType": packet_type},
            content=body,
            headers={"Content-Type": content_type},
        )
        data = _json_or_none(response.content)
        if isinstance(data, dict) and data.get("success") is False:
            raise self._error(PortalProtocolError, "done answered success=false", response)

    def push(
        self,
        user: str,
        body: bytes | BinaryIO | os.PathLike[str],
        *,
        packet_unique_id: str | None = None,
        packet_type: Literal["xml", "json"] = "xml",
    ) -> PushResult:
        """Send a packet to a mobile user: ask for an upload slot, then PUT the bytes to it."""
        if not user:
            raise ValueError("user is required")
        packet_unique_id = packet_unique_id or str(uuid.uuid4())
        with _opened(body) as (content, size):
            response = self._call(
                "GET",
                self._path("push", user),
                params={
                    "packetUniqueId": packet_unique_id,
                    "size": size,
                    "packetType": packet_type,
                },
            )
            data = _json_or_none(response.content)
            upload_path = data.get("uploadPath") if isinstance(data, dict) else None
            if not isinstance(data, dict) or data.get("success") is not True:
                raise self._error(PortalProtocolError, "push slot refused", response)
            if not isinstance(upload_path, str) or not upload_path.startswith("http"):
                raise self._error(PortalProtocolError, "push answer has no uploadPath", response)
            self.check_link(upload_path)
            self._upload(upload_path, content, size, f"application/{packet_type}")
        sync_log_id = data.get("syncLogId")
        return PushResult(
            sync_log_id=str(sync_log_id) if sync_log_id is not None else None,
            packet_unique_id=packet_unique_id,
            size=size,
        )

    # --- storage (presigned URLs, never with the key) ---------------------------------------

    def check_link(self, url: str) -> None:
        """Raise `UnsafeLink` unless `url` is a storage URL we may send a request to."""
        check_link(url, allowed_hosts=self.storage_hosts, resolve=self._resolve)

    def download(
        self,
        url: str,
        into: BinaryIO,
        *,
        max_bytes: int | None = None,
        deadline: float | None = None,
    ) -> Download:
        """Stream a presigned URL into `into`, hashing as it writes; at most `max_bytes`,
        within `deadline` seconds in total (retries included; default `download_deadline`).

        A refused link raises `LinkExpired` (ask for a new one), an unsafe one `UnsafeLink`,
        a body still arriving at the deadline `DownloadDeadline`. On retry the partial body
        is rewound when `into` is seekable; otherwise a retry after a partial write fails.
        """
        self.check_link(url)
        cap = self.max_download_bytes if max_bytes is None else max_bytes
        seconds = self.download_deadline if deadline is None else deadline
        ends_at = self._monotonic() + seconds
        start = into.tell() if into.seekable() else None
        written = 0

        def left() -> float:
            remaining = ends_at - self._monotonic()
            if remaining <= 0:
                raise DownloadDeadline(f"download not complete within its deadline of {seconds:g}s")
            return remaining

        def attempt() -> Download:
            nonlocal written
            if start is not None:
                into.seek(start)
                into.truncate()
            elif written:
                raise PortalUnavailable("download interrupted; the target cannot be rewound")
            # No single wait may outlast the deadline either.
            timeout = httpx.Timeout(min(self._timeout, left()))
            with self._storage.stream("GET", url, timeout=timeout) as response:
                self._log_response(response)
                self._raise_for_storage(response)
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > cap:
                    raise DownloadTooLarge(
                        f"object is {declared} bytes, cap is {cap}", status=response.status_code
                    )
                digest = hashlib.sha256()
                size = 0
                # Chunks as they arrive (not re-buffered), so a trickle meets the deadline.
                for chunk in response.iter_bytes():
                    left()
                    size += len(chunk)
                    if size > cap:
                        raise DownloadTooLarge(
                            f"object exceeds the cap of {cap} bytes", status=response.status_code
                        )
                    digest.update(chunk)
                    into.write(chunk)
                    written += len(chunk)
                return Download(size=size, sha256=digest.hexdigest())

        try:
            return self._retry("GET", url, attempt)
        except DownloadTooLarge:
            if start is not None:
                into.seek(start)
                into.truncate()
            raise

    def _upload(self, url: str, content: bytes | IO[bytes], size: int, content_type: str) -> None:
        start = content.tell() if not isinstance(content, bytes) else 0
        headers = {"Content-Type": content_type, "Content-Length": str(size)}

        def attempt() -> None:
            payload: bytes | Iterator[bytes]
            if isinstance(content, bytes):
                payload = content
            else:
                content.seek(start)
                payload = _chunks(content, size)
            response = self._storage.put(url, content=payload, headers=headers)
            self._log_response(response)
            self._raise_for_storage(response)

        self._retry("PUT", url, attempt)

    def _raise_for_storage(self, response: httpx.Response) -> None:
        status = response.status_code
        if 200 <= status < 300:
            return
        excerpt = _head(response)
        if is_transient_status(status):
            raise RetryableStatus(response, excerpt)
        cls = LinkExpired if status in _LINK_REFUSED else PortalError
        raise cls(
            f"storage refused {response.request.method} {response.request.url}",
            status=status,
            body=excerpt,
            secrets=self._secrets,
        )

    # --- plumbing ---------------------------------------------------------------------------

    def _path(self, kind: str, *rest: str) -> str:
        segments = [kind, self.app_area, *rest]
        return f"{self.base_url}/erp/" + "/".join(quote(s, safe="") for s in segments)

    def _call_streamed(
        self, method: str, url: str, read: Callable[[httpx.Response], T], **kwargs: Any
    ) -> T:
        """`_call` for a body consumed as it arrives by `read` (inside each attempt)."""

        def attempt() -> T:
            with self._api.stream(method, url, **kwargs) as response:
                self._log_response(response)
                if is_transient_status(response.status_code):
                    raise RetryableStatus(response, _head(response))
                if not 200 <= response.status_code < 300:
                    self._raise_for_api(method, url, response, _head(response))
                return read(response)

        return self._retry(method, url, attempt)

    def _raise_for_api(
        self, method: str, url: str, response: httpx.Response, body: bytes | None = None
    ) -> None:
        """Raise for a non-2xx answer; `body` is its excerpt when it was streamed."""
        status = response.status_code
        if 200 <= status < 300:
            return
        cls = PortalAuthError if status in (401, 403) else PortalError
        verb = "was refused" if cls is PortalAuthError else "failed"
        excerpt = response.content if body is None else body
        raise cls(f"{method} {url} {verb}", status=status, body=excerpt, secrets=self._secrets)

    def _call(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """One API call with retries; returns only a 2xx response."""

        def attempt() -> httpx.Response:
            response = self._api.request(method, url, **kwargs)
            self._log_response(response)
            if is_transient_status(response.status_code):
                raise RetryableStatus(response, response.content)
            return response

        response = self._retry(method, url, attempt)
        self._raise_for_api(method, url, response)
        return response

    def _retry(self, method: str, url: str, fn: Callable[[], T]) -> T:
        """Run `fn` under the retry policy; exhausted retries become `PortalUnavailable`."""

        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            log.warning(
                "retrying %s %s after %s (attempt %d of %d, waiting %.2fs)",
                method,
                redact_url(url),
                _describe(exc),
                state.attempt_number,
                self.retries,
                state.upcoming_sleep,
            )

        # Every portal call may be sent again (reads, acknowledgements by receipt handle,
        # uploads to one presigned key), so a failure after sending is retried too.
        policy = resend_policy(
            idempotent=True,
            worth_retrying=_worth_retrying,
            not_run=never_sent,
            attempts=self.retries,
            backoff_base=self.backoff_base,
            backoff_max=self.backoff_max,
            sleep=self._sleep,
            before_sleep=before_sleep,
        )
        try:
            return policy(fn)
        except SlotUnavailable:
            raise  # not sent, and not an attempt: the caller reschedules
        except RetryableStatus as exc:
            raise PortalUnavailable(
                f"{method} {url} kept failing",
                status=exc.status,
                body=exc.body,
                secrets=self._secrets,
                retry_after=exc.retry_after,
            ) from None
        except httpx.TransportError as exc:
            raise PortalUnavailable(
                f"{method} {url} kept failing: {_describe(exc)}", secrets=self._secrets
            ) from exc

    def _error(self, cls: type[PortalError], message: str, response: httpx.Response) -> PortalError:
        return cls(
            message, status=response.status_code, body=response.content, secrets=self._secrets
        )

    def _log_response(self, response: httpx.Response) -> None:
        url = redact_text(redact_url(str(response.request.url)), *self._secrets)
        log.debug("%s %s -> %s", response.request.method, url, response.status_code)

    def close(self) -> None:
        self._api.close()
        self._storage.close()

    def __enter__(self) -> PortalClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"PortalClient(base_url={self.base_url!r}, app_area={self.app_area!r})"


def _describe(exc: BaseException | None) -> str:
    if isinstance(exc, RetryableStatus):
        return f"HTTP {exc.status}"
    return f"{type(exc).__name__}: {exc}" if exc else "?"


def _json_or_none(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


def _head(response: httpx.Response) -> bytes:
    """At most the first couple of KiB of a (streamed) body, for error excerpts."""
    out = b""
    for chunk in response.iter_bytes(_EXCERPT_BYTES):
        out += chunk
        if len(out) >= _EXCERPT_BYTES:
            break
    return out[:_EXCERPT_BYTES]


def _chunks(stream: IO[bytes], size: int) -> Iterator[bytes]:
    remaining = size
    while remaining > 0:
        chunk = stream.read(min(CHUNK_BYTES, remaining))
        if not chunk:
            break
        remaining -= len(chunk)
        yield chunk


@contextlib.contextmanager
def _opened(
    body: bytes | BinaryIO | os.PathLike[str],
) -> Iterator[tuple[bytes | IO[bytes], int]]:
    """The push body as bytes or a seekable stream, with its size in bytes."""
    if isinstance(body, bytes | bytearray | memoryview):
        data = bytes(body)
        yield data, len(data)
    elif isinstance(body, os.PathLike):
        with open(body, "rb") as f:
            yield f, os.fstat(f.fileno()).st_size
    elif body.seekable():
        start = body.tell()
        size = body.seek(0, os.SEEK_END) - start
        body.seek(start)
        yield body, size
    else:
        with tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY) as spool:
            for chunk in iter(lambda: body.read(CHUNK_BYTES), b""):
                spool.write(chunk)
            size = spool.tell()
            spool.seek(0)
            yield spool, size
