"""The daemon under a service manager: sd_notify READY after recovery, watchdog pings, and a
graceful SIGTERM under load."""

from __future__ import annotations

import json
import signal
import socket
import threading
from pathlib import Path
from typing import Any

from memlane.daemon.domain.admission import AdmissionIndex
from memlane.daemon.domain.storing import StoreRequest, decide_store
from memlane.events.log import EventLog, read_log
from tests.e2e.daemon import DaemonProcess
from tests.e2e.test_durability import store_many

LARGE_LOG = 30_000


def fill_log(log_dir: Path, count: int) -> None:
    log = EventLog.open(log_dir)
    view = AdmissionIndex()
    for start in range(1, count + 1, 1000):
        batch = []
        for i in range(start, min(start + 1000, count + 1)):
            events, _ = decide_store(view, StoreRequest(text=f"note {i} about the cache",
                                                        project="p", kind="note"), i)
            batch.extend(events)
        log.append(batch)
    log.close()


def receive(sock: socket.socket, timeout: float) -> list[str]:
    sock.settimeout(timeout)
    try:
        return sock.recv(4096).decode().splitlines()
    except TimeoutError:
        return []


def log_lines(daemon: DaemonProcess, event: str) -> list[dict[str, Any]]:
    lines = (daemon.home / "stderr.log").read_text().splitlines()
    return [row for row in map(_json_or_none, lines) if row and row.get("event") == event]


def _json_or_none(line: str) -> dict[str, Any] | None:
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def test_ready_comes_after_recovery_and_the_watchdog_is_fed(short_tmp: Path) -> None:
    home = short_tmp / "home"
    fill_log(home / "log", LARGE_LOG)
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as manager:
        manager.bind(str(short_tmp / "notify"))
        daemon = DaemonProcess(home, NOTIFY_SOCKET=str(short_tmp / "notify"),
                               WATCHDOG_USEC="400000")
        daemon.start(wait_model=False)
        try:
            first = receive(manager, 60)
            assert "READY=1" in first and any(m.startswith("STATUS=") for m in first)
            status = daemon.client.request("GET", "/v1/status")
            assert status["last_seq"] >= LARGE_LOG
            assert sum(status["memories"].values()) == LARGE_LOG  # caught up before READY
            assert log_lines(daemon, "recovered")[0]["replayed"] >= LARGE_LOG
            pings = [m for _ in range(3) for m in receive(manager, 5)]
            assert pings.count("WATCHDOG=1") >= 2
        finally:
            assert daemon.stop() == 0


def test_sigterm_under_load_acks_only_durable_stores_and_exits_zero(daemon: DaemonProcess) -> None:
    acked: list[dict[str, Any]] = []
    lock = threading.Lock()
    texts = [[f"client {c} memory {i}" for i in range(5000)] for c in range(8)]
    threads = [threading.Thread(target=store_many, args=(daemon.client, share, acked, lock))
               for share in texts]
    for thread in threads:
        thread.start()
    while len(acked) < 300:
        threading.Event().wait(0.005)
    assert daemon.process is not None
    daemon.process.send_signal(signal.SIGTERM)
    assert daemon.process.wait(timeout=30) == 0
    for thread in threads:
        thread.join()
    logged = {r.seq for r in read_log(daemon.paths.log_dir, tolerate_tail=False)}
    assert {a["seq"] for a in acked} <= logged
    assert log_lines(daemon, "drained")[0]["finished"] is True
    daemon.start()
    assert log_lines(daemon, "recovered")[-1]["replayed"] == 0  # no scan after a clean stop
    for answer in acked[:: max(1, len(acked) // 50)]:
        assert daemon.client.request("GET", f"/v1/memories/{answer['id']}")["text"] == answer["text"]
