"""The BC emulator's `/_sandbox/` admin API, so an emulator in another process can be seeded
and read over HTTP (benchmarks run it apart from the processes they measure).

    GET  /_sandbox/counters              -> requests (API calls, not token calls), statuses
                                            (status -> count), maxInFlight, maxQueued
    GET  /_sandbox/entities/{set}?company=   -> {"value": [every entity of the set]}
    POST /_sandbox/entities/{set}?company=   body = fields -> the seeded entity (201)

Loopback development tool like the portal sandbox's: no key, no BC behaviour.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import orjson
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from packetworker.sandbox.base import json_response
from packetworker.sandbox.bc.errors import ODataError


class AdminView(Protocol):
    """What the admin API reads and seeds of a running BC emulator (`BCSandbox`)."""

    requests: Sequence[Any]
    max_in_flight: int
    max_queued: int
    store: Callable[..., Any]
    add_item: Callable[..., dict]
    add_customer: Callable[..., dict]
    add: Callable[..., dict]


PREFIX = "/_sandbox/"
URLS = Map(
    [
        Rule("/_sandbox/counters", endpoint="counters", methods=["GET"]),
        Rule("/_sandbox/entities/<entity_set>", endpoint="entities", methods=["GET"]),
        Rule("/_sandbox/entities/<entity_set>", endpoint="seed", methods=["POST"]),
    ]
)


class BCAdmin:
    """Answers `/_sandbox/` requests for one `BCSandbox`."""

    def __init__(self, sandbox: AdminView) -> None:
        self.sandbox = sandbox

    def __call__(self, request: Request) -> Response:
        try:
            endpoint, values = URLS.bind_to_environ(request.environ).match()
            return getattr(self, endpoint)(request, **values)
        except HTTPException as exc:
            return json_response(exc.code or 500, {"message": exc.name})
        except ODataError as exc:
            return json_response(exc.status, exc.body())
        except (KeyError, ValueError, TypeError) as exc:
            return json_response(400, {"message": str(exc)})

    def counters(self, request: Request) -> Response:
        api = [r for r in self.sandbox.requests if r.user is not None]  # not token calls
        return json_response(
            200,
            {
                "requests": len(api),
                "statuses": {str(k): v for k, v in Counter(r.status for r in api).items()},
                "maxInFlight": self.sandbox.max_in_flight,
                "maxQueued": self.sandbox.max_queued,
            },
        )

    def entities(self, request: Request, entity_set: str) -> Response:
        rows = self.sandbox.store(request.args.get("company"), entity_set)
        return json_response(200, {"value": rows})

    def seed(self, request: Request, entity_set: str) -> Response:
        fields: dict[str, Any] = orjson.loads(request.get_data() or b"{}")
        company = request.args.get("company")
        add = {"items": self.sandbox.add_item, "customers": self.sandbox.add_customer}.get(
            entity_set
        )
        row = add(company, **fields) if add else self.sandbox.add(entity_set, company, **fields)
        return json_response(201, row)
