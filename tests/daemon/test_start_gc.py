"""Start-up's long-lived objects leave the cycle collector's view before the daemon serves: a
full pass over them holds the GIL 30-35 ms (issues 16 and 20: requests right after a start and
a compaction right after it stalled on such passes)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.e2e.daemon import DaemonProcess

# Records, for each full pass, whether the daemon listened then and how many objects it walked
# (frozen ones are not walked, and not listed by gc.get_objects).
PROBE = """
import gc, json, os, sys
from memlane.daemon.adapters.paths import resolve_paths
socket = resolve_paths().socket
out = open(sys.argv[1], "a", buffering=1)
def record(phase, info):
    if phase == "start" and info["generation"] == 2:
        out.write(json.dumps({"listening": socket.exists(), "walked": len(gc.get_objects())})
                  + "\\n")
gc.callbacks.append(record)
from memlane.daemon.__main__ import main
sys.exit(main())
"""
MOST_WALKED = 10_000  # a start-up heap holds ~60k tracked objects


def test_no_full_pass_walks_the_start_up_heap_once_the_daemon_listens(tmp_path: Path) -> None:
    home, passes = tmp_path / "home", tmp_path / "passes.jsonl"
    home.mkdir()
    script = tmp_path / "probe.py"
    script.write_text(PROBE)
    daemon = DaemonProcess(home)
    env = {**daemon.env, "PYTHONPATH": os.pathsep.join(sys.path)}
    with open(home / "stderr.log", "ab") as stderr:
        daemon.process = subprocess.Popen([sys.executable, str(script), str(passes)], env=env,
                                          stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        daemon.wait_ready(wait_model=True)
        for n in range(20):
            daemon.client.request("POST", "/v1/memories", {"text": f"note {n} on the cache"})
        daemon.wait_idle()
    finally:
        daemon.process.send_signal(signal.SIGTERM)
        daemon.process.wait(timeout=60)
    seen = [json.loads(line) for line in passes.read_text().splitlines()]
    before = [p["walked"] for p in seen if not p["listening"]]
    after = [p["walked"] for p in seen if p["listening"]]
    assert all(walked < MOST_WALKED for walked in after), after
    assert before and max(before) > MOST_WALKED  # the probe sees the start-up heap
