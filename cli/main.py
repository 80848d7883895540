"""The ``memlane`` executable: hot commands go to :mod:`quick`, the rest to the full CLI."""

from __future__ import annotations

import sys


def main() -> None:
    from memlane.cli.quick import parse

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
