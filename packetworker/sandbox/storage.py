"""S3 for the sandbox: moto's S3 server behind a small front that enforces presigned URLs.

moto accepts any presigned URL forever, so the sandbox hands out URLs that point at its own
front server instead. The front keeps a registry of the signatures it issued (method, key,
expiry by the sandbox clock), answers expired or unknown/tampered ones with S3's 403 XML
error, and relays the rest to moto with the body streamed both ways.
"""

from __future__ import annotations

import atexit
import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import boto3
import httpx
from botocore.config import Config
from werkzeug.wrappers import Request, Response

from packetworker.sandbox.base import Clock, ServerThread

CHUNK_BYTES = 64 * 1024
# Fixed fake credentials so boto3 never looks for real ones (env, ~/.aws, instance roles).
_FAKE_CREDENTIALS = {
    "aws_access_key_id": "sandbox-access-key",
    "aws_secret_access_key": "sandbox-secret-key",
    "region_name": "us-east-1",
}
_S3_CONFIG = Config(signature_version="s3v4", s3={"addressing_style": "path"})
# moto refuses anonymous requests to a private bucket but does not verify signatures, so the
# front (which did the checking) presents this fixed header instead of the client's URL.
_RELAY_AUTH = (
    f"AWS4-HMAC-SHA256 Credential={_FAKE_CREDENTIALS['aws_access_key_id']}/20000101/us-east-1/s3/"
    "aws4_request, SignedHeaders=host, Signature=0"
)
# Response headers worth relaying from moto.
_RELAYED = ("content-type", "content-length", "etag", "last-modified", "x-amz-request-id")

_moto_lock = threading.Lock()
_moto_url: str | None = None


def moto_url() -> str:
    """The process-wide moto S3 server, started on first use.

    moto keeps its state in module globals, so several servers in one process would share
    it anyway; one server (and a distinct bucket per sandbox) is honest and quicker.
    """
    global _moto_url
    with _moto_lock:
        if _moto_url is None:
            from moto.server import ThreadedMotoServer

            server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
            # moto's server logs each request through werkzeug's logger at INFO; keep it quiet.
            logging.getLogger("werkzeug").setLevel(logging.WARNING)
            server.start()
            atexit.register(server.stop)
            host, port = server.get_host_and_port()
            _moto_url = f"http://{host}:{port}"
        return _moto_url


_session: boto3.session.Session | None = None
_session_lock = threading.Lock()


def s3_client(endpoint_url: str) -> Any:
    """An S3 client with the fake credentials.

    One boto3 session serves every sandbox: a session loads botocore's service models once,
    which makes a new client cheap (a fresh session costs ~0.3 s). Creating clients from a
    session is not thread-safe, hence the lock.
    """
    global _session
    with _session_lock:
        if _session is None:
            _session = boto3.session.Session(**_FAKE_CREDENTIALS)
        return _session.client("s3", endpoint_url=endpoint_url, config=_S3_CONFIG)


@dataclass(frozen=True)
class Grant:
    """What one issued signature allows."""

    method: str
    path: str
    query: frozenset[tuple[str, str]]
    expires_at: float


def _s3_error(code: str, message: str, status: int = 403) -> Response:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>"
        f"<RequestId>{uuid.uuid4().hex}</RequestId></Error>"
    )
    return Response(body, status=status, mimetype="application/xml")


class Storage:
    """One sandbox's bucket, its presigning front and the registry of issued URLs."""

    def __init__(self, *, clock: Clock, link_ttl: float, host: str = "127.0.0.1") -> None:
        self.clock = clock
        self.link_ttl = link_ttl
        self.host = host
        self.bucket = f"sandbox-{uuid.uuid4().hex[:12]}"
        self.on_put: Callable[[str], None] = lambda key: None
        self._grants: dict[str, Grant] = {}
        self._lock = threading.Lock()
        self._moto: Any = None
        self._presigner: Any = None
        self._relay: httpx.Client | None = None
        self.front: ServerThread | None = None

    # The front is wrapped (request log, faults) by the caller; `app` is the bare relay.
    def start(self, front_app: Callable[..., Any]) -> None:
        self._moto_base = moto_url()
        self._moto = s3_client(self._moto_base)
        self._moto.create_bucket(Bucket=self.bucket)
        self._relay = httpx.Client(timeout=httpx.Timeout(60.0))
        self.front = ServerThread(front_app, host=self.host)
        self.front.start()
        self._presigner = s3_client(self.front.base_url)

    def stop(self) -> None:
        if self.front is not None:
            self.front.stop()
        if self._relay is not None:
            self._relay.close()

    # --- objects ---------------------------------------------------------------------------

    def put(self, key: str, body: bytes, content_type: str = "application/octet-stream") -> None:
        self._moto.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=content_type)

    def get(self, key: str) -> bytes:
        return self._moto.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def presign(self, method: str, key: str) -> str:
        """A presigned GET/PUT URL on the front, valid for `link_ttl` by the sandbox clock."""
        client_method = {"GET": "get_object", "PUT": "put_object"}[method]
        url = self._presigner.generate_presigned_url(
            client_method,
            Params={"Bucket": self.bucket, "Key": key},
            ExpiresIn=max(1, int(self.link_ttl)),
        )
        parts = urlsplit(url)
        query = frozenset(parse_qsl(parts.query, keep_blank_values=True))
        signature = dict(query)["X-Amz-Signature"]
        grant = Grant(method, unquote(parts.path), query, self.clock.now() + self.link_ttl)
        with self._lock:
            self._grants[signature] = grant
        return url

    # --- the front -------------------------------------------------------------------------

    def app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        query = frozenset(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
        with self._lock:
            grant = self._grants.get(dict(query).get("X-Amz-Signature", ""))
        if grant is None or (grant.method, grant.path, grant.query) != (
            request.method,
            request.path,
            query,
        ):
            response = _s3_error(
                "AccessDenied", "The request signature we calculated does not match."
            )
        elif self.clock.now() > grant.expires_at:
            response = _s3_error("AccessDenied", "Request has expired")
        else:
            response = self._forward(request)
        return response(environ, start_response)

    def _forward(self, request: Request) -> Response:
        assert self._relay is not None
        # The presigned query is authentication only; moto does not need (or log) it.
        url = self._moto_base + quote(request.path)
        headers = {k: v for k, v in request.headers.items() if k.lower() == "content-type"}
        headers["Authorization"] = _RELAY_AUTH
        content: Iterator[bytes] | None = None
        if request.method == "PUT":
            headers["Content-Length"] = str(request.content_length or 0)
            content = iter(lambda: request.stream.read(CHUNK_BYTES), b"")
        upstream = self._relay.send(
            self._relay.build_request(request.method, url, headers=headers, content=content),
            stream=True,
        )
        if request.method == "PUT" and upstream.status_code == 200:
            self.on_put(request.path.split("/", 2)[2])

        def body() -> Iterator[bytes]:
            try:
                yield from upstream.iter_raw(CHUNK_BYTES)
            finally:
                upstream.close()

        relayed = {k: v for k, v in upstream.headers.items() if k.lower() in _RELAYED}
        return Response(body(), status=upstream.status_code, headers=relayed)
