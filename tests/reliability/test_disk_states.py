"""The real daemon on real filesystems in every disk state: a full disk (a small tmpfs filled
with a file), a read-only state directory (a tmpfs remounted read-only), a page-damaged SQLite
projection, a damaged vector sidecar, and a rebuild while clients store. It reaches a stated
state every time: serving after a rebuild, or refusing writes with its reason in status and
doctor; the exit codes it uses are ones the service unit does not restart."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from memlane.cli.client import DaemonError
from memlane.daemon.__main__ import EXIT_STATE_UNWRITABLE, PERMANENT
from tests.e2e.daemon import DaemonProcess
from tests.reliability.test_projection_damage import PAGE
from tests.tools import MEMLANE, missing, require

pytestmark = pytest.mark.crash


class OutsideDaemon(DaemonProcess):
    """A daemon whose stderr goes outside its state directory (which may be read-only)."""

    def __init__(self, home: Path, stderr_path: Path) -> None:
        super().__init__(home)
        self.stderr_path = stderr_path

    def start(self, *, wait_model: bool = True) -> DaemonProcess:
        with open(self.stderr_path, "ab") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "memlane.daemon"], env=self.env,
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr)
        self.wait_ready(wait_model=wait_model)
        return self

    def run_to_exit(self) -> int:
        """Start it and wait for it to exit (it is expected to refuse to start)."""
        with open(self.stderr_path, "ab") as stderr:
            return subprocess.run([sys.executable, "-m", "memlane.daemon"], env=self.env,
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=stderr, timeout=120).returncode

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")[-3000:]


def mount(*args: str) -> None:
    result = subprocess.run([require("mount", "tmpfs for full and read-only disks"), *args],
                            capture_output=True, text=True)
    if result.returncode != 0:
        missing(f"cannot mount here (root and mount(8) are needed): {result.stderr.strip()}")


@pytest.fixture
def state() -> Iterator[tuple[OutsideDaemon, Path]]:
    """A daemon whose state directory is a 16 MB tmpfs, and that mount point."""
    root = Path(tempfile.mkdtemp(prefix="ml-", dir="/tmp"))
    home = root / "home"
    home.mkdir()
    mount("-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs", str(home))
    daemon = OutsideDaemon(home, root / "stderr.log")
    try:
        yield daemon, home
    finally:
        if daemon.process is not None and daemon.process.poll() is None:
            daemon.kill9()
        for point in (home / "run", home):
            subprocess.run(["umount", str(point)], capture_output=True)
        subprocess.run(["rm", "-rf", str(root)])


def fill(home: Path) -> Path:
    """Fill the filesystem to the last byte with one file; returns it."""
    filler = home / "filler"
    with open(filler, "wb", buffering=0) as f:  # unbuffered: closing has nothing left to write
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass
    return filler


def store(daemon: DaemonProcess, text: str) -> dict[str, Any]:
    return daemon.client.request("POST", "/v1/memories", {"text": text, "project": "p"})  # type: ignore[no-any-return]


def doctor(daemon: DaemonProcess) -> dict[str, dict[str, Any]]:
    result = subprocess.run([MEMLANE, "doctor", "--json"], capture_output=True, text=True,
                            env=daemon.env, timeout=120)
    return {row["check"]: row for row in json.loads(result.stdout)["checks"]}


def test_a_full_disk_refuses_writes_keeps_reads_and_recovers(state: tuple[OutsideDaemon, Path]
                                                              ) -> None:
    """On a full disk stores answer 507 disk_full and nothing acknowledged is lost; reads and
    search go on; status and doctor say why; once space returns stores work again."""
    daemon, home = state
    daemon.start()
    acked = [store(daemon, f"memory {n} about the build cache") for n in range(20)]
    daemon.wait_idle()
    filler = fill(home)
    refused = 0
    for n in range(5):
        with pytest.raises(DaemonError) as error:
            store(daemon, f"memory {n} that does not fit " * 200)
        assert (error.value.status, error.value.code) == (507, "disk_full"), error.value.message
        refused += 1
    assert daemon.client.request("GET", f"/v1/memories/{acked[3]['id']}")["id"] == acked[3]["id"]
    hits = daemon.client.request("POST", "/v1/search", {"query": "build cache", "project": "p"})
    assert hits
    status = daemon.client.request("GET", "/v1/status")
    assert status["storage"]["refusing_writes"] == "disk_full"
    found = doctor(daemon)["state directory"]
    assert found["ok"] is False and "refuses writes" in found["detail"]
    filler.unlink()
    again = store(daemon, "a memory after space came back")
    assert not again["duplicate"]
    for answer in acked:
        assert daemon.client.request("GET", f"/v1/memories/{answer['id']}")["state"] == "active"
    assert daemon.client.request("GET", "/v1/status")["storage"]["refusing_writes"] is None
    assert daemon.stop() == 0, daemon.stderr()


def prepared(state: tuple[OutsideDaemon, Path], count: int = 30) -> OutsideDaemon:
    daemon, _ = state
    daemon.start()
    for n in range(count):
        store(daemon, f"memory {n} about the build cache")
    daemon.wait_idle()
    assert daemon.stop() == 0
    return daemon


def test_a_read_only_state_directory_exits_8_which_no_unit_restarts(
        state: tuple[OutsideDaemon, Path]) -> None:
    """Start-up on a read-only state directory exits 8 with what to do, and doctor says the
    daemon cannot start until it is writable."""
    daemon, home = prepared(state), state[1]
    mount("-o", "remount,ro", str(home))
    mount("-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", str(home / "run"))
    assert daemon.run_to_exit() == EXIT_STATE_UNWRITABLE, daemon.stderr()
    assert EXIT_STATE_UNWRITABLE in PERMANENT
    assert "read-only" in daemon.stderr()
    found = doctor(daemon)["state directory"]
    assert found["ok"] is False and "exit 8" in found["detail"]


def test_a_full_state_directory_at_start_exits_8(state: tuple[OutsideDaemon, Path]) -> None:
    """Start-up on a full disk exits 8 (not 1) and says to free space; with space back it
    starts and holds every memory."""
    daemon, home = prepared(state), state[1]
    filler = fill(home)
    assert daemon.run_to_exit() == EXIT_STATE_UNWRITABLE, daemon.stderr()
    assert "full" in daemon.stderr()
    filler.unlink()
    daemon.start(wait_model=False)
    assert daemon.client.request("GET", "/v1/status")["memories"] == {"active": 30}


def test_a_page_damaged_projection_is_rebuilt_and_served(state: tuple[OutsideDaemon, Path]
                                                         ) -> None:
    """A damaged page in the middle of the SQLite projection: the daemon sets it aside,
    rebuilds, serves every memory and reports it in status and doctor."""
    daemon = prepared(state, 200)
    db = daemon.paths.sqlite
    pages = db.stat().st_size // PAGE
    with open(db, "r+b") as f:
        f.seek(pages // 2 * PAGE)
        f.write(b"\xde\xad\xbe\xef" * (PAGE // 4))
    daemon.start(wait_model=False)
    status = daemon.client.request("GET", "/v1/status")
    assert status["memories"] == {"active": 200}
    assert status["projections"]["rebuilt_after_damage"] == 1
    assert list(db.parent.glob("damaged-*/memlane.sqlite3"))
    assert "rebuilt from the log after damage" in doctor(daemon)["projections"]["detail"]
    assert daemon.stop() == 0


def test_a_damaged_vector_sidecar_is_rebuilt(state: tuple[OutsideDaemon, Path]) -> None:
    """A sidecar that is JSON but not the expected object does not stop the start."""
    daemon = prepared(state)
    daemon.paths.vectors.with_name("vectors.usearch.json").write_text("[]")
    daemon.start()
    assert daemon.wait_idle()["vectors"] == 30
    assert daemon.stop() == 0


def test_a_rebuild_while_clients_store_loses_nothing(state: tuple[OutsideDaemon, Path]) -> None:
    """`memlane rebuild` while four clients store: no crash, every acknowledged store is
    there, and the projection is in step with the log."""
    daemon = prepared(state, 300)
    daemon.start(wait_model=False)
    acked: list[int] = []
    stop = threading.Event()

    def client(name: str) -> None:
        for n in range(100_000):
            if stop.is_set():
                return
            acked.append(store(daemon, f"{name} stores memory {n}")["id"])

    threads = [threading.Thread(target=client, args=(f"c{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for _ in range(3):
        daemon.client.request("POST", "/v1/rebuild")
    stop.set()
    for thread in threads:
        thread.join()
    assert daemon.process is not None and daemon.process.poll() is None, daemon.stderr()
    # The indexer goes on appending Embedded/Linked events, so the log may be ahead of the
    # projection at any single instant: it must catch up with the log as seen once stores end.
    target = daemon.client.request("GET", "/v1/status")["last_seq"]
    deadline = time.monotonic() + 30
    while (status := daemon.client.request("GET", "/v1/status"))["applied_seq"] < target:
        assert time.monotonic() < deadline, f"projection stuck at {status['applied_seq']}"
        time.sleep(0.05)
    assert status["memories"]["active"] == 300 + len(acked)
    for memory_id in acked[::25]:
        assert daemon.client.request("GET", f"/v1/memories/{memory_id}")["id"] == memory_id
    assert daemon.stop() == 0, daemon.stderr()
