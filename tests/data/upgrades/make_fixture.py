"""Writes one upgrade fixture: run ONCE with an OLD release's venv, never with the current code.

    <old venv>/bin/python tests/data/upgrades/make_fixture.py tests/data/upgrades/<date>-<commit>

It starts that release's daemon on a fresh state directory, fills it deterministically (stores
over two projects and ``global``, a duplicate, an idempotent retry, a redacted secret, a config
value, clustering, offline consolidation, a recall, a forget, an age dry run), records the
daemon's answers to a fixed set of read requests into ``expected.json``, stops it with SIGTERM
and copies the state (log, projections, config, token; no socket, pid file or runtime dir) into
``<folder>/home``. A fixture, once committed, is never regenerated: a new release adds a new
folder. The script depends only on what that old release installs (``memlane.daemon.paths``,
``memlane.cli.client``), so it refuses to run with the current layout.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

try:  # the layout before the daemon/ restructuring (f517fd1 and older)
    from memlane.cli.client import Client, DaemonError, DaemonUnavailable
    from memlane.daemon.paths import resolve_paths
except ImportError:  # pragma: no cover
    sys.exit("run this with an OLD release's venv (memlane.daemon.paths must exist)")

ALPHA = "/nonexistent/upgrade/alpha"
BETA = "/nonexistent/upgrade/beta"
GLOBAL = "global"
TIMEOUT = 120.0

# (project, kind or None, tags, text). Paraphrase groups make clusters for consolidation.
MEMORIES: list[tuple[str, str | None, list[str], str]] = [
    (ALPHA, "decision", ["build"], ("We decided to use uv instead of pip for every install in "
            "alpha.")),
    (ALPHA, "note", ["build"], "Installs in alpha go through uv, never plain pip."),
    (ALPHA, "insight", ["build"], "uv resolves alpha's dependencies much faster than pip does."),
    (ALPHA, "user-note", ["build"], "Always run installs for alpha with uv rather than pip."),
    (ALPHA, "note", ["ci"], "The alpha CI pipeline runs the unit tests on every push to main."),
    (ALPHA, "note", ["ci"], "Alpha's CI runs unit tests for each push to the main branch."),
    (ALPHA, "insight", ["ci", "flaky"], ("The alpha integration test for the cache is flaky under "
            "load.")),
    (ALPHA, "decision", ["db"], "Alpha stores its state in SQLite with WAL mode enabled."),
    (ALPHA, "note", ["db"], "SQLite in alpha must run in WAL journal mode."),
    (ALPHA, "insight", ["db"], ("WAL mode fixed the alpha database lock errors under concurrent "
            "reads.")),
    (ALPHA, "note", ["style"], "Alpha code uses ruff with a line length of 100."),
    (ALPHA, "user-note", ["style"], "Keep alpha docstrings to one line in the present tense."),
    (ALPHA, "note", ["deploy"], "Alpha deploys to staging on every merge to main."),
    (ALPHA, "decision", ["deploy"], "Production deploys of alpha happen only on Tuesdays."),
    (ALPHA, None, ["til"], "The alpha cache must be cleared after upgrading the toolchain."),
    (BETA, "decision", ["frontend"], ("Beta's frontend is written in TypeScript with strict mode "
           "on.")),
    (BETA, "note", ["frontend"], "Strict TypeScript is required for all beta frontend code."),
    (BETA, "insight", ["frontend"], "Turning on strict mode in beta caught many null errors."),
    (BETA, "note", ["api"], "The beta API returns errors as JSON with a code and a message."),
    (BETA, "note", ["api"], "Beta API errors are JSON objects carrying a code and message."),
    (BETA, "decision", ["api"], "Beta's public API is versioned under the /v2 prefix."),
    (BETA, "user-note", ["ops"], "Beta logs go to journald; read them with journalctl -u beta."),
    (BETA, "note", ["ops"], "Use journalctl -u beta to see the beta service logs."),
    (BETA, "insight", ["perf"], ("Beta's search got three times faster after adding an index on "
           "tags.")),
    (BETA, "note", ["perf"], "An index on the tags column made beta searches much faster."),
    (BETA, "note", ["test"], "Beta end-to-end tests need a running Postgres on port 5433."),
    (BETA, None, ["decided"], "Beta will drop support for Python 3.10 in the next release."),
    (GLOBAL, "user-note", ["editor"], "I prefer tabs rendered as four spaces in every editor."),
    (GLOBAL, "note", ["git"], "Commit messages describe what changed and why, in full sentences."),
    (GLOBAL, "note", ["git"], "Write commit messages as full sentences explaining what and why."),
    (GLOBAL, "insight", ["shell"], ("Quoting every variable in shell scripts avoids word splitting "
             "bugs.")),
    (GLOBAL, "decision", ["tools"], "Use ripgrep instead of grep for searching code."),
    (GLOBAL, "note", ["tools"], "Search code with ripgrep rather than grep."),
    (GLOBAL, "user-note", ["review"], "Review pull requests within one working day."),
    (GLOBAL, "note", ["remember"], "Back up the home directory to the NAS every Friday."),
    (GLOBAL, "insight", ["learned"], ("Timeouts belong on every network call, including local "
             "sockets.")),
]
DUPLICATE = MEMORIES[4]  # stored a second time: a duplicate
IDEMPOTENT = (GLOBAL, "note", ["ops"], "Rotate the shared deploy keys every ninety days.")
IDEMPOTENCY_KEY = "upgrade-fixture-idem-1"
SECRET = (BETA, "note", ["secrets"], "The beta CI token is ghp_" + "A1b2C3d4E5f6G7h8I9j0" * 2
          + " and it lives in the vault.")
FORGET = MEMORIES[14]
CONFIG = ("jobs_interval_s", "86400")  # also keeps the timer's jobs out of the fixture's life

SEARCHES: list[dict[str, Any]] = [
    {"query": "which package installer should I use", "project": ALPHA, "k": 5},
    {"query": "SQLite journal mode", "project": ALPHA, "k": 5},
    {"query": "TypeScript strict mode", "project": BETA, "k": 5},
    {"query": "how do I read the service logs", "k": 8},
    {"query": "commit message style", "project": GLOBAL, "k": 5},
    {"query": "faster searches", "k": 10},
    {"query": "deploy to production", "k": 10},
]
RECALL = {"query": "where are the logs of beta", "project": BETA, "k": 3, "recall": True}
STATUS_FIELDS = ["last_seq", "applied_seq", "memories", "projects", "vectors", "model",
                 "pipeline", "unknown_events"]
STATE_PARTS = ["log", "projections", "config.toml", "token"]


class Daemon:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.paths = resolve_paths({"MEMLANE_HOME": str(home)})
        self.env = {**os.environ, "MEMLANE_HOME": str(home), "MEMLANE_PORT": "0"}
        self.client = Client(self.paths, timeout=TIMEOUT)
        self.process: subprocess.Popen[bytes] | None = None

    def cli(self, *args: str) -> str:
        return subprocess.run([sys.executable, "-c", "from memlane.cli.main import main; main()",
                               *args], env=self.env, check=True, capture_output=True,
                              text=True).stdout

    def start(self) -> None:
        with open(self.home.parent / "stderr.log", "ab") as stderr:
            self.process = subprocess.Popen([sys.executable, "-m", "memlane.daemon"],
                                            env=self.env, stdin=subprocess.DEVNULL,
                                            stdout=subprocess.DEVNULL, stderr=stderr)
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            assert self.process.poll() is None, "the daemon exited"
            try:
                if self.client.request("GET", "/v1/health")["status"] == "ready":
                    return
            except DaemonUnavailable:
                pass
            time.sleep(0.05)
        raise TimeoutError("daemon not ready")

    def idle(self) -> dict[str, Any]:
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            status = self.client.request("GET", "/v1/status")
            live = sum(n for s, n in status["memories"].items() if s in ("active", "proven"))
            if status["embedding_backlog"] == 0 and status["vectors"] >= live:
                return status  # type: ignore[no-any-return]
            time.sleep(0.05)
        raise TimeoutError("embedding did not finish")

    def stop(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        assert self.process.wait(timeout=60) == 0, "the daemon did not stop cleanly"

    def answer(self, method: str, path: str, body: Any = None) -> Any:
        try:
            return self.client.request(method, path, body)
        except DaemonError as exc:
            return {"error": {"status": exc.status, "code": exc.code}}


def store(daemon: Daemon, memory: tuple[str, str | None, list[str], str], **extra: Any) -> Any:
    project, kind, tags, text = memory
    body = {"text": text, "project": project, "tags": tags, "source": "upgrade-fixture", **extra}
    if kind is not None:
        body["kind"] = kind
    return daemon.client.request("POST", "/v1/memories", body)


def fill(daemon: Daemon) -> dict[str, Any]:
    """Exercise the old daemon; returns what the steps answered (kept in expected.json)."""
    steps: dict[str, Any] = {"stores": [store(daemon, memory) for memory in MEMORIES]}
    steps["duplicate"] = store(daemon, DUPLICATE)
    assert steps["duplicate"]["duplicate"], steps["duplicate"]
    first = store(daemon, IDEMPOTENT, idempotency_key=IDEMPOTENCY_KEY)
    again = store(daemon, IDEMPOTENT, idempotency_key=IDEMPOTENCY_KEY)
    assert first["id"] == again["id"], (first, again)
    steps["idempotent"] = [first, again]
    steps["secret"] = store(daemon, SECRET)
    daemon.idle()
    steps["cluster"] = daemon.client.request("POST", "/v1/jobs/cluster", {})
    steps["consolidate"] = daemon.client.request("POST", "/v1/jobs/consolidate", {"offline": True})
    daemon.idle()
    steps["recall"] = daemon.client.request("POST", "/v1/search", RECALL)
    forget_id = next(s["id"] for s, m in zip(steps["stores"], MEMORIES) if m is FORGET)
    steps["forget"] = daemon.client.request("POST", f"/v1/memories/{forget_id}/forget")
    steps["age_dry_run"] = daemon.client.request("POST", "/v1/jobs/age", {"dry_run": True})
    daemon.idle()
    return steps


def reads(daemon: Daemon, steps: dict[str, Any]) -> list[dict[str, Any]]:
    """The fixed read requests, each with the old daemon's answer."""
    last = daemon.client.request("GET", "/v1/status")["last_seq"]
    ids = [i for i in range(1, last + 1)  # the seqs that are memories (stores, merges)
           if "error" not in daemon.answer("GET", f"/v1/memories/{i}")]
    forgotten = next(s["id"] for s, m in zip(steps["stores"], MEMORIES) if m is FORGET)
    requests: list[tuple[str, str, Any]] = [  # every memory, the forgotten one, one past the log
        ("GET", f"/v1/memories/{i}", None) for i in sorted({*ids, forgotten, last + 1})]
    for i in ids[::5] + ids[-3:]:
        requests += [("GET", f"/v1/memories/{i}/links", None),
                     ("GET", f"/v1/memories/{i}/lineage", None),
                     ("GET", f"/v1/memories/{i}/history", None)]
    requests += [("POST", "/v1/search", body) for body in SEARCHES]
    requests += [("GET", "/v1/clusters", None), ("GET", "/v1/clusters?open=1", None),
                 ("GET", "/v1/export", None), ("GET", "/v1/export?include_expired=1", None),
                 ("GET", f"/v1/export?project={ALPHA}", None)]
    return [{"method": m, "path": p, "body": b, "answer": daemon.answer(m, p, b)}
            for m, p, b in requests]


def main() -> None:
    target = Path(sys.argv[1]).absolute()
    if (target / "home").exists() or (target / "expected.json").exists():
        sys.exit(f"{target} already holds a fixture; fixtures are never regenerated")
    root = Path(tempfile.mkdtemp(prefix="ml-up-", dir="/tmp"))
    home = root / "home"
    home.mkdir()
    daemon = Daemon(home)
    try:
        daemon.cli("config", "set", *CONFIG)
        daemon.start()
        steps = fill(daemon)
        answers = reads(daemon, steps)
        again = reads(daemon, steps)
        assert answers == again, "the old daemon's reads are not repeatable"
        full = daemon.client.request("GET", "/v1/status")
        status = {field: full[field] for field in STATUS_FIELDS}
        daemon.stop()
        target.mkdir(parents=True, exist_ok=True)
        for part in STATE_PARTS:
            source = home / part
            if source.is_dir():
                shutil.copytree(source, target / "home" / part,
                                ignore=shutil.ignore_patterns("writer.lock"))  # holds a pid
            else:
                shutil.copy2(source, target / "home" / part)
        expected = {"written_by": os.environ.get("MEMLANE_FIXTURE_COMMIT", "unknown"),
                    "status": status, "steps": steps, "reads": answers}
        (target / "expected.json").write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")
    finally:
        if daemon.process is not None and daemon.process.poll() is None:
            daemon.process.kill()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
