"""The CLI as a client: `embed` and `search` through the daemon or in-process, `--recall`,
and a request path that stays free of the heavy libraries."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

from tests.e2e.daemon import DaemonProcess
from tests.e2e.test_cli import run, run_json

FALLBACK_NOTE = "loading the model in this process"


def vectors(stdout: str) -> np.ndarray:
    return np.array([json.loads(line)["embedding"] for line in stdout.splitlines()])


def test_embed_through_the_daemon_equals_the_in_process_fallback(daemon: DaemonProcess) -> None:
    warm = run(daemon, "embed", "clear the build cache", "use uv for installs")
    assert FALLBACK_NOTE not in warm.stderr
    first = json.loads(warm.stdout.splitlines()[0])
    assert first["model"] == "minilm-l6-int8" and first["dims"] == 384
    daemon.stop()
    cold = run(daemon, "embed", "clear the build cache", "use uv for installs")
    assert FALLBACK_NOTE in cold.stderr
    assert ((vectors(warm.stdout) * vectors(cold.stdout)).sum(axis=1) > 0.9999).all()


def test_no_fallback_fails_when_no_daemon_answers(daemon: DaemonProcess) -> None:
    daemon.stop()
    result = run(daemon, "embed", "x", "--no-fallback", check=False)
    assert result.returncode == 2 and "memlane up" in result.stderr and result.stdout == ""
    result = run(daemon, "search", "x", "--no-fallback", check=False)
    assert result.returncode == 2


def test_search_falls_back_in_process_with_the_same_hits(daemon: DaemonProcess) -> None:
    for text in ("The build cache must be cleared after upgrading the toolchain",
                 "Deploys to staging run on every merge", "Pin numpy below 3 for the old CI"):
        run(daemon, "store", text, "--project", "p")
    daemon.wait_idle()
    # The fallback does not apply the relevance floor: compare with every hit of the daemon.
    warm = run(daemon, "search", "clear cache after toolchain upgrade", "-p", "p", "--json",
               "--all-hits")
    daemon.stop()
    cold = run(daemon, "search", "clear cache after toolchain upgrade", "-p", "p", "--json")
    assert FALLBACK_NOTE in cold.stderr
    assert [json.loads(h)["id"] for h in warm.stdout.splitlines()] == \
           [json.loads(h)["id"] for h in cold.stdout.splitlines()]
    assert "build cache" in json.loads(cold.stdout.splitlines()[0])["text"]


def test_search_recall_records_recalled_events(daemon: DaemonProcess) -> None:
    run(daemon, "store", "The build cache must be cleared after upgrading", "-p", "p")
    run(daemon, "store", "Deploys to staging run on every merge", "-p", "p")
    daemon.wait_idle()
    hits = [json.loads(h) for h in run(daemon, "search", "build cache", "-p", "p", "--json",
                                       "--recall").stdout.splitlines()]
    assert set(hits[0]) == {"id", "text", "score", "project", "kind", "state"}
    recalled = [json.loads(r) for r in run(daemon, "log", "tail", "-n", "5").stdout.splitlines()
                if json.loads(r)["type"] == "recalled"]
    # Only hits above the model's similarity floor count as recalls.
    assert [(r["memory"], r["rank"]) for r in recalled] == [(hits[0]["id"], 1)]
    assert "build cache" in hits[0]["text"] and len(hits) == 1  # the other is below the floor
    every = [json.loads(h) for h in run(daemon, "search", "build cache", "-p", "p", "--json",
                                        "--all-hits").stdout.splitlines()]
    assert [h.get("below_floor", False) for h in every] == [False, True]
    before = run_json(daemon, "status")["last_seq"]
    run(daemon, "search", "build cache", "-p", "p", "--json")
    assert run_json(daemon, "status")["last_seq"] == before  # no --recall, no event


HEAVY = ("onnxruntime", "numpy", "usearch", "anyio")


def test_cli_request_path_imports_no_heavy_library(daemon: DaemonProcess) -> None:
    """Sending a request must not pay for the model runtime, numpy, usearch or anyio."""
    code = ("import sys\n"
            "from memlane.cli.app import app\n"
            "try:\n"
            "    app(['status', '--json'])\n"
            "except SystemExit:\n"
            "    pass\n"
            f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", code], env=daemon.env, capture_output=True,
                            text=True, timeout=60, check=True)
    lines = result.stdout.strip().splitlines()
    assert json.loads(lines[0])["model"] == "minilm-l6-int8"  # the request really went through
    assert lines[-1] == "[]", f"imported: {lines[-1]}"



def test_a_quick_command_over_the_socket_imports_only_what_it_uses(daemon: DaemonProcess) -> None:
    """`memlane recall` over the socket pays for neither dataclasses nor the TCP proof's
    secrets and hmac, nor the token file's tempfile (each ~10-20 ms of a fresh process)."""
    code = ("import sys\n"
            "from memlane.cli import quick\n"
            "quick.recall('what cache', None, 3)\n"
            "print(sorted(m for m in ('dataclasses', 'secrets', 'hmac', 'tempfile', 'typer')"
            " if m in sys.modules))\n")
    result = subprocess.run([sys.executable, "-P", "-c", code], env=daemon.env,
                            capture_output=True, text=True, timeout=60, check=True)
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "no memories match"  # the request went through the socket
    assert lines[-1] == "[]", f"imported: {lines[-1]}"
