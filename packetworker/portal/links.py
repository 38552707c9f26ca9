"""What the portal hands us as paths and URLs, checked before we use them (pure but for DNS).

- `rendition_path`: the listed `url` names the packet's JSON rendition
  (`push-done/json/…/<id>.json`, dynamics-mobile.md §3.2.1); the vendor's own worker asks
  for the XML rendition by rewriting exactly path segment 2 and the extension (§3.3).
- `check_link`: a presigned download URL or push `uploadPath` must be `https` and must not
  point at a loopback, private or link-local address (literal, or what its name resolves to),
  unless its host is one the operator listed (`DM_STORAGE_HTTP_HOSTS`, e.g. the sandbox),
  which then may also use plain `http`.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Collection, Iterable
from typing import Literal

import httpx

from packetworker.portal.errors import PortalUnavailable, UnsafeLink
from packetworker.redact import redact_url

Rendition = Literal["xml", "as-listed"]
Resolver = Callable[[str], Iterable[str]]


def rendition_path(url: str, rendition: Rendition = "xml") -> str:
    """The path to ask a link for: the listed `url`, or its XML rendition.

    Only `push-done/json/…/<name>.json` is rewritten (segment 2 and the extension, nothing
    else, so an id or user containing "json" is kept); file entries and anything of another
    shape keep their path.
    """
    if rendition == "as-listed":
        return url
    segments = url.split("/")
    if len(segments) < 3 or segments[1] != "json" or not segments[-1].endswith(".json"):
        return url
    segments[1] = "xml"
    segments[-1] = segments[-1].removesuffix(".json") + ".xml"
    return "/".join(segments)


def system_resolver(host: str) -> list[str]:
    """Every address `host` resolves to (empty if it does not resolve)."""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        return []
    return [str(info[4][0]) for info in infos]


def parse_hosts(text: str) -> frozenset[str]:
    """`"127.0.0.1, localhost"` -> {"127.0.0.1", "localhost"} (lower case, blanks dropped)."""
    return frozenset(h.strip().lower() for h in text.split(",") if h.strip())


def _internal(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id
    except ValueError:
        return True  # not an address we can judge: refuse rather than guess
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_unspecified
        or ip.is_multicast
        or ip.is_reserved
    )


def check_link(
    url: str, *, allowed_hosts: Collection[str] = (), resolve: Resolver = system_resolver
) -> None:
    """Raise `UnsafeLink` unless `url` may be fetched or uploaded to (see the module doc)."""
    shown = redact_url(url)
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        raise UnsafeLink(f"refused link {shown!r}: not a URL") from None
    host = (parsed.host or "").lower()
    if not host:
        raise UnsafeLink(f"refused link {shown!r}: no host")
    if host in allowed_hosts:
        if parsed.scheme not in ("https", "http"):
            raise UnsafeLink(f"refused link {shown!r}: scheme {parsed.scheme!r}")
        return
    if parsed.scheme != "https":
        raise UnsafeLink(f"refused link {shown!r}: only https is allowed for {host}")
    try:
        addresses = [str(ipaddress.ip_address(host))]
    except ValueError:
        addresses = list(resolve(host))
        if not addresses:
            # A name that does not resolve now may resolve later (DNS hiccup): try again later.
            raise PortalUnavailable(f"link host {host} does not resolve ({shown!r})") from None
    internal = [a for a in addresses if _internal(a)]
    if internal:
        raise UnsafeLink(
            f"refused link {shown!r}: {host} is an internal address ({internal[0]}); "
            "list the host in DM_STORAGE_HTTP_HOSTS if it is meant"
        )


__all__ = ["Rendition", "check_link", "parse_hosts", "rendition_path", "system_resolver"]
