"""BC's time: now in UTC, and its timestamp style. (A clock tests move is the sandbox's
`sandbox.base.Clock`, frozen: token and subscription expiry follow it.)"""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def isoformat(moment: datetime) -> str:
    """BC's timestamp style: UTC with milliseconds and a Z (2019-08-18T20:05:51.603Z)."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
