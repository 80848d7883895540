"""Progress bars for long work, on a terminal only (piped output stays quiet and JSON)."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

T = TypeVar("T")
Update = Callable[[int, int], None]  # done, total


@contextmanager
def progress_bar(label: str, *, enabled: bool | None = None) -> Iterator[Update]:
    """An ``update(done, total)`` that draws a bar on stderr when it is a terminal."""
    if not (sys.stderr.isatty() if enabled is None else enabled):
        yield lambda _done, _total: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    console = Console(stderr=True, force_terminal=True if enabled else None)
    with Progress("[progress.description]{task.description}", BarColumn(),
                  MofNCompleteColumn(), TimeElapsedColumn(), transient=True,
                  console=console) as bar:
        task = bar.add_task(label, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total or None)


def while_polling(work: Callable[[], T], poll: Callable[[], Any], update: Update,
                  interval: float = 0.2) -> T:
    """Run ``work`` in a thread; meanwhile ``poll()`` for ``(done, total)`` (or None) and
    draw it. Returns ``work``'s result, or raises its error."""
    result: list[T] = []
    error: list[BaseException] = []

    def run() -> None:
        try:
            result.append(work())
        except BaseException as exc:  # handed back to the caller's thread as it is
            error.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    while worker.is_alive():
        worker.join(interval)
        try:
            state = poll()
        except Exception:  # noqa: BLE001  a failed poll only skips one redraw
            state = None
        if state:
            update(*state)
    if error:
        raise error[0]
    return result[0]


def polled(client: Any, path: str, *parts: str) -> tuple[int, int] | None:
    """``(done, total)`` from the ``progress`` of a daemon's long work, found at ``path`` (under
    ``parts`` of its answer), while it runs; None otherwise."""
    state = client.request("GET", path)
    for part in parts:
        state = state.get(part) or {}
    progress = state.get("progress")
    return None if not progress else (progress[0], progress[1])
