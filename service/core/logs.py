"""JSON log lines with the request id on each, configured only by entry points.

Every line has ``timestamp``, ``level``, ``component`` (api, worker, consumer,
cli), ``logger``, ``message`` and ``request_id`` (null outside a request).
Modules use ``logging.getLogger(__name__)`` and never configure logging.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any

from pythonjsonlogger.json import JsonFormatter

from service.core.context import current_client, current_request_id


class ContextFilter(logging.Filter):
    """Stamps the component and the current request id on every record."""

    def __init__(self, component: str) -> None:
        super().__init__()
        self.component = component

    def filter(self, record: logging.LogRecord) -> bool:
        record.component = self.component
        record.__dict__.pop("color_message", None)  # uvicorn's ANSI-coloured duplicate of the message
        if getattr(record, "request_id", None) is None:
            record.request_id = current_request_id()
        if getattr(record, "client", None) is None:
            record.client = current_client()
        return True


class _Formatter(JsonFormatter):
    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")


def json_formatter() -> JsonFormatter:
    return _Formatter(
        "{asctime}{levelname}{component}{name}{message}{request_id}{client}",
        style="{",
        rename_fields={"asctime": "timestamp", "levelname": "level", "name": "logger"},
        json_ensure_ascii=False,
    )


def configure_logging(component: str, level: str | int = "INFO", stream: Any = None) -> None:
    """Send every log record of this process as one JSON line to ``stream`` (stderr)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(json_formatter())
    handler.addFilter(ContextFilter(component))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(True)  # a library's warning is a JSON line too
    # Their INFO lines are per-connection noise; warnings still come through.
    for noisy in ("pika", "kafka", "httpx", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def uvicorn_log_config(component: str, level: str) -> dict[str, Any]:
    """A dictConfig for uvicorn so that its own lines are JSON too."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": ContextFilter, "component": component}},
        "formatters": {"json": {"()": json_formatter}},
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "json",
                "filters": ["context"],
            }
        },
        "root": {"handlers": ["default"], "level": level},
        "loggers": {
            "uvicorn": {"handlers": [], "propagate": True},
            "uvicorn.error": {"handlers": [], "propagate": True},
            "uvicorn.access": {"handlers": [], "propagate": True, "level": "WARNING"},
        },
    }
