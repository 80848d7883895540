"""JSON config files that other programs own (Claude Code's settings, ``~/.claude.json``):
read them, change what is ours, write them back looking as they did, atomically."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class JsonFileError(ValueError):
    """The file is not a JSON object; nothing is changed."""


@dataclass(frozen=True)
class Layout:
    """How the file was written, so a rewrite looks the same."""

    indent: str | None
    final_newline: bool
    compact: bool = False  # one line without spaces after separators: {"a":1,"b":2}
    ascii_only: bool = False  # non-ASCII written as \u escapes
    crlf: bool = False


DEFAULT_LAYOUT = Layout(indent="  ", final_newline=True)


def read_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def parse(data: bytes | None) -> tuple[dict[str, Any], Layout]:
    """The object in a file's bytes (None or blank: an empty object) and its layout."""
    text = (data or b"").decode("utf-8")
    if not text.strip():
        return {}, DEFAULT_LAYOUT
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise JsonFileError(f"not valid JSON ({exc})") from None
    if not isinstance(document, dict):
        raise JsonFileError("does not hold a JSON object")
    indent = re.search(r"\n([ \t]+)\S", text)
    return document, Layout(
        indent=indent.group(1) if indent else None, final_newline=text.endswith("\n"),
        compact=indent is None and re.search(r'":\s', text) is None,
        ascii_only=text.isascii() and "\\u" in text, crlf="\r\n" in text)


def render(document: dict[str, Any], layout: Layout) -> bytes:
    separators = (",", ":") if layout.compact else None
    text = json.dumps(document, indent=layout.indent, ensure_ascii=layout.ascii_only,
                      separators=separators)
    text += "\n" if layout.final_newline else ""
    return (text.replace("\n", "\r\n") if layout.crlf else text).encode("utf-8")
