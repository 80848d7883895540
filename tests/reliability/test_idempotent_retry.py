"""Retrying a store with its idempotency key after the answer was lost stores it once: the retry
names the same memory with ``duplicate: true``, and the log holds one ``Stored`` for the key."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from memlane.cli.client import DaemonUnavailable
from memlane.events.log import read_log
from memlane.events.model import Reinforced, Stored
from tests.e2e.daemon import DaemonProcess
from tests.reliability.conftest import start
from tests.reliability.straced import NO_MODEL, StracedDaemon, first_segment, require_strace

pytestmark = pytest.mark.crash

RETRIES = 16


def body(key: str) -> dict[str, Any]:
    return {"text": f"the deploy needs the {key} flag", "project": "p", "idempotency_key": key}


def keyed(daemon: DaemonProcess, key: str) -> list[Stored]:
    return [r.event for r in read_log(daemon.paths.log_dir)
            if isinstance(r.event, Stored) and r.event.idempotency_key == key]


def reinforcements(daemon: DaemonProcess, memory_id: int) -> int:
    return sum(isinstance(r.event, Reinforced) and r.event.memory == memory_id
               for r in read_log(daemon.paths.log_dir))


def send_without_reading(daemon: DaemonProcess, payload: dict[str, Any]) -> socket.socket:
    """Send a store over the Unix socket and leave the answer unread, as a client that dies."""
    data = json.dumps(payload).encode()
    head = (f"POST /v1/memories HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n\r\n").encode()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(str(daemon.paths.socket))
    sock.sendall(head + data)
    return sock


def wait_until_logged(daemon: DaemonProcess, key: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not keyed(daemon, key):
        assert time.monotonic() < deadline, f"no Stored with key {key!r} reached the log"
        time.sleep(0.005)


def concurrent_retries(daemon: DaemonProcess, payload: dict[str, Any]) -> list[dict[str, Any]]:
    """The same store from many clients at once; their answers."""
    answers: list[dict[str, Any]] = []
    start = threading.Barrier(RETRIES)

    def retry() -> None:
        client = daemon.client
        start.wait()
        answers.append(client.request("POST", "/v1/memories", payload))

    threads = [threading.Thread(target=retry) for _ in range(RETRIES)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(answers) == RETRIES
    return answers


@pytest.fixture
def home(short_tmp: Path) -> Path:
    (short_tmp / "home").mkdir()
    return short_tmp / "home"


def test_a_store_killed_before_its_answer_is_stored_once_on_retry(
        home: Path, daemons: list[DaemonProcess]) -> None:
    """Killed at the store's fdatasync, before answering: the retry gets the same id."""
    # strace delivers the SIGKILL when the log syncs, so no answer can have been sent.
    require_strace()
    plain = DaemonProcess(home, **NO_MODEL)
    killed = start(daemons, StracedDaemon(home, [
        "-P", str(first_segment(plain)), "-e", "trace=fdatasync",
        "-e", "inject=fdatasync:signal=SIGKILL"], **NO_MODEL))
    with pytest.raises(DaemonUnavailable):
        killed.client.request("POST", "/v1/memories", body("k-strace"))
    assert killed.process is not None and killed.process.wait(timeout=60) != 0
    [logged] = keyed(plain, "k-strace")
    restarted = start(daemons, plain)
    answer = restarted.client.request("POST", "/v1/memories", body("k-strace"))
    assert (answer["id"], answer["duplicate"]) == (logged.id, True)
    assert keyed(restarted, "k-strace") == [logged]


def test_a_store_whose_answer_was_never_read_is_stored_once_on_retry(
        home: Path, daemons: list[DaemonProcess]) -> None:
    """Killed once the store is logged, its answer unread: the retry gets the same id."""
    daemon = start(daemons, DaemonProcess(home, **NO_MODEL))
    with send_without_reading(daemon, body("k-unread")):
        wait_until_logged(daemon, "k-unread")
        daemon.kill9()
    [logged] = keyed(daemon, "k-unread")
    daemon.start(wait_model=False)
    answer = daemon.client.request("POST", "/v1/memories", body("k-unread"))
    assert (answer["id"], answer["duplicate"]) == (logged.id, True)
    assert keyed(daemon, "k-unread") == [logged]


def test_concurrent_retries_of_one_key_append_one_event(
        home: Path, daemons: list[DaemonProcess]) -> None:
    """Sixteen simultaneous retries of one key, before and after kill -9, log one Stored."""
    daemon = start(daemons, DaemonProcess(home, **NO_MODEL))
    first = concurrent_retries(daemon, body("k-race"))
    assert sorted(a["duplicate"] for a in first) == [False] + [True] * (RETRIES - 1)
    [logged] = keyed(daemon, "k-race")
    assert {a["id"] for a in first} == {logged.id}
    daemon.kill9()
    daemon.start(wait_model=False)
    again = concurrent_retries(daemon, body("k-race"))
    assert all(a["duplicate"] for a in again) and {a["id"] for a in again} == {logged.id}
    assert keyed(daemon, "k-race") == [logged]
    assert reinforcements(daemon, logged.id) == 0
