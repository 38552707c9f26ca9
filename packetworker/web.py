"""The `web` process: Business Central webhook receiver, health check and metrics.

- `GET|POST <webhook path>?validationToken=...` → 200 text/plain echoing the token: BC's
  handshake on every subscription create and renewal. Answered before anything else (no body
  parsing, no Redis) because BC gives up after about five seconds.
- `POST <webhook path>` with `{"value": [...]}` → each notification whose `clientState`
  matches (constant-time compare) is queued for the worker; 202. None matching → 401 (a
  forged or stale call; BC drops a subscription answered with a 4xx, and the subscription
  manager recreates it with the current secret). Queueing failing → 503, which BC retries.
- `GET /healthz` → 200 when Redis answers, else 503.
- `GET /metrics` → Prometheus text (`packetworker.metrics`): packets per outcome and how
  many acknowledged (the same counts as `status`), oldest pending age, acks waiting, the
  workers' counters (packets and records processed, target requests and 429s) and apply
  latency histogram, outbound counters, seconds left per webhook subscription.
- `/console/...` → the operator's console (`packetworker.console`), when credentials are set.

A WSGI app on werkzeug; `run_web` serves it with waitress (a production WSGI server, pure
Python, no fork). The notification handling itself runs in the worker, never here.
"""

from __future__ import annotations

import hmac
import logging
import signal
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import orjson
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from packetworker.metrics import Metric, render
from packetworker.outbound.notifications import Notification, parse_notification

if TYPE_CHECKING:
    import redis

    from packetworker.outbound.state import OutboundState
    from packetworker.settings import Settings

logger = logging.getLogger(__name__)

DEFAULT_WEBHOOK_PATH = "/bc/webhook"
#: BC's tokens are short; a cap keeps the echo from being an open reflector of big payloads.
MAX_TOKEN_LENGTH = 1024
#: BC sends at most ~1,000 notifications per call (then switches to `collection`).
MAX_NOTIFICATION_BYTES = 2 * 1024 * 1024
#: BC's calls carry a handful of short headers; waitress's default (256 KiB) is generous.
MAX_HEADER_BYTES = 64 * 1024

CONSOLE_PREFIX = "/console"


class WebApp:
    """The WSGI application. Collaborators are callables so tests can pass plain functions.

    `enqueue(message)` queues one notification (a `Notification.to_message()` dict);
    `health()` says whether the process's dependencies answer; `metrics()` yields samples.
    """

    def __init__(
        self,
        *,
        client_state: str,
        enqueue: Callable[[dict[str, Any]], None],
        health: Callable[[], bool] = lambda: True,
        metrics: Callable[[], Iterable[Metric]] = tuple,
        webhook_path: str | None = DEFAULT_WEBHOOK_PATH,
        console: Callable[..., Any] | None = None,
    ) -> None:
        """`webhook_path=None`: no webhook is configured, so no webhook route is served."""
        self._console = console
        self._secret = client_state.encode()
        self._enqueue = enqueue
        self._check_health = health
        self._collect_metrics = metrics
        webhook = (
            [Rule(webhook_path, endpoint="webhook", methods=["GET", "POST"])]
            if webhook_path
            else []
        )
        self._routes = Map(
            [
                *webhook,
                Rule("/healthz", endpoint="health", methods=["GET"]),
                Rule("/metrics", endpoint="metrics", methods=["GET"]),
            ]
        )

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if self._console is not None and (path + "/").startswith(CONSOLE_PREFIX + "/"):
            return self._console(environ, start_response)
        request = Request(environ)
        request.max_content_length = MAX_NOTIFICATION_BYTES
        if (request.content_length or 0) > MAX_NOTIFICATION_BYTES:
            # Refused on the declared length, before routing or reading a byte of the body
            # (waitress refuses it even earlier; this covers any other WSGI server).
            return _text("request body too large", 413)(environ, start_response)
        try:
            endpoint, _ = self._routes.bind_to_environ(environ).match()
            response = getattr(self, f"_{endpoint}")(request)
        except (NotFound, MethodNotAllowed) as exc:
            response = exc.get_response(environ)
        except HTTPException as exc:  # e.g. 413 from max_content_length
            response = exc.get_response(environ)
        return response(environ, start_response)

    # --- endpoints -----------------------------------------------------------------------

    def _webhook(self, request: Request) -> Response:
        token = request.args.get("validationToken")
        if token is not None:
            return self._handshake(token)
        if request.method != "POST":
            return _text("POST notifications here.", 405, headers={"Allow": "POST"})
        try:
            # orjson refuses nesting deeper than 1,024 levels with a JSONDecodeError (a
            # ValueError); the stdlib parser would raise RecursionError on a hostile body.
            body = orjson.loads(request.get_data(cache=False).removeprefix(b"\xef\xbb\xbf"))
            notes = body["value"]
            if not isinstance(notes, list):
                raise TypeError
        except (ValueError, KeyError, TypeError, RecursionError):
            return _text("expected a JSON object with a value array", 400)
        accepted, refused, unusable = self._accept(notes)
        try:
            for note in accepted:
                self._enqueue(note.to_message())
        except Exception:
            # 5xx: BC retries for 36 hours; a 4xx would make it delete the subscription.
            logger.exception("Could not queue %d notifications.", len(accepted))
            return _text("could not queue notifications", 503)
        if refused and not accepted:
            logger.warning("Refused %d notifications with a wrong clientState.", refused)
            return _text("clientState does not match", 401)
        if refused or unusable:
            logger.warning("Ignored %d with a wrong clientState, %d unusable.", refused, unusable)
        return _text("", 202)

    def _handshake(self, token: str) -> Response:
        if not token or len(token) > MAX_TOKEN_LENGTH:
            return _text("bad validationToken", 400)
        return _text(token, 200)

    def _accept(self, notes: list[Any]) -> tuple[list[Notification], int, int]:
        accepted: list[Notification] = []
        refused = unusable = 0
        for note in notes:
            state = note.get("clientState") if isinstance(note, dict) else None
            if not isinstance(state, str) or not hmac.compare_digest(state.encode(), self._secret):
                refused += 1
                continue
            try:
                accepted.append(parse_notification(note))
            except ValueError as exc:
                logger.warning("Unusable notification: %s", exc)
                unusable += 1
        return accepted, refused, unusable

    def _health(self, request: Request) -> Response:
        ok = _safely(self._check_health, default=False)
        return _text("ok" if ok else "unavailable", 200 if ok else 503)

    def _metrics(self, request: Request) -> Response:
        try:
            samples = list(self._collect_metrics())
        except Exception:
            logger.exception("Could not collect metrics.")
            return _text("metrics unavailable", 503)
        return Response(
            render_metrics(samples), content_type="text/plain; version=0.0.4; charset=utf-8"
        )


def collect_metrics(
    settings: Settings, client: redis.Redis, state: OutboundState, app_areas: Iterable[str]
) -> Iterator[Metric]:
    """Samples from Redis: packet counts and ack facts (`operations.counts`, the one source
    of every view's counts), the workers' counters, outbound counters, subscriptions."""
    from datetime import UTC, datetime

    from packetworker.metrics import RedisMetrics
    from packetworker.pipeline.ledger import RedisLedger
    from packetworker.pipeline.operations import counts
    from packetworker.pipeline.results import LIST_TYPES

    ledger = RedisLedger(
        client, settings.ledger_namespace, retention=settings.ledger_retention_days * 86400
    )
    now = ledger.clock()
    areas = sorted({*app_areas, *ledger.app_areas()})
    tallies = {area: counts(ledger, area) for area in areas}
    for area, tally in tallies.items():
        for outcome, value in tally["packets"].items():
            yield ("packetworker_packets", "gauge", {"app_area": area, "state": outcome}, value)
    for area, tally in tallies.items():
        for outcome, value in tally["acknowledged"].items():
            labels = {"app_area": area, "state": outcome}
            yield ("packetworker_packets_acknowledged", "gauge", labels, value)
    for area in areas:
        oldest = ledger.oldest_pending(area)
        age = 0.0 if oldest is None else max(0.0, now - oldest)
        yield ("packetworker_oldest_pending_age_seconds", "gauge", {"app_area": area}, age)
    for area in areas:
        for list_type in LIST_TYPES:
            waiting = len(ledger.pending_acks(area, list_type))
            labels = {"app_area": area, "list_type": list_type}
            yield ("packetworker_acks_waiting", "gauge", labels, waiting)
    yield from RedisMetrics(client, settings.ledger_namespace).samples()
    for event, value in sorted(state.counters().items()):
        yield ("packetworker_outbound_events_total", "counter", {"event": event}, value)
    now_dt = datetime.now(UTC)
    for sub in state.subscriptions():
        if sub.mode == "webhook" and sub.expires:
            expires = datetime.fromisoformat(sub.expires.replace("Z", "+00:00"))
            left = (expires - now_dt).total_seconds()
            yield ("packetworker_webhook_seconds_left", "gauge", {"resource": sub.resource}, left)
        polling = 1 if sub.mode == "polling" else 0
        yield ("packetworker_webhook_polling", "gauge", {"resource": sub.resource}, polling)


#: The exposition format renderer (kept under its old name for callers of this module).
render_metrics = render


def _text(body: str, status: int, *, headers: Mapping[str, str] | None = None) -> Response:
    response = Response(body, status=status, content_type="text/plain; charset=utf-8")
    response.headers["X-Content-Type-Options"] = "nosniff"  # the token echo is never HTML
    response.headers["Cache-Control"] = "no-store"
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _safely(check: Callable[[], bool], *, default: bool) -> bool:
    try:
        return bool(check())
    except Exception:
        logger.exception("Health check failed.")
        return default


# --- the process ---------------------------------------------------------------------------


def create_app(settings: Settings | None = None) -> WebApp:
    """The production app: notifications go to the `handle_notification` actor; health and
    metrics read Redis (outbound state and the ledger)."""
    from urllib.parse import urlsplit

    from packetworker.outbound.context import redis_for, split_list
    from packetworker.outbound.state import RedisOutboundState
    from packetworker.pipeline.outbound_actors import enqueue_notification
    from packetworker.settings import get_settings

    settings = settings or get_settings()
    secret = settings.webhook_client_state.get_secret_value()
    if settings.webhook_url and not secret:
        raise ValueError("WEBHOOK_CLIENT_STATE must be set: it is how BC's calls are recognised")
    # No webhook configured (neither setting): serve health and metrics, and no webhook route,
    # which with an empty secret would accept any caller.
    webhook_path = (urlsplit(settings.webhook_url).path or DEFAULT_WEBHOOK_PATH) if secret else None
    if webhook_path is None:
        logger.info("No webhook configured (WEBHOOK_URL); serving /healthz and /metrics only.")
    client = redis_for(settings)
    state = RedisOutboundState(client, settings.ledger_namespace)
    areas = split_list(settings.dm_app_area)
    from packetworker.console import console_from_settings

    return WebApp(
        console=console_from_settings(settings, client),
        client_state=secret,
        enqueue=enqueue_notification,
        health=state.ping,
        metrics=lambda: collect_metrics(settings, client, state, areas),
        webhook_path=webhook_path,
    )


def make_server(app: Callable[..., Any], settings: Settings) -> Any:
    """A waitress server for `app` on `WEB_HOST`:`PORT` that hostile clients cannot starve.

    - a body whose declared length exceeds `MAX_NOTIFICATION_BYTES` is answered 413 as soon
      as its headers arrive (waitress's default would spool up to 1 GB to disk first);
    - connections idle or stuck half-way through a request for `WEB_CHANNEL_TIMEOUT`
      seconds are closed, checked every few seconds, so slow or silent clients cannot hold
      all `connection_limit` slots and keep `/healthz` from being accepted.
    """
    import waitress

    timeout = settings.web_channel_timeout
    return waitress.create_server(
        app,
        host=settings.web_host,
        port=settings.web_port,
        threads=settings.web_threads,
        max_request_body_size=MAX_NOTIFICATION_BYTES,
        max_request_header_size=MAX_HEADER_BYTES,
        channel_timeout=timeout,
        cleanup_interval=max(1, timeout // 2),
        ident="packetworker",
    )


def run_web(settings: Settings | None = None) -> None:
    """Serve the app with waitress on `WEB_HOST`:`PORT` until SIGTERM/SIGINT."""
    from packetworker.logs import setup_logging
    from packetworker.settings import get_settings

    settings = settings or get_settings()
    setup_logging(
        level=settings.log_level,
        fmt=settings.log_format,
        secrets=tuple(
            s
            for s in (
                settings.webhook_client_state.get_secret_value(),
                settings.dm_api_key.get_secret_value(),
            )
            if s
        ),
    )
    server = make_server(create_app(settings), settings)

    def stop(signum: int, frame: object) -> None:
        # Waitress would die on SIGTERM's default action; closing the listener ends `run()`
        # and lets requests in flight finish, so the platform sees a clean exit.
        logger.info("Web stopping on %s.", signal.Signals(signum).name)
        server.close()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    logger.info("Web listening on %s port %s.", settings.web_host, server.effective_port)
    try:
        server.run()
    except OSError:
        # asyncore's loop raises EBADF once the listener it polls is closed under it.
        if server.accepting:
            raise
    logger.info("Web stopped.")
