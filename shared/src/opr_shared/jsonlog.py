"""JSON logs with the request's or event's correlation id, and identifiers masked.

The correlation id lives in a context variable: the HTTP middleware sets it from
the ``X-Correlation-ID`` header (or a new id), the consumer sets it from the
envelope, and every log line written meanwhile carries it.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

correlation_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "correlation_id", default=None
)

# HKID: one or two letters, six digits, a check character (digit or A), optionally
# bracketed. Passport-like numbers: a letter or two followed by 7-9 digits.
_HKID = re.compile(r"\b([A-Z]{1,2})(\d{6})\s*\(?([0-9A])\)?(?![0-9])", re.IGNORECASE)
_PASSPORT = re.compile(r"\b([A-Z]{1,2})(\d{7,9})\b", re.IGNORECASE)
_EMAIL = re.compile(r"\b([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})\b")


def mask_identifiers(text: str) -> str:
    """Mask HKID and passport numbers and e-mail local parts in free text."""
    text = _HKID.sub(lambda m: f"{m.group(1)[0]}******(*)", text)
    text = _PASSPORT.sub(lambda m: f"{m.group(1)[0]}{'*' * len(m.group(2))}", text)
    return _EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", text)


_RESERVED = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "color_message"}


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "message": mask_identifiers(record.getMessage()),
            "correlation_id": correlation_id_var.get(),
        }
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = mask_identifiers(value) if isinstance(value, str) else value
        if record.exc_info:
            entry["exception"] = mask_identifiers(self.formatException(record.exc_info))
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure_logging(service: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiokafka", "pymongo", "urllib3"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "faststream"):
        lg = logging.getLogger(name)
        lg.handlers[:] = []
        lg.propagate = True
