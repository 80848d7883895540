"""Where a long job of the daemon stands (rebuild, backup, compaction): what its GET route
answers, and what the CLI's progress bar polls."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class JobProgress:
    """``(done, total)`` while the job runs, None while it does not."""

    def __init__(self) -> None:
        self.now: tuple[int, int] | None = None

    @contextmanager
    def running(self, total: int) -> Iterator[None]:
        self.now = (0, total)
        try:
            yield
        finally:
            self.now = None

    def note(self, done: int, total: int) -> None:
        self.now = (done, total)

    def state(self) -> dict[str, Any]:
        return {"running": self.now is not None,
                "progress": None if self.now is None else list(self.now)}
