"""Taking memlane's routed lines back out of an instruction file (forget and the review's
undo share it): the lines of each memory are removed (``domain.forgetting.remove_routed``),
and memlane's section with them once it is empty; the file is rewritten atomically only when it changed, and the diff is returned."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from pathlib import Path

from memlane.daemon.domain.forgetting import remove_routed
from memlane.daemon.domain.routing import drop_empty_section

WriteFile = Callable[[Path, bytes, int | None], None]


def unroute(path: Path, memories: Mapping[int, str | None], write_file: WriteFile
            ) -> dict[str, str] | None:
    """Remove the lines written for ``memories`` (id -> text, None when unknown) from the file
    at ``path``; ``{"target", "diff"}``, or None when the file held none of them."""
    if not path.is_file():
        return None
    before = path.read_text(encoding="utf-8", errors="surrogateescape")
    after = before
    for memory, text in memories.items():
        after = remove_routed(after, memory, text)
    after = drop_empty_section(after)
    if after == before:
        return None
    write_file(path, after.encode("utf-8", errors="surrogateescape"), None)
    return {"target": str(path), "diff": "".join(difflib.unified_diff(
        before.splitlines(True), after.splitlines(True), f"a/{path.name}", f"b/{path.name}"))}
