"""Logging set-up: JSON lines in production, secrets redacted from every message.

Pass context as `extra={"packet_id": ..., "app_area": ...}`; the JSON formatter puts those
keys on the line, and `bind()` gives a logger adapter that adds them to every call.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from typing import Any

import orjson

from packetworker.redact import redact_text

CONTEXT_KEYS = ("app_area", "packet_id", "list_type", "user", "target", "attempt", "state")


class RedactingFilter(logging.Filter):
    """Redacts the rendered message (and exception text) before any handler sees it."""

    def __init__(self, *secrets: str) -> None:
        super().__init__()
        self.secrets = tuple(s for s in secrets if s)

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact_text(record.getMessage(), *self.secrets)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text, *self.secrets)
        record.exc_info = None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key in CONTEXT_KEYS:
            value = getattr(record, key, None)
            if value is not None:
                line[key] = value
        if record.exc_text:
            line["exc"] = record.exc_text
        return orjson.dumps(line, default=str).decode()


class TextFormatter(logging.Formatter):
    """Plain lines for a terminal, ending with the line's context (`packet_id=...`), so a
    line such as `applied: {...}` says which packet it is about."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = [
            f"{key}={value}"
            for key in CONTEXT_KEYS
            if (value := getattr(record, key, None)) is not None
        ]
        if not context:
            return line
        head, newline, tail = line.partition("\n")  # after the message, before a traceback
        return f"{head} [{' '.join(context)}]{newline}{tail}"


def setup_logging(
    *, level: str = "INFO", fmt: str = "json", secrets: tuple[str, ...] = (), stream=None
) -> None:
    """Configure the root logger once per process (idempotent)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(RedactingFilter(*secrets))
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # httpx logs full request URLs at INFO; presigned URLs must not reach logs even redacted-late.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("botocore").setLevel(logging.WARNING)


def bind(logger: logging.Logger, **context: Any) -> logging.LoggerAdapter:
    """A logger that adds `context` (app_area, packet_id, ...) to every line."""

    class _Adapter(logging.LoggerAdapter):
        def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
            extra: Mapping[str, Any] = kwargs.get("extra") or {}
            kwargs["extra"] = {**self.extra, **extra}
            return msg, kwargs

    return _Adapter(logger, context)
