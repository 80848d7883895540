"""A start imports what it runs: libraries used only by some requests or features are imported
where they are used (issue 16: a daemon with 100k memories is ready within a second)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# Never used before a request or a feature asks for them: the viewer's templates, the LLM
# client, sync's signatures and its NATS client, the MCP server, the CLI's terminal toolkit.
NOT_AT_START = ("jinja2", "google.genai", "nacl", "nats", "mcp", "typer")


def modules_after(code: str) -> set[str]:
    """The modules a fresh interpreter holds after running ``code`` (stderr is not a terminal,
    as under a supervisor)."""
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=120, check=True)
    return set(json.loads(result.stdout.splitlines()[-1]))


def loaded(modules: set[str], package: str) -> bool:
    return package in modules or any(m.startswith(package + ".") for m in modules)


@pytest.mark.parametrize("entry", ["memlane.daemon.__main__", "memlane.daemon.app"])
def test_the_daemon_entry_imports_no_library_a_start_does_not_use(entry: str) -> None:
    """Importing the daemon's entry or composition root loads none of the libraries that only
    some requests or features use."""
    modules = modules_after(f"import {entry}")
    assert entry in modules
    assert [p for p in NOT_AT_START if loaded(modules, p)] == []


def test_the_check_sees_a_library_that_is_imported() -> None:
    """The check can fail: a module that imports one of them is caught."""
    modules = modules_after("import memlane.daemon.app, jinja2, nacl.signing")
    assert loaded(modules, "jinja2") and loaded(modules, "nacl")
