"""Devices for sync tests: a repository cloned once per device, a state directory with sync
enabled through the real CLI, a real daemon, and what each log says was shared."""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memlane.events.log import read_log
from memlane.events.model import ForgetRequested, Linked, Pinned, Stored

from tests.e2e.daemon import DaemonProcess
from tests.tools import MEMLANE

TEAM = "core"
# The bench corpus's vocabulary: 7 of its ~580 words make notes far apart for the model
# (no memory gets near the per-memory link cap, so links do not depend on arrival order).
WORDS = sorted({w.lower() for w in re.findall(r"[A-Za-z]{4,}", (
    Path(__file__).parents[2] / "bench" / "corpora" / "vocab.py").read_text())})


def make_repo(root: Path) -> Path:
    """A git repository with one commit (its root commit is the project's portable id)."""
    repo = root / "origin-repo"
    repo.mkdir()
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    for args in (["init", "-q"], ["commit", "-q", "--allow-empty", "-m", "root"]):
        subprocess.run(["git", "-C", str(repo), *args], check=True, env=env)
    return repo


def clone(repo: Path, where: Path) -> Path:
    subprocess.run(["git", "clone", "-q", str(repo), str(where)], check=True)
    return where


@dataclass
class Device:
    """One machine: its checkout of the project and its daemon."""

    daemon: DaemonProcess
    project: str

    @property
    def home(self) -> Path:
        return self.daemon.home

    def store_many(self, texts: list[str]) -> list[int]:
        answer = self.daemon.client.request("POST", "/v1/import", {"memories": [
            {"text": t, "project": self.project, "kind": "note"} for t in texts]})
        return list(answer["ids"])

    def sync_status(self) -> dict[str, Any]:
        return self.daemon.client.request("GET", "/v1/sync")  # type: ignore[no-any-return]

    @property
    def device_id(self) -> str:
        return str(json.loads((self.home / "identity.json").read_text())["device"])


def new_device(root: Path, name: str, repo: Path, url: str, *, replicas: int = 1,
               **env: str) -> Device:
    """A state directory with sync enabled for a fresh clone of ``repo`` (daemon not started)."""
    home = root / name
    home.mkdir()
    checkout = clone(repo, root / f"{name}-repo")
    enable = subprocess.run(
        [MEMLANE, "sync", "enable", "--url", url, "--team", TEAM, "--project", str(checkout),
         "--replicas", str(replicas), "--json"], env={**os.environ, "MEMLANE_HOME": str(home)},
        capture_output=True, text=True, check=False)
    assert enable.returncode == 0, enable.stderr
    return Device(DaemonProcess(home, MEMLANE_JOBS_INTERVAL_S="3600", **env), str(checkout))


def texts(side: str, count: int, seed: int = 1) -> list[str]:
    """``count`` distinct notes, unlike one another (so no memory hits the link cap)."""
    rng = random.Random(f"{side}-{seed}")
    return [f"{side} note {i}: " + " ".join(rng.sample(WORDS, 7)) for i in range(count)]


@dataclass(frozen=True)
class Shared:
    """What one device's log says about the shared facts."""

    events: dict[tuple[str, int], str]  # global id -> event type
    texts: dict[tuple[str, int], str]  # memory global id -> text ("" once forgotten)
    pinned: dict[tuple[str, int], bool]
    links: set[frozenset[tuple[str, int]]]
    duplicates: list[tuple[str, int]]


def shared_view(device: Device) -> Shared:
    """The shared facts in ``device``'s log, every reference by global id."""
    me = device.device_id
    records = list(read_log(device.home / "log"))
    gid = {r.seq: (r.origin, r.origin_seq) if r.origin else (me, r.seq) for r in records}
    kinds = (Stored, Pinned, ForgetRequested)
    counted = Counter(gid[r.seq] for r in records)
    events = {gid[r.seq]: r.event.__class__.__name__ for r in records
              if isinstance(r.event, kinds)}
    texts = {gid[r.seq]: r.event.text for r in records if isinstance(r.event, Stored)}
    pinned = {gid[r.event.memory]: r.event.pinned for r in records
              if isinstance(r.event, Pinned)}
    links = {frozenset((gid[r.event.a], gid[r.event.b])) for r in records
             if isinstance(r.event, Linked)}
    return Shared(events, texts, pinned, links, [g for g, n in counted.items() if n > 1])


def wait_for(check: Callable[[], bool], *, timeout: float, what: str,
             explain: Callable[[], object] = lambda: "") -> None:
    """Poll ``check`` until it holds (a generous deadline, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise TimeoutError(f"{what} within {timeout}s: {explain()}")


def live_memories(device: Device) -> int:
    status = device.daemon.client.request("GET", "/v1/status")
    return sum(n for state, n in status["memories"].items() if state in ("active", "proven"))


def live_state(device: Device) -> set[tuple[str, str, str]]:
    """(text, kind, state) of every live or expired memory of the device's project."""
    rows = device.daemon.client.request(
        "GET", f"/v1/export?project={device.project}&include_expired=1")["memories"]
    return {(m["text"], m["kind"], m["state"]) for m in rows}
