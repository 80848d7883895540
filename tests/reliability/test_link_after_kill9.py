"""kill -9 right after a batch's vectors are durable and before its links: the next start
links that batch. Hits the window by polling the log, over a bounded number of tries."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from memlane.events.log import read_log
from memlane.events.model import Embedded, Linked
from tests.e2e.daemon import DaemonProcess

pytestmark = pytest.mark.crash

TRIES = 12
MEMORIES = 64


def unlinked_tail(log_dir: Path) -> list[int]:
    """Memories of the last ``Embedded`` batch when no ``Linked`` follows it (else [])."""
    batch: list[int] = []
    for record in read_log(log_dir, 1):
        if isinstance(record.event, Embedded):
            batch.append(record.event.memory)
        elif isinstance(record.event, Linked):
            batch = []
    return batch


def links_among(log_dir: Path, memories: list[int]) -> set[tuple[int, int]]:
    """Links between two of ``memories``: only their own link pass makes those (a later
    memory's pass links it to older ones, never two older ones to each other)."""
    among = set(memories)
    return {(r.event.a, r.event.b) for r in read_log(log_dir, 1)
            if isinstance(r.event, Linked) and {r.event.a, r.event.b} <= among}


def kill_after_vectors(daemon: DaemonProcess) -> list[int]:
    """Import near-duplicate memories, kill -9 as soon as a vector is durable; the memories
    left embedded without their link pass (empty if the kill missed the window)."""
    daemon.client.request("POST", "/v1/import", {"memories": [
        {"text": f"the build cache lives in /var/cache/build, shard {n}", "project": "p"}
        for n in range(MEMORIES)]})
    while daemon.client.request("GET", "/v1/status")["vectors"] == 0:
        pass
    daemon.kill9()
    return unlinked_tail(daemon.paths.log_dir)


def test_a_link_pass_cut_by_kill9_is_finished_by_the_next_start() -> None:
    """Within a bounded number of tries a kill lands between vectors and links; after the
    restart that batch is linked among itself (near-duplicates: well above the threshold)."""
    for _ in range(TRIES):
        root = Path(tempfile.mkdtemp(prefix="ml-", dir="/tmp"))
        try:
            (root / "home").mkdir()
            daemon = DaemonProcess(root / "home").start()
            cut = kill_after_vectors(daemon)
            if not cut:
                continue
            daemon.start()
            daemon.wait_idle()
            assert daemon.stop() == 0
            assert len(cut) > 1 and links_among(daemon.paths.log_dir, cut)
            return
        finally:
            shutil.rmtree(root, ignore_errors=True)
    pytest.fail(f"no kill landed between vectors and links in {TRIES} tries")
