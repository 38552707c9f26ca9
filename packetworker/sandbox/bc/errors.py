"""OData errors as the emulator answers them (BC's `{"error": {"code", "message"}}` shape)."""

from __future__ import annotations

import uuid


class ODataError(Exception):
    def __init__(
        self, status: int, code: str, message: str, *, headers: dict | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}

    def body(self) -> dict:
        # BC ends every message with a correlation id; clients should not parse it.
        message = f"{self.message}  CorrelationId:  {uuid.uuid4()}."
        return {"error": {"code": self.code, "message": message}}
