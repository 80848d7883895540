"""kill -9 at random moments under concurrent load, over and over: nothing acknowledged is ever
lost, the log stays whole, and the projections the daemon kept equal a fresh rebuild."""

from __future__ import annotations

import json
import random
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from memlane.cli.client import DaemonError, DaemonUnavailable
from tests.e2e.daemon import DaemonProcess
from tests.e2e.test_cli import MEMLANE
from tests.reliability.straced import NO_MODEL, assert_acked_present, assert_contiguous

pytestmark = pytest.mark.crash

CYCLES = 30
CLIENTS = 7
SEED = 20261124


@dataclass
class Ledger:
    """What the clients were told, shared by their threads."""

    acked: list[dict[str, Any]] = field(default_factory=list)
    wrong_repeats: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def client_stores(daemon: DaemonProcess, ledger: Ledger, name: str) -> None:
    """Store new texts until the daemon dies; every fourth request repeats one of this
    client's acknowledged texts, which must name the same memory."""
    client, mine = daemon.client, []
    for n in range(100_000):
        repeat = mine[n % len(mine)] if mine and n % 4 == 3 else None
        text = repeat["text"] if repeat else f"{name} memory {n} about the build cache"
        try:
            answer = client.request("POST", "/v1/memories", {"text": text, "project": "p"})
        except (DaemonUnavailable, DaemonError):
            return
        with ledger.lock:
            if repeat is None:
                mine.append({"text": text, **answer})
                ledger.acked.append(mine[-1])
            elif not answer["duplicate"] or answer["id"] != repeat["id"]:
                ledger.wrong_repeats.append(f"{text!r} answered {answer}")


def storm(daemon: DaemonProcess, ledger: Ledger, cycle: int, delay: float) -> None:
    """Clients store concurrently; kill -9 the daemon ``delay`` seconds in."""
    threads = [threading.Thread(target=client_stores, args=(daemon, ledger, f"c{cycle}.{i}"))
               for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    threading.Event().wait(delay)  # the chaos schedule, not a wait for a condition
    daemon.kill9()
    for thread in threads:
        thread.join()


def memlane(daemon: DaemonProcess, *args: str) -> dict[str, Any]:
    result = subprocess.run([MEMLANE, *args, "--json"], env=daemon.env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def counts(status: dict[str, Any]) -> dict[str, Any]:
    return {key: status[key] for key in ("last_seq", "applied_seq", "memories", "projects")}


def test_kill9_at_random_moments_loses_nothing(short_tmp: Path) -> None:
    """Thirty kill -9s under load lose no ack and leave a log and projections that agree."""
    rng = random.Random(SEED)
    (short_tmp / "home").mkdir()
    daemon, ledger = DaemonProcess(short_tmp / "home", **NO_MODEL), Ledger()
    try:
        for cycle in range(CYCLES):
            daemon.start(wait_model=False)
            storm(daemon, ledger, cycle, delay=rng.uniform(0.02, 0.3))
        daemon.start(wait_model=False)
        assert ledger.acked and not ledger.wrong_repeats
        assert len({a["id"] for a in ledger.acked}) == len(ledger.acked)
        assert_acked_present(daemon, ledger.acked)
        seqs = assert_contiguous(daemon)
        verdict = memlane(daemon, "log", "verify")
        assert verdict == {
            "ok": True, "segments": 1, "records": len(seqs), "last_seq": len(seqs),
            "unknown_events": 0, "acked_seq": verdict["acked_seq"],
            "sealed": {"checked": 0, "problems": []}}
        assert verdict["acked_seq"] <= len(seqs)
        kept = counts(daemon.client.request("GET", "/v1/status"))
        assert daemon.stop() == 0
        assert memlane(daemon, "rebuild")["replayed"] == len(seqs)
        daemon.start(wait_model=False)
        assert counts(daemon.client.request("GET", "/v1/status")) == kept
    finally:
        if daemon.process is not None and daemon.process.poll() is None:
            daemon.kill9()
