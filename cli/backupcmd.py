"""``memlane backup DEST`` and ``memlane restore SRC``, with progress on a terminal."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from memlane.cli import daemonctl
from memlane.cli.client import Client, DaemonError, DaemonUnavailable
from memlane.cli.progress import polled, progress_bar, while_polling
from memlane.cli.render import emit, fail, wants_json
from memlane.daemon.domain.errors import ApiError
from memlane.events.errors import LogLocked

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON (default when piped).")]


def register(app: typer.Typer, call: Callable[..., Any], paths: Callable[[], Any]) -> None:
    @app.command()
    def backup(dest: Annotated[Path, typer.Argument(help="A new directory for the copy.")],
               projections: Annotated[bool, typer.Option(
                   "--projections", help="Copy the projections too (a faster restore).")]
               = False, as_json: JsonFlag = False) -> None:
        """Copy the log up to now (optionally the projections), while the daemon serves or
        with it stopped."""
        client = Client(paths(), timeout=3600.0)
        body = {"dest": str(dest.resolve()), "projections": projections}
        with progress_bar("backing up", enabled=False if wants_json(as_json) else None) \
                as update:
            try:
                if daemonctl.is_up(paths()) is None:
                    from memlane.cli.offline import backup_offline

                    answer = backup_offline(paths(), body["dest"], projections=projections,
                                            progress=update)
                else:
                    poller = Client(paths(), timeout=2.0)
                    answer = while_polling(lambda: client.request("POST", "/v1/backup", body),
                                           lambda: polled(poller, "/v1/backup"), update)
            except (DaemonError, ApiError) as exc:
                fail(f"{exc.code}: {exc.message}")
            except (DaemonUnavailable, LogLocked) as exc:
                fail(f"{exc}; try again once it has started or stopped", code=2)
        emit(answer, as_json=as_json,
             text=f"backed up the log up to seq {answer['position']} "
                  f"({answer['log_bytes']:,} bytes) into {answer['path']} "
                  f"in {answer['seconds']} s")

    @app.command()
    def restore(what: Annotated[str, typer.Argument(
                    help="A memory id (bring an expired memory back), or a directory "
                         "`memlane backup` wrote (./123 for a directory named with digits).")],
                into: Annotated[Optional[Path], typer.Option(
                    help="The state directory to create (default: this memlane's, which must "
                         "hold no log yet).")] = None,
                ledger: Annotated[Optional[Path], typer.Option(
                    help="The forget ledger to apply again (default: the one in this "
                         "memlane's state directory).")] = None,
                as_json: JsonFlag = False) -> None:
        """Bring an expired memory back, or rebuild a state directory from a backup (forgets
        made since are applied again)."""
        if what.isdigit():
            answer = call("POST", f"/v1/memories/{what}/restore", {})
            emit(answer, as_json=as_json, text=f"restored memory {what} ({answer['state']})")
            return
        from memlane.cli.restoring import restore as run_restore
        from memlane.daemon.adapters.paths import resolve_paths
        from memlane.events.ledger import LEDGER

        current = paths()
        target = resolve_paths({"MEMLANE_HOME": str(into.resolve())}) if into else current
        with progress_bar("restoring", enabled=False if wants_json(as_json) else None) \
                as update:
            try:
                answer = run_restore(Path(what), target, ledger=ledger or current.home / LEDGER,
                                     progress=update)
            except ValueError as exc:
                fail(str(exc))
        emit(answer, as_json=as_json,
             text=f"restored {answer['home']} up to seq {answer['position']}: "
                  f"{answer['memories']}; forgotten again: {answer['forgotten_again'] or 'none'}")
