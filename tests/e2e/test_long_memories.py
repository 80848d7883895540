"""A bulk import of long memories (more than the embedding engine takes in one request, in
all) keeps the daemon up, and their vectors follow: the indexer's rounds stay under the
engine's cap (before, the refusal ended the daemon, and the backlog sweep of the next start
would have ended it again)."""

from __future__ import annotations

import random
import time

from memlane.daemon.adapters.engine import MAX_REQUEST_TOKENS

from tests.e2e.daemon import DaemonProcess

WORDS = "alpha beta gamma delta epsilon zeta theta kappa lambda sigma omega river".split()


def test_an_import_of_long_memories_keeps_the_daemon_up(daemon: DaemonProcess) -> None:
    pick = random.Random(1)
    memories = [{"text": " ".join(f"{pick.choice(WORDS)}{pick.randint(0, 999)}"
                                  for _ in range(1700)), "project": "long"}
                for _ in range(130)]
    assert sum(len(m["text"]) for m in memories) > 4 * MAX_REQUEST_TOKENS
    assert daemon.client.request("POST", "/v1/import", {"memories": memories})["stored"] == 130
    deadline = time.monotonic() + 120
    while daemon.client.request("GET", "/v1/status")["vectors"] == 0:
        assert daemon.process is not None and daemon.process.poll() is None, daemon.stderr()
        assert time.monotonic() < deadline, "no vector within 120 s"
        time.sleep(0.2)
    assert daemon.process is not None and daemon.process.poll() is None
