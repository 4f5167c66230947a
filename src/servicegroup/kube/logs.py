"""Logging setup shared by every `servicegroup` command: `--log-format text|json`, `--log-level`.

Key/value context (controller, key, reconcile id ...) travels in a contextvar set with
`log_context(...)`, so every record logged while reconciling one key carries it, and the JSON
format makes it machine-readable. Extra fields passed as `logger.info(msg, extra={...})` are
included too.
"""

from __future__ import annotations

import argparse
import contextvars
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Final

import orjson

LEVELS: Final = ("debug", "info", "warning", "error")
FORMATS: Final = ("text", "json")

_context: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "servicegroup_log_context", default=None
)
_STANDARD_ATTRS: Final = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "context"}


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Add key/value fields to every record logged inside the block (nests, task-local)."""
    token = _context.set({**(_context.get() or {}), **fields})
    try:
        yield
    finally:
        _context.reset(token)


def current_context() -> dict[str, Any]:
    """The fields `log_context` has set for the running task."""
    return dict(_context.get() or {})


def _record_fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = dict(getattr(record, "context", None) or {})
    fields.update({k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRS})
    return fields


class _ContextFilter(logging.Filter):
    """Copies the task's log context onto the record when it is created (before queueing)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.context = _context.get() or {}
        return True


class TextFormatter(logging.Formatter):
    """`time level logger: message key=value ...`"""

    def format(self, record: logging.LogRecord) -> str:
        base = super().format(record)
        fields = _record_fields(record)
        if not fields:
            return base
        head, sep, tail = base.partition("\n")
        pairs = " ".join(f"{key}={value}" for key, value in fields.items())
        return f"{head} {pairs}{sep}{tail}"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, context fields, exc."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            **_record_fields(record),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def setup_logging(level: str = "info", format: str = "text") -> None:
    """Configure the root logger once per process (replacing earlier handlers)."""
    if level.lower() not in LEVELS:
        raise ValueError(f"log level must be one of {', '.join(LEVELS)}, not {level!r}")
    if format not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, not {format!r}")
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_ContextFilter())
    if format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def add_logging_arguments(parser: argparse.ArgumentParser) -> None:
    """Add `--log-format` and `--log-level` to a sub-command (use with `setup_logging_from_args`)."""
    parser.add_argument("--log-format", choices=FORMATS, default="text", help="log line format")
    parser.add_argument("--log-level", choices=LEVELS, default="info", help="minimum level logged")


def setup_logging_from_args(args: argparse.Namespace) -> None:
    """`setup_logging` from the flags added by `add_logging_arguments`."""
    setup_logging(args.log_level, args.log_format)
