"""The ``memlane`` executable: hot commands (``hook``, ``recall``, ``remember``) go to
:mod:`quick`, ``daemon run`` straight to the daemon, the rest to the full CLI."""

from __future__ import annotations

import sys


def main() -> None:
    if sys.argv[1:] == ["daemon", "run"]:  # what the service units start: the daemon's own
        # entry, without the CLI's toolkit (typer, click, rich: ~60 ms of every start)
        from memlane.daemon.__main__ import main as run_daemon

        raise SystemExit(run_daemon())
    from memlane.cli.quick import parse, parse_hook, relay_hook

    if (hook := parse_hook(sys.argv[1:])) is not None:
        relay_hook(*hook)
        return
    plain = parse(sys.argv[1:])
    if plain is None:
        from memlane.cli.app import main as full

        full()
        return
    from memlane.cli import quick

    command, text, project, k = plain
    if command == "recall":
        quick.recall(text, project, k)
    else:
        quick.remember(text, project)
