"""The house: the import contract in pyproject holds, can fail, and no module is in a cycle."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grimp
import mypy.api
import pytest
from importlinter import configuration
from importlinter.application import use_cases
from importlinter.application.app_config import settings

ROOT = Path(__file__).parents[1]
PACKAGES = ["memlane.events", "memlane.projections", "memlane.daemon", "memlane.cli"]
LAYERS = ("domain", "runtime", "adapters", "service", "api")
MAX_LINES = 400


class _WithImport:
    """The real graph builder, plus one import the code does not have."""

    def __init__(self, real: Any, importer: str, imported: str) -> None:
        self._real, self._importer, self._imported = real, importer, imported

    def build(self, **options: Any) -> grimp.ImportGraph:
        graph = self._real.build(**options)
        graph.add_import(importer=self._importer, imported=self._imported)
        return graph


def lint(extra: tuple[str, str] | None = None) -> bool:
    """Whether every contract in pyproject.toml is kept (with ``extra`` added to the graph)."""
    configuration.configure()
    if extra is not None:
        settings.configure(GRAPH_BUILDER=_WithImport(settings.GRAPH_BUILDER, *extra))
    try:
        return use_cases.lint_imports(config_filename=str(ROOT / "pyproject.toml"),
                                      cache_dir=None, no_logo=True)
    finally:
        configuration.configure()


def test_the_import_contract_holds() -> None:
    """Arrows point down: cli -> daemon -> projections -> events, and inside the daemon
    api -> service -> runtime -> domain, adapters handed in by the composition root."""
    assert lint()


@pytest.mark.parametrize("importer, imported", [
    ("memlane.daemon.domain.kinds", "sqlite3"),
    ("memlane.daemon.domain.aging", "anyio"),
    ("memlane.daemon.runtime.writer", "memlane.daemon.service.memories"),
    ("memlane.daemon.service.search", "memlane.daemon.adapters.engine"),
    ("memlane.daemon.adapters.gemini", "memlane.daemon.service.lifecycle"),
    ("memlane.events.model", "memlane.projections.fold"),
    ("memlane.cli.quick", "numpy"),
])
def test_a_violating_import_breaks_the_contract(importer: str, imported: str) -> None:
    """The contract is a test that can fail: one import pointing the wrong way breaks it."""
    assert not lint((importer, imported))


def strongly_connected(graph: grimp.ImportGraph) -> list[set[str]]:
    """Groups of modules that import each other, directly or not (Tarjan), of size > 1."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for other in graph.find_modules_directly_imported_by(module):
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in on_stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            group = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == module:
                    break
            if len(group) > 1:
                groups.append(group)

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return groups


def test_no_module_imports_another_in_a_cycle() -> None:
    """Imports under TYPE_CHECKING count too: a cycle hidden from the interpreter is still
    two modules that cannot be understood apart."""
    graph = grimp.build_graph(*PACKAGES, exclude_type_checking_imports=False, cache_dir=None)
    assert strongly_connected(graph) == []


def test_the_cycle_check_finds_a_cycle() -> None:
    graph = grimp.build_graph(*PACKAGES, cache_dir=None)
    graph.add_import(importer="memlane.daemon.domain.kinds",
                     imported="memlane.daemon.service.hooks")
    assert any("memlane.daemon.domain.kinds" in group for group in strongly_connected(graph))


def test_every_daemon_module_belongs_to_one_layer_and_stays_small() -> None:
    """Only the composition root and the entry point sit beside the layers; no utils.py,
    no module over ~400 lines, no module named after a standard library module."""
    import sys

    daemon = ROOT / "daemon"
    loose = {p.name for p in daemon.glob("*.py")}
    assert loose == {"__init__.py", "__main__.py", "app.py"}
    assert {p.name for p in daemon.iterdir() if p.is_dir() and p.name != "__pycache__"} \
        == set(LAYERS)
    for path in ROOT.glob("*/**/*.py"):
        if path.parts[len(ROOT.parts)] not in ("events", "projections", "daemon", "cli"):
            continue
        names = {path.stem, *path.relative_to(ROOT).parts[1:-1]} - {"__init__", "__main__"}
        assert "utils" not in names, path
        assert not names & sys.stdlib_module_names, path
        assert len(path.read_text().splitlines()) <= MAX_LINES, path


@pytest.mark.slow
def test_events_projections_and_the_pure_layer_type_check_strictly(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """mypy --strict over the folders as the ``memlane.*`` packages they install as."""
    (tmp_path / "memlane").mkdir()
    for folder in ("events", "projections", "daemon", "cli"):
        (tmp_path / "memlane" / folder).symlink_to(ROOT / folder)
    monkeypatch.chdir(tmp_path)  # mypy finds ``-p`` packages from here
    out, err, status = mypy.api.run([
        "--strict", "--namespace-packages", "--explicit-package-bases", "--no-incremental",
        "--cache-dir", str(tmp_path / "cache"),
        "-p", "memlane.events", "-p", "memlane.projections", "-p", "memlane.daemon.domain"])
    assert status == 0, out + err
