"""`Ocp-Apim-Subscription-Key` auth with the primary key and the secondary as a fallback.

Both keys of a CRM as a Service instance are valid; admins regenerate one at a time. When
the key in use is refused (401) the other is tried once, and the one that worked is kept
for the following requests, so a rotation costs one extra request, not an outage.
"""

from __future__ import annotations

import threading
from collections.abc import Generator

import httpx

HEADER = "Ocp-Apim-Subscription-Key"
KEY_NAMES = ("primary", "secondary")


class SubscriptionKeyAuth(httpx.Auth):
    """Adds the subscription key; thread-safe; fails over between the two keys on 401."""

    def __init__(self, primary: str, secondary: str = "") -> None:
        keys = [k for k in (primary, secondary) if k]
        if not keys:
            raise ValueError("CRM as a Service needs a primary or secondary subscription key")
        self._keys = (primary, secondary)
        self._active = 0 if primary else 1
        self._lock = threading.Lock()

    @property
    def active(self) -> str:
        """Which key is in use: "primary" or "secondary"."""
        return KEY_NAMES[self._active]

    @property
    def secrets(self) -> tuple[str, ...]:
        return tuple(k for k in self._keys if k)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        index = self._active
        request.headers[HEADER] = self._keys[index]
        response = yield request
        if response.status_code == 401 and self._fail_over(index):
            request.headers[HEADER] = self._keys[self._active]
            yield request

    def _fail_over(self, refused: int) -> bool:
        """Switch away from key `refused`; False when there is no other key to try."""
        with self._lock:
            other = 1 - refused
            if not self._keys[other]:
                return False
            if self._active == refused:
                self._active = other
            return True

    def __repr__(self) -> str:  # never show the keys
        return f"<SubscriptionKeyAuth active={self.active}>"
