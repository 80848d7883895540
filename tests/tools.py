"""The programs tests run: the ``memlane`` of the venv under test, and system tools that CI
installs (``.ci/run``), so a missing tool fails there instead of skipping."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

# The venv under test, never whichever memlane comes first on PATH.
MEMLANE = str(Path(sys.executable).with_name("memlane"))


def require(tool: str, why: str) -> str:
    """The path of ``tool``; without it, a skip locally and a failure in CI."""
    found = shutil.which(tool)
    if found is None:
        missing(f"{tool} is not installed ({why})")
    return str(found)


def missing(reason: str) -> None:
    if os.environ.get("MEMLANE_CI"):
        pytest.fail(f"{reason}: .ci/run must install it")
    pytest.skip(reason)
