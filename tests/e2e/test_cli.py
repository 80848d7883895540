"""The memlane command against a running daemon: JSON shapes, dedup, import/export, log tools."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from memlane.events.segments import list_segments

from tests.e2e.daemon import DaemonProcess
from tests.tools import MEMLANE


def run(daemon: DaemonProcess, *args: str, check: bool = True, stdin: str | None = None,
        cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([MEMLANE, *args], env=daemon.env, capture_output=True, text=True,
                            input=stdin, timeout=120, cwd=cwd)
    if check and result.returncode != 0:
        raise AssertionError(f"memlane {' '.join(args)} failed: {result.stderr}")
    return result


def run_json(daemon: DaemonProcess, *args: str) -> Any:
    return json.loads(run(daemon, *args, "--json").stdout)


def test_store_get_status_print_the_documented_json(daemon: DaemonProcess) -> None:
    """store, get and status answer with their documented fields."""
    stored = run_json(daemon, "store", "Use uv for installs", "--project", "p", "--kind", "decision")
    assert set(stored) == {"id", "seq", "duplicate", "kind", "redactions"}
    assert stored["duplicate"] is False and stored["kind"] == "decision"
    memory = run_json(daemon, "get", str(stored["id"]))
    assert {"id", "text", "project", "kind", "state", "created_at"} <= set(memory)
    assert (memory["text"], memory["project"], memory["kind"], memory["state"]) == (
        "Use uv for installs", "p", "decision", "active")
    status = run_json(daemon, "status")
    assert status["last_seq"] >= 1 and status["memories"] == {"active": 1}
    assert status["model"] == "minilm-l6-int8"
    # a memory, not 2,000: FTS5 scores BM25 itself and no copy of its postings is built
    assert status["bm25"] == {"scored_by": "fts5", "documents": 0, "building": False}


def test_same_normalised_text_is_a_duplicate_counted_as_a_repeat(daemon: DaemonProcess) -> None:
    """Storing the same text (case and spacing aside) in a project returns the existing memory
    and records only the repeat."""
    first = run_json(daemon, "store", "Run ruff before commit", "--project", "p")
    daemon.wait_idle()
    last_seq = run_json(daemon, "status")["last_seq"]
    again = run_json(daemon, "store", "  run RUFF   before commit ", "--project", "p")
    assert (again["id"], again["seq"], again["duplicate"]) == (first["id"], first["seq"], True)
    assert run_json(daemon, "status")["last_seq"] == last_seq + 1
    tail = json.loads(run(daemon, "log", "tail", "-n", "1").stdout)
    assert (tail["type"], tail["memory"]) == ("reinforced", first["id"])
    assert run_json(daemon, "status")["memories"] == {"active": 1}
    other = run_json(daemon, "store", "Run ruff before commit", "--project", "q")
    assert other["duplicate"] is False


def test_output_is_json_when_piped(daemon: DaemonProcess) -> None:
    """Without --json, piped output is still JSON."""
    assert json.loads(run(daemon, "store", "piped", "--project", "p").stdout)["id"] >= 1


def test_project_defaults_to_the_git_root(daemon: DaemonProcess, tmp_path: Path) -> None:
    """Inside a repository (or a subdirectory of it) the project is the repository's root."""
    repo = tmp_path / "repo"
    (repo / "src" / "deep").mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    stored = json.loads(run(daemon, "store", "from a subdir", cwd=repo / "src" / "deep").stdout)
    assert run_json(daemon, "get", str(stored["id"]))["project"] == str(repo)


def test_import_then_export_round_trips(daemon: DaemonProcess, tmp_path: Path) -> None:
    """Imported JSON lines come back out of export; repeats count as duplicates."""
    rows = [{"text": f"imported memory {i}", "project": "imp", "kind": "note", "tags": ["t"]}
            for i in range(2500)]
    lines = "\n".join(json.dumps(r) for r in rows + rows[:10]) + "\n"
    answer = json.loads(run(daemon, "import", "-", stdin=lines).stdout)
    assert answer == {"stored": 2500, "duplicates": 10}
    exported = [json.loads(line) for line in run(daemon, "export", "--project", "imp").stdout.split("\n")
                if line]
    assert [{k: e[k] for k in ("text", "project", "kind", "tags")} for e in exported] == rows


def test_import_rejects_a_bad_line_and_stores_nothing(daemon: DaemonProcess) -> None:
    """A malformed line is reported with its number before anything is sent."""
    daemon.wait_idle()  # the start's ModelChanged is on record
    before = run_json(daemon, "status")["last_seq"]
    result = run(daemon, "import", "-", stdin='{"text": "ok"}\nnot json\n', check=False)
    assert result.returncode == 1 and "line 2" in result.stderr
    assert run_json(daemon, "status")["last_seq"] == before


def test_log_verify_and_tail(daemon: DaemonProcess) -> None:
    """verify reports every record; tail shows the newest ones."""
    for i in range(3):
        run(daemon, "store", f"tail me {i}", "--project", "p")
    verdict = run_json(daemon, "log", "verify")
    assert verdict["ok"] and verdict["records"] >= 3
    tail = [json.loads(line) for line in run(daemon, "log", "tail", "-n", "50").stdout.splitlines()]
    assert [t["text"] for t in tail if t["type"] == "stored"] == [f"tail me {i}" for i in range(3)]


@pytest.mark.parametrize("rebuild_while_running", [True, False])
def test_rebuild_command(daemon: DaemonProcess, rebuild_while_running: bool) -> None:
    """`memlane rebuild` replays every event, through the daemon or offline."""
    run(daemon, "store", "rebuild me", "--project", "p")
    last_seq = daemon.wait_idle()["last_seq"]  # the memory's Embedded is appended after the store
    if not rebuild_while_running:
        daemon.stop()
    assert run_json(daemon, "rebuild")["replayed"] == last_seq
    if rebuild_while_running:  # what the bar polls, once the rebuild is over
        assert daemon.client.request("GET", "/v1/rebuild") == {"running": False,
                                                                "progress": None}


def test_corrupt_log_refuses_to_start_and_is_left_untouched(daemon: DaemonProcess) -> None:
    """A bit flip below the acknowledged watermark: exit code 7 (the unit does not restart
    it), a clear message, identical bytes."""
    for i in range(20):
        run(daemon, "store", f"memory {i} to be damaged later", "--project", "p")
    daemon.stop()
    segment = list_segments(daemon.paths.log_dir)[0]
    data = bytearray(segment.read_bytes())
    data[len(data) // 3] ^= 0x01
    segment.write_bytes(bytes(data))
    with pytest.raises(RuntimeError, match="exited 7"):
        daemon.start()
    assert "is damaged at byte" in daemon.stderr()
    assert "Nothing was cut or changed" in daemon.stderr()
    assert segment.read_bytes() == bytes(data)
    verdict = run(daemon, "log", "verify", "--json", check=False)
    assert verdict.returncode == 3 and not json.loads(verdict.stdout)["ok"]
