"""The built wheel installs one top-level package, ``memlane``."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


@pytest.mark.slow
def test_wheel_installs_only_the_memlane_package(tmp_path: Path) -> None:
    """Every file of the wheel lies under memlane/ or its dist-info; all four subpackages ship."""
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-w", str(tmp_path), str(ROOT)], check=True, capture_output=True)
    wheel = next(tmp_path.glob("memlane-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names}
    assert tops == {"memlane", next(t for t in tops if t.endswith(".dist-info"))}
    for package in ("events", "projections", "daemon", "cli"):
        assert f"memlane/{package}/__init__.py" in names
