"""A bulk import with nobody searching runs its passes two at a time on a twin of the model
(the real MiniLM), which status shows while held and which is let go after; the memories
get their vectors either way."""

from __future__ import annotations

import time

from memlane.daemon.adapters import engine

from tests.e2e.daemon import DaemonProcess


def test_a_bulk_import_pairs_its_passes_on_a_twin_then_lets_it_go(daemon: DaemonProcess) -> None:
    notes = [f"note {i}: the build cache must be cleared after upgrading toolchain {i}"
             for i in range(2 * engine.TWIN_FROM_TEXTS)]
    daemon.client.request("POST", "/v1/import", {"memories": [
        {"text": text, "project": "bulk"} for text in notes]})
    status = daemon.wait_idle()
    assert status["vectors"] == len(notes)
    assert status["embed_twin"]["passes"] >= 2
    deadline = time.monotonic() + 15 + engine.TWIN_IDLE_S
    while daemon.client.request("GET", "/v1/status")["embed_twin"]["held"]:
        assert time.monotonic() < deadline, "the twin was never let go"
        time.sleep(0.1)
    # logged once the heap is trimmed, after status stops showing the twin
    while '"embedding_twin_released"' not in daemon.stderr():
        assert time.monotonic() < deadline, "the release was never logged"
        time.sleep(0.1)
