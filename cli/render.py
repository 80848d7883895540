"""Output: JSON when asked or when stdout is not a terminal, short text otherwise."""

from __future__ import annotations

import json
import sys
from typing import Any


def wants_json(flag: bool) -> bool:
    return flag or not sys.stdout.isatty()


def emit(payload: Any, *, as_json: bool, text: str | None = None) -> None:
    """Print ``payload`` as one JSON document, or ``text`` (default: indented JSON) on a TTY."""
    if wants_json(as_json):
        print(json.dumps(payload, ensure_ascii=False))
    else:
        print(text if text is not None else json.dumps(payload, indent=2, ensure_ascii=False))


def emit_lines(rows: list[dict[str, Any]], *, as_json: bool, text: str | None = None) -> None:
    """One JSON object per line, or ``text`` on a TTY."""
    if wants_json(as_json):
        for row in rows:
            print(json.dumps(row, ensure_ascii=False))
    elif text is not None:
        print(text)
    else:
        for row in rows:
            print(json.dumps(row, ensure_ascii=False))


def fail(message: str, code: int = 1) -> None:
    print(f"memlane: {message}", file=sys.stderr)
    raise SystemExit(code)
