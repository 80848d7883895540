"""A start imports what it runs: libraries used only by some requests or features are imported
where they are used (issue 16: a daemon with 100k memories is ready within a second)."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

# Never used before a request or a feature asks for them: the viewer's templates, the LLM
# client, sync's signatures and its NATS client, the MCP server, the CLI's terminal toolkit.
NOT_AT_START = ("jinja2", "google.genai", "nacl", "nats", "mcp", "typer")


def modules_after(code: str, *, stderr: int = subprocess.PIPE) -> set[str]:
    """The modules a fresh interpreter holds after running ``code`` (stderr a pipe unless
    given: not a terminal, as under a supervisor)."""
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", script], stdout=subprocess.PIPE,
                            stderr=stderr, text=True, timeout=120, check=True)
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


def test_structlog_comes_without_rich_off_a_terminal() -> None:
    """The daemon's entry imports structlog without rich (its console tracebacks), which
    stays importable afterwards; on a terminal, or with rich already loaded, nothing changes."""
    modules = modules_after("import memlane.daemon.__main__")
    assert "structlog" in modules
    assert not loaded(modules, "rich") and not loaded(modules, "pygments")
    assert loaded(modules_after("import memlane.daemon.__main__, rich.console"), "rich")
    assert loaded(modules_after("import rich, memlane.daemon.__main__, structlog.dev\n"
                                "assert structlog.dev.rich is not None"), "rich.traceback")
    primary, terminal = pty.openpty()
    try:
        assert loaded(modules_after("import memlane.daemon.__main__", stderr=terminal),
                      "rich.traceback")
    finally:
        os.close(primary)
        os.close(terminal)


def test_the_check_sees_a_library_that_is_imported() -> None:
    """The check can fail: a module that imports one of them is caught."""
    modules = modules_after("import memlane.daemon.app, jinja2, nacl.signing")
    assert loaded(modules, "jinja2") and loaded(modules, "nacl")


def test_memlane_daemon_run_goes_straight_to_the_daemon() -> None:
    """``memlane daemon run`` (what the service units start) runs the daemon's entry without
    loading the CLI's toolkit."""
    code = ("import sys\n"
            "import memlane.daemon.__main__ as entry\n"
            "entry.main = lambda: 0\n"
            "sys.argv = ['memlane', 'daemon', 'run']\n"
            "from memlane.cli.main import main\n"
            "try:\n"
            "    main()\n"
            "except SystemExit as stop:\n"
            "    assert stop.code == 0, stop.code\n")
    modules = modules_after(code)
    assert [p for p in ("typer", "click", "rich", "memlane.cli.app") if loaded(modules, p)] == []


def test_memlane_daemon_run_exits_as_the_daemon_does(tmp_path: Path) -> None:
    """Its exit status and message are the daemon's own (here: a bad config, 6)."""
    (tmp_path / "config.toml").write_text("port = 'not a number'\n")
    memlane = Path(sys.executable).with_name("memlane")
    result = subprocess.run([str(memlane), "daemon", "run"], capture_output=True, text=True,
                            env={**os.environ, "MEMLANE_HOME": str(tmp_path)}, timeout=60)
    assert result.returncode == 6 and "memlane:" in result.stderr, result.stderr
