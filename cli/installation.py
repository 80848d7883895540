"""Where this installation's ``memlane`` script is, for files that must start it again
(hooks, the MCP entry, the service unit)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from memlane.cli.render import fail


def memlane_executable(command: str) -> Path:
    """The ``memlane`` script of this installation: absolute, with symlinks kept (a pipx or
    Homebrew link outlives the versioned path it points to). ``command`` names what the user
    ran, for the error."""
    candidates = (sys.argv[0], Path(sys.executable).parent / "memlane", shutil.which("memlane"))
    found = next((Path(os.path.abspath(c)) for c in candidates if c and _is_memlane(Path(c))),
                 None)
    if found is None:
        fail(f"cannot find the memlane executable; run `memlane {command}` from an installed "
             "memlane")
    return found


def _is_memlane(path: Path) -> bool:
    return path.name == "memlane" and path.is_file() and os.access(path, os.X_OK)
