"""The console's pages: plain functions from the operations' data to HTML strings.

Every value is escaped (`markupsafe.escape`); only the markup written here is trusted. No
JavaScript: forms and links do everything. Pages show what `pipeline.operations` returns and
nothing else, so no setting, receipt handle or credential can reach them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from markupsafe import Markup

CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
header{background:#1d2330;color:#fff;padding:.6rem 1.2rem;display:flex;gap:1.2rem;
align-items:center}header a{color:#cfe0ff;text-decoration:none}header form{margin-left:auto}
main{padding:1rem 1.2rem;max-width:72rem}h1{font-size:1.3rem}h2{font-size:1.05rem;margin-top:1.6rem}
table{border-collapse:collapse;background:#fff;margin:.4rem 0}
td,th{border:1px solid #d9dde5;padding:.25rem .55rem;text-align:left;vertical-align:top}
th{background:#eef0f4}td.n{text-align:right}.id{font-family:monospace}
.w-quarantined,.w-error{color:#a4161a;font-weight:600}.w-applied,.w-duplicate{color:#1b6e3a}
.w-held{color:#8a5a00;font-weight:600}pre{background:#fff;border:1px solid #d9dde5;padding:.6rem;
max-height:28rem;overflow:auto;white-space:pre-wrap}button{cursor:pointer}
.flash{background:#e6f4ea;border:1px solid #9bd3ae;padding:.5rem .8rem}
.error{background:#fdecea;border:1px solid #f5b5ae;padding:.5rem .8rem}
"""


def when(at: float | None) -> str:
    if not at:
        return "-"
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def age(seconds: float | None) -> str:
    """A rough age: 45s, 12m, 5h, 3d."""
    if seconds is None:
        return "-"
    whole = int(seconds)
    for unit, size, below in (("s", 1, 120), ("m", 60, 7200), ("h", 3600, 172800)):
        if whole < below:
            return f"{whole // size}{unit}"
    return f"{whole // 86400}d"


def page(title: str, body: Markup | str, *, csrf: str | None = None) -> str:
    """The frame of every page; `csrf` set means logged in (navigation and log-out shown)."""
    nav = Markup("")
    if csrf is not None:
        nav = Markup(
            '<a href="/console/">Overview</a><a href="/console/packets">Packets</a>'
            '<a href="/console/quarantine">Quarantine and held</a>'
            '<form method="post" action="/console/logout">{}<button>Log out</button></form>'
        ).format(csrf_field(csrf))
    return str(
        Markup(
            "<!doctype html><html lang=en><head><meta charset=utf-8>"
            '<meta name=viewport content="width=device-width,initial-scale=1">'
            '<title>{} · packetworker</title><link rel=stylesheet href="/console/console.css">'
            "</head><body><header><strong>packetworker</strong>{}</header>"
            "<main><h1>{}</h1>{}</main></body></html>"
        ).format(title, nav, title, body)
    )


def csrf_field(csrf: str) -> Markup:
    return Markup('<input type=hidden name=csrf value="{}">').format(csrf)


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], *, cls: str = "") -> Markup:
    head = Markup("").join(Markup("<th>{}</th>").format(h) for h in headers)
    head = Markup("<tr>{}</tr>").format(head) if any(headers) else Markup("")
    body = Markup("").join(
        Markup("<tr>{}</tr>").format(Markup("").join(_cell(c) for c in row)) for row in rows
    )
    return Markup('<table class="{}">{}{}</table>').format(cls, head, body)


def _cell(value: Any) -> Markup:
    if isinstance(value, Markup):
        return Markup("<td>{}</td>").format(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return Markup('<td class="n">{}</td>').format(value)
    return Markup("<td>{}</td>").format("" if value is None else value)


def word(text: str) -> Markup:
    """An outcome word, styled by what it is."""
    return Markup('<span class="w-{}">{}</span>').format(text, text)


def packet_link(packet_id: str) -> Markup:
    return Markup('<a class="id" href="/console/packets/{}">{}</a>').format(
        quote(packet_id, safe=""), packet_id
    )


def login(modes: Sequence[str], csrf: str, *, error: str | None = None) -> str:
    fields = Markup("")
    if "token" in modes:
        fields += Markup(
            "<p><label>Token <input type=password name=token id=token autocomplete=off></label></p>"
        )
    if "password" in modes:
        fields += Markup(
            "<p><label>User <input name=user id=user autocomplete=username></label></p>"
            "<p><label>Password <input type=password name=password id=password "
            "autocomplete=current-password></label></p>"
        )
    problem = Markup('<p class="error">{}</p>').format(error) if error else Markup("")
    body = Markup(
        '{}<form method="post" action="/console/login">{}{}<button id=login>Log in</button></form>'
    ).format(problem, csrf_field(csrf), fields)
    return page("Log in", body)


def overview(status: Mapping[str, Any], outbound: Mapping[str, int], csrf: str) -> str:
    parts: list[Markup] = []
    if not status:
        parts.append(Markup("<p>The ledger holds no packets yet.</p>"))
    for area, info in status.items():
        rows = [
            (word(name), n, info["acknowledged"].get(name, "-"))
            for name, n in info["counts"].items()
        ]
        poll = info["last_poll"]
        acks = ", ".join(f"{n} {t}" for t, n in info["pending_acks"].items())
        facts = [
            ("oldest pending", age(info["oldest_pending_age"])),
            ("last poll", f"{when(poll['at'])}: {poll['result']}" if poll else "none recorded"),
            ("acks waiting", acks),
            ("stuck (out of attempts, no bytes)", info["stuck"]),
        ]
        parts.append(
            Markup('<h2>App area <span class="id">{}</span></h2>{}{}').format(
                area,
                table(("outcome", "packets", "acknowledged"), rows, cls="counts"),
                table(("", ""), facts),
            )
        )
    pushes = sorted(outbound.items()) or [("none", "")]
    parts.append(Markup("<h2>Outbound pushes</h2>{}").format(table(("event", "count"), pushes)))
    return page("Overview", Markup("").join(parts), csrf=csrf)


def packet_list(items: Sequence[Mapping[str, Any]], search: str, now: float, csrf: str) -> str:
    form = Markup(
        '<form method="get" action="/console/packets"><input name=q id=q value="{}" '
        'placeholder="id, user, document number, outcome, error"> <button>Search</button></form>'
    ).format(search)
    rows = [
        (
            packet_link(e["packet_id"]),
            e["app_area"],
            e.get("user") or "",
            (e.get("documents") or "").replace(",", ", "),
            word(e["outcome"]),
            "yes" if e["acknowledged"] else "no",
            age(max(0.0, now - e["listed_at"])) if e.get("listed_at") else "-",
        )
        for e in items
    ]
    headers = ("packet", "app area", "user", "documents", "outcome", "acknowledged", "age")
    shown = Markup("<p>{} packets{}</p>").format(
        len(items), Markup(" matching <b>{}</b>").format(search) if search else ""
    )
    return page("Packets", form + shown + table(headers, rows, cls="packets"), csrf=csrf)


def redrive_button(packet_id: str, csrf: str) -> Markup:
    return Markup(
        '<form method="post" action="/console/packets/{}/redrive">{}'
        '<button class="redrive">Re-drive</button></form>'
    ).format(quote(packet_id, safe=""), csrf_field(csrf))


def quarantine(
    quarantined: Sequence[Mapping[str, Any]], held: Sequence[Mapping[str, Any]], csrf: str
) -> str:
    def rows(items: Sequence[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
        return [
            (
                packet_link(e["packet_id"]),
                e["app_area"],
                e.get("user") or "",
                word(e["outcome"]),
                "yes" if e["acknowledged"] else "no",
                e["attempts"],
                e.get("last_error") or "",
                redrive_button(e["packet_id"], csrf),
            )
            for e in items
        ]

    headers = ("packet", "app area", "user", "outcome", "acknowledged", "attempts", "reason", "")
    body = Markup(
        "<p>Re-drive a packet once its cause is fixed: it is queued to the workers, as "
        "<code>packetworker dlq retry ID</code> does.</p>"
        "<h2>Quarantined or stuck ({})</h2>{}<h2>Held ({})</h2>{}"
    ).format(
        len(quarantined),
        table(headers, rows(quarantined), cls="quarantine"),
        len(held),
        table(headers, rows(held), cls="held"),
    )
    return page("Quarantine and held", body, csrf=csrf)


def story(
    told: Mapping[str, Any],
    raw: tuple[bytes, bool] | None,
    csrf: str,
    *,
    redrivable: bool,
    flash: str = "",
) -> str:
    """The packet page: the same sections, in the same order, as `packetworker trace`."""
    entry = told["entry"]
    pid = entry["packet_id"]
    notice = Markup('<p class="flash">{}</p>').format(flash) if flash else Markup("")
    head = table(
        ("", ""),
        [
            ("outcome", word(entry["outcome"])),
            ("acknowledged", "yes" if entry["acknowledged"] else "no"),
            ("app area", entry["app_area"]),
            ("user", entry.get("user") or "-"),
            ("documents", (entry.get("documents") or "-").replace(",", ", ")),
            ("source", f"{entry['source']} ({entry['list_type']} list)"),
            ("attempts", entry["attempts"]),
            ("same content as", entry.get("duplicate_of") or "-"),
        ],
        cls="facts",
    )
    button = redrive_button(pid, csrf) if redrivable else Markup("")
    timeline = table(
        ("time", "step", "attempt", "detail"),
        [
            (when(s["at"]), word(s["event"]), s["attempt"], s.get("detail") or "")
            for s in told["timeline"]
        ],
        cls="timeline",
    )
    tables = table(
        ("table", "records by status"),
        [
            (name, ", ".join(f"{n} {status}" for status, n in counts.items()) or "no records")
            for name, counts in told["tables"].items()
        ],
        cls="tables",
    )
    if told["tables_error"]:
        tables = Markup("<p>{}</p>").format(told["tables_error"]) + tables
    records = table(
        ("table", "row", "target reference"),
        [(r["table"], r["row"] or "-", r["target_ref"] or "(no ref)") for r in told["records"]],
        cls="records",
    )
    errors = Markup("").join(Markup("<li>{}</li>").format(e) for e in told["errors"])
    raw_part = Markup("<p>Not archived.</p>")
    if raw is not None:
        data, more = raw
        cut = Markup(" (first {} bytes)").format(len(data)) if more else ""
        raw_part = Markup(
            '<p><a href="/console/packets/{}/raw">Download</a>{}</p><pre id=raw>{}</pre>'
        ).format(quote(pid, safe=""), cut, data.decode("utf-8", "replace"))
    body = Markup(
        "{}{}{}<h2>Timeline</h2>{}<h2>Tables</h2>{}<h2>Records in the target</h2>{}"
        "<h2>Errors</h2><ul>{}</ul><h2>Raw packet</h2>{}"
    ).format(
        notice,
        head,
        button,
        timeline,
        tables,
        records,
        errors or Markup("<li>none</li>"),
        raw_part,
    )
    return page(f"Packet {pid}", body, csrf=csrf)


def message(title: str, text: str, *, csrf: str | None = None) -> str:
    return page(title, Markup("<p>{}</p>").format(text), csrf=csrf)
