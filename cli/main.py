"""The ``memlane`` executable: hot commands (``hook``, ``recall``, ``remember``) go to
:mod:`quick`, the rest to the full CLI."""

from __future__ import annotations

import sys


def main() -> None:
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
