"""``memlane wait``: follow the daemon until it has caught up (the projections with the log, and
every memory embedded: after a start, an import or a model switch's re-embedding), with a
progress bar on a terminal."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated, Any

import typer

from memlane.cli.client import Client, DaemonError, DaemonUnavailable
from memlane.cli.progress import progress_bar
from memlane.cli.render import emit, fail, wants_json

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON (default when piped).")]
POLL_S = 0.25


def register(app: typer.Typer, paths: Callable[[], Any]) -> None:
    @app.command()
    def wait(timeout: Annotated[float, typer.Option(
                 help="Give up after this many seconds (exit 1).")] = 3600.0,
             as_json: JsonFlag = False) -> None:
        """Wait until every event is projected and every memory embedded (e.g. the
        re-embedding after `memlane model use`)."""
        client = Client(paths(), timeout=10.0)
        deadline = time.monotonic() + timeout
        with progress_bar("catching up", enabled=False if wants_json(as_json) else None) \
                as update:
            try:
                status = _follow(client, update, deadline)
            except DaemonError as exc:
                fail(f"{exc.code}: {exc.message}")
            except DaemonUnavailable as exc:
                fail(f"{exc}. Start it with `memlane up`.", code=2)
        if status is None:
            fail(f"not caught up within {timeout:g} s; `memlane status` shows what is left")
        answer = {"caught_up": True, "last_seq": status["last_seq"],
                  "vectors": status["vectors"], "model": status["model"]}
        emit(answer, as_json=as_json,
             text=f"caught up: {status['vectors']} memories embedded with {status['model']}, "
                  f"the log projected to seq {status['last_seq']}")


def remaining(status: dict[str, Any]) -> int:
    """Events not yet projected plus memories not yet embedded."""
    lag = max(0, int(status["last_seq"]) - int(status["applied_seq"]))
    return lag + int(status["embedding_backlog"])


def _follow(client: Client, update: Callable[[int, int], None],
            deadline: float) -> dict[str, Any] | None:
    """The first status with nothing left and the model ready (None past the deadline),
    drawing done / total, the total being the most ever seen left."""
    total = 0
    while True:
        status = client.request("GET", "/v1/status")
        left = remaining(status)
        total = max(total, left)
        update(total - left, total)
        if left == 0 and status["model_state"] == "ready":
            return status  # type: ignore[no-any-return]
        if status["model_state"] == "failed":
            fail("the embedding model failed to load; see `memlane doctor`")
        if time.monotonic() > deadline:
            return None
        time.sleep(POLL_S)
