"""The forget ledger: which memories were forgotten, as ids and content hashes, never text.

It lives in the state directory, beside the log, and no backup copies it: restoring a backup
re-applies every forget the ledger holds that the backup predates, so a restore never brings
forgotten text back. One JSON object per line, appended and synced after each forget.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from memlane.events.disk import OsDisk
from memlane.events.model import Forgotten, Record

LEDGER = "forget-ledger.jsonl"


def append_ledger(path: Path, records: Sequence[Record]) -> None:
    """Add the ``Forgotten`` records' ids and hashes to the ledger, durably."""
    lines = [json.dumps({"memory": r.event.memory, "content_hash": r.event.content_hash,
                         "seq": r.seq, "at": r.at.isoformat()}) + "\n"
             for r in records if isinstance(r.event, Forgotten)]
    if not lines:
        return
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
    try:
        OsDisk().write(fd, "".join(lines).encode())
        OsDisk().sync(fd)
    finally:
        os.close(fd)


def read_ledger(path: Path) -> list[dict[str, Any]]:
    """The ledger's entries (a torn last line, from a crash mid-append, is skipped)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    entries = []
    for line in text.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and isinstance(entry.get("memory"), int):
            entries.append(entry)
    return entries
