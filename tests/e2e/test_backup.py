"""Backup while eight clients store, restore into a fresh directory: every acknowledged store up
to the backup's position is there, and a memory forgotten after the backup is not."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from memlane.daemon.adapters.paths import resolve_paths
from tests.e2e.daemon import DaemonProcess
from tests.e2e.test_cli import run, run_json

CLIENTS = 8
SECRET = "the vault combination for the staging bucket is 7391-alpha-quartz"


def store_until(daemon: DaemonProcess, client: int, stop: threading.Event,
                acked: list[tuple[int, str]]) -> None:
    api = daemon.client
    n = 0
    while not stop.is_set():
        text = f"client {client} note {n}: the build cache for service {client}-{n} is warm"
        answer = api.request("POST", "/v1/memories", {"text": text, "project": "load"})
        acked.append((answer["id"], text))
        n += 1


def holds(root: Path, needle: bytes) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


def test_a_backup_under_load_restores_every_acknowledged_store_and_no_forgotten_text(
        tmp_path: Path) -> None:
    """The restore holds every store acknowledged up to the position; forgotten-after text
    is in the backup but nowhere in the restored directory."""
    (tmp_path / "home").mkdir()
    daemon = DaemonProcess(tmp_path / "home").start(wait_model=False)
    secret = daemon.client.request("POST", "/v1/memories", {"text": SECRET, "project": "load"})
    acked: list[tuple[int, str]] = []
    stop = threading.Event()
    clients = [threading.Thread(target=store_until, args=(daemon, c, stop, acked))
               for c in range(CLIENTS)]
    try:
        for thread in clients:
            thread.start()
        while len(acked) < 200:
            stop.wait(0.05)
        backup = run_json(daemon, "backup", str(tmp_path / "backup"), "--projections")
        while len(acked) < backup["position"] // 2 + 400:
            stop.wait(0.05)
        stop.set()
        for thread in clients:
            thread.join()
        daemon.client.request("POST", f"/v1/memories/{secret['id']}/forget", {})
        ledger = (tmp_path / "home" / "forget-ledger.jsonl").read_text()
        assert str(secret["id"]) in ledger and "vault" not in ledger
    finally:
        stop.set()
        daemon.stop()
    assert holds(tmp_path / "backup", SECRET.encode()), "the backup predates the forget"
    copied = sum(p.stat().st_size for p in (tmp_path / "backup" / "log").glob("*.seg"))
    assert backup["log_bytes"] == copied > 0
    fresh = tmp_path / "fresh"
    restored = run_json(daemon, "restore", str(tmp_path / "backup"), "--into", str(fresh))
    assert restored["forgotten_again"] == [secret["id"]]
    position = backup["position"]
    rows = dict(sqlite3.connect(resolve_paths({"MEMLANE_HOME": str(fresh)}).sqlite).execute(
        "SELECT id, text FROM memories").fetchall())
    before = [(i, t) for i, t in acked if i <= position]
    after = [(i, t) for i, t in acked if i > position]
    assert len(before) >= 200 and after, (len(before), len(after))
    assert [(i, t) for i, t in before if rows.get(i) != t] == []
    assert not any(i in rows for i, _ in after)
    assert holds(fresh, SECRET.encode()) == []
    assert holds(fresh, SECRET[:40].encode()) == []


def test_a_backup_with_the_daemon_stopped_restores_the_same_memories(tmp_path: Path) -> None:
    """With no daemon running, `memlane backup` copies the log (and projections) itself,
    holding the writer lock, and a restore of it holds every memory."""
    (tmp_path / "home").mkdir()
    daemon = DaemonProcess(tmp_path / "home").start(wait_model=False)
    ids = [daemon.client.request("POST", "/v1/memories", {
        "text": f"offline backup note {n}: the nightly job rotates log {n}", "project": "p"})["id"]
        for n in range(20)]
    daemon.stop()
    backup = run_json(daemon, "backup", str(tmp_path / "backup"), "--projections")
    assert backup["position"] >= max(ids) and backup["projections"] is True
    assert (tmp_path / "backup" / "projections").is_dir()
    again = run(daemon, "backup", str(tmp_path / "backup"), check=False)
    assert again.returncode == 1 and "not empty" in again.stderr, again.stderr
    fresh = tmp_path / "fresh"
    run_json(daemon, "restore", str(tmp_path / "backup"), "--into", str(fresh))
    rows = dict(sqlite3.connect(resolve_paths({"MEMLANE_HOME": str(fresh)}).sqlite).execute(
        "SELECT id, text FROM memories").fetchall())
    assert sorted(rows) == ids
