"""The last warnings and errors the daemon logged, for the health page: a small ring of what
went wrong, never what it was about.

A log event's values may carry the user's text: an exception message can quote a memory, a
query, a path or a config value. So an entry keeps only the time, the level, the event's
name (a snake_case constant of memlane's code), the exception's class name, and the numeric
fields; every string value and every message is left out.
"""

from __future__ import annotations

import re
import sys
from collections import deque
from datetime import UTC, datetime
from typing import Any

SIZE = 20
LEVELS = frozenset({"warning", "error", "critical", "exception"})
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


class ErrorRing:
    """A structlog processor that keeps the last :data:`SIZE` warnings and errors."""

    def __init__(self, size: int = SIZE) -> None:
        self._entries: deque[dict[str, Any]] = deque(maxlen=size)

    def __call__(self, _logger: Any, method: str, event: dict[str, Any]) -> dict[str, Any]:
        level = str(event.get("level", method))
        if level in LEVELS:
            self._entries.append(entry_of(event, level))
        return event

    def recent(self) -> list[dict[str, Any]]:
        """The kept entries, newest first."""
        return list(reversed(self._entries))


def entry_of(event: dict[str, Any], level: str) -> dict[str, Any]:
    """What may be shown of a log event: no string value, no message."""
    name = event.get("event")
    entry: dict[str, Any] = {
        "at": str(event.get("timestamp") or datetime.now(UTC).isoformat()),
        "level": "error" if level == "exception" else level,
        "event": name if isinstance(name, str) and _NAME.match(name) else "(unnamed)"}
    if (kind := _exception_kind(event.get("exc_info"))) is not None:
        entry["exception"] = kind
    entry.update({key: value for key, value in event.items()
                  if isinstance(value, int | float) and _NAME.match(key)})
    return entry


def _exception_kind(exc_info: Any) -> str | None:
    if exc_info is True:
        exc_info = sys.exc_info()
    if isinstance(exc_info, BaseException):
        return type(exc_info).__name__
    if isinstance(exc_info, tuple) and exc_info and exc_info[0] is not None:
        return str(exc_info[0].__name__)
    return None
