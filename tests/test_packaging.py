"""The built wheel installs one top-level package, ``memlane``, with every module of the design
card's folders in it (packages are discovered, so a new folder cannot be left behind)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
FOLDERS = ("events", "projections", "daemon", "cli")


def build_wheel(source: Path, out: Path) -> list[str]:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-w", str(out), str(source)], check=True, capture_output=True)
    return zipfile.ZipFile(next(out.glob("memlane-*.whl"))).namelist()


def missing_modules(source: Path, names: list[str]) -> list[str]:
    """Every ``.py`` under the design card's folders that the wheel lacks."""
    wanted = {f"memlane/{p.relative_to(source).as_posix()}"
              for folder in FOLDERS for p in (source / folder).rglob("*.py")
              if "__pycache__" not in p.parts}
    return sorted(wanted - set(names))


@pytest.mark.slow
def test_the_wheel_holds_every_module_and_only_the_memlane_package(tmp_path: Path) -> None:
    names = build_wheel(ROOT, tmp_path)
    tops = {name.split("/")[0] for name in names}
    assert tops == {"memlane", next(t for t in tops if t.endswith(".dist-info"))}
    assert missing_modules(ROOT, names) == []
    assert "memlane/cli/hook.sh" in names
    viewer = ROOT / "daemon" / "api" / "ui"
    shipped = {f"memlane/daemon/api/ui/{p.relative_to(viewer).as_posix()}"
               for folder in ("templates", "static") for p in (viewer / folder).iterdir()}
    assert shipped and shipped <= set(names), sorted(shipped - set(names))


@pytest.mark.slow
def test_a_folder_without_its_init_is_caught(tmp_path: Path) -> None:
    """The check can fail: a subpackage that is not a package does not ship, and is named."""
    source = tmp_path / "src"
    for folder in FOLDERS:  # only what the build reads: never state a demo left behind
        shutil.copytree(ROOT / folder, source / folder,
                        ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    (source / "daemon" / "runtime" / "__init__.py").unlink()
    names = build_wheel(source, tmp_path / "wheel")
    assert "memlane/daemon/runtime/writer.py" in missing_modules(source, names)
