"""Forget on a real daemon: the text of a memory, the queries that recalled it, what was
consolidated from it and its routed lines leave every file (byte scans), also after a kill -9
at each step of the forget and a restart, and with embeds racing the forget."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from memlane.cli.client import DaemonError, DaemonUnavailable
from memlane.daemon.service.forgetting import CRASH_STEPS
from memlane.events.log import read_log
from memlane.events.model import Embedded
from tests.e2e.daemon import DaemonProcess
from tests.e2e.test_cli import run
from tests.e2e.test_lifecycle import POOL, repo  # noqa: F401, F811  (repo is a fixture)

SECRET = "zebra-quasar-4411"
QUERY = "pool exhausted under load marmot-tangerine-9902"


def traces(home: Path, *extra: Path, texts: tuple[str, ...]) -> list[str]:
    """Files under ``home`` (and ``extra``) holding any of ``texts`` (UTF-8 or UTF-16)."""
    forms = [f for t in texts for f in (t.encode(), t.encode("utf-16-le"))]
    files = [p for p in home.rglob("*") if p.is_file()] + [p for p in extra if p.is_file()]
    return [str(p) for p in files if any(f in p.read_bytes() for f in forms)]


def post(daemon: DaemonProcess, path: str, body: dict[str, Any] | None = None) -> Any:
    return daemon.client.request("POST", path, body or {})


def recall(daemon: DaemonProcess, query: str, memory: int) -> None:
    post(daemon, "/v1/search", {"query": query, "recall": True})
    events = daemon.client.request("GET", f"/v1/memories/{memory}/history")["events"]
    assert any(e["type"] == "recalled" and e["query"] == query for e in events)




def test_forget_removes_text_queries_descendants_and_routed_lines(daemon: DaemonProcess,
                                                                   repo: Path) -> None:
    """Stored, recalled, consolidated, routed, forgotten: neither text is anywhere."""
    text = f"{POOL[1]} ({SECRET})"
    source = post(daemon, "/v1/memories", {"text": text,
                                           "project": str(repo)})["id"]
    others = [post(daemon, "/v1/memories", {"text": t, "project": str(repo)})["id"]
              for t in (POOL[0], POOL[2])]
    daemon.wait_idle()
    recall(daemon, QUERY, source)
    assert post(daemon, "/v1/jobs/cluster")["clusters"]
    proven = post(daemon, "/v1/jobs/consolidate", {"offline": True})["consolidated"][0]["proven"]
    merged = daemon.client.request("GET", f"/v1/memories/{proven}")["text"]
    routes = post(daemon, "/v1/jobs/route", {"write": True})["routes"]
    claude = repo / "CLAUDE.md"
    assert [r["action"] for r in routes] == ["written"] and f"memlane:{proven}" in claude.read_text()
    assert traces(daemon.home, claude, texts=(SECRET, QUERY))  # the scan can see them

    for copy in (daemon.home / "log" / "torn" / "00000001.seg.99",
                 daemon.home / "projections" / "damaged-20260101" / "memlane.sqlite3"):
        copy.parent.mkdir(exist_ok=True)  # set-aside copies, as recovery and repair leave them
        copy.write_bytes(b"\0" * 100 + text.encode() + b"\0" * 100)
    vector = next(r.event.vector for r in read_log(daemon.home / "log", 1)
                  if isinstance(r.event, Embedded) and r.event.memory == source)
    answer = post(daemon, f"/v1/memories/{source}/forget")
    assert answer["memories"] == [source, proven]
    assert answer["verify"]["matches"] == 0 and answer["verify"]["needles"] > 0
    assert f"memlane:{proven}" in answer["routed"][0]["diff"]
    kept = claude.read_text()
    assert "A FastAPI service on Postgres." in kept and f"memlane:{proven}" not in kept
    assert all(line.lstrip("- ") not in kept for line in merged.splitlines())
    assert traces(daemon.home, claude, texts=(SECRET, QUERY)) == []
    for other in others:  # the sources kept their own text, only the query left their recalls
        assert daemon.client.request("GET", f"/v1/memories/{other}")["text"]
    assert post(daemon, "/v1/forget/verify", {"texts": [SECRET, QUERY]})["matches"] == 0
    assert post(daemon, f"/v1/memories/{source}/forget")["verify"]["matches"] == 0  # a retry
    daemon.stop()
    assert traces(daemon.home, claude, texts=(SECRET, QUERY)) == []
    assert not [p for p in daemon.home.rglob("*") if p.is_file() and vector[:64] in p.read_bytes()]
    assert run(daemon, "log", "verify", "--json").returncode == 0


def test_forget_verify_on_the_cli_finds_a_text_that_is_there(daemon: DaemonProcess) -> None:
    """--verify exits 1 and names the files while a text is still kept."""
    post(daemon, "/v1/memories", {"text": f"remember {SECRET}"})
    found = run(daemon, "forget", "--verify", SECRET, check=False)
    assert found.returncode == 1 and "memlane.sqlite3" in found.stdout
    with pytest.raises(DaemonError) as short:
        post(daemon, "/v1/forget/verify", {"texts": ["abc"]})
    assert short.value.code == "verify_text_too_short"


@pytest.mark.parametrize("step", CRASH_STEPS)
def test_a_forget_killed_at_any_step_finishes_at_restart(short_tmp: Path, step: str) -> None:
    """kill -9 inside the forget (exit 137 at a named step), restart: nothing is left."""
    home = short_tmp / "home"
    home.mkdir()
    crashing = DaemonProcess(home, MEMLANE_TEST_CRASH_AT=step).start()
    secret, query = f"{SECRET} at {step}", f"{QUERY} at {step}"
    memory = post(crashing, "/v1/memories", {"text": f"{POOL[0]}; {secret}"})["id"]
    crashing.wait_idle()
    recall(crashing, query, memory)
    with pytest.raises((DaemonUnavailable, DaemonError)):
        post(crashing, f"/v1/memories/{memory}/forget")
    assert crashing.process is not None and crashing.process.wait(timeout=60) == 137
    restarted = DaemonProcess(home).start()
    try:
        history = restarted.client.request("GET", f"/v1/memories/{memory}/history")["events"]
        assert history[-1]["type"] == "forgotten"
        assert traces(home, texts=(secret, query)) == []
    finally:
        restarted.stop()
    assert traces(home, texts=(secret, query)) == []


def test_a_forget_whose_proof_cannot_run_at_start_waits_for_the_next_start(
        short_tmp: Path) -> None:
    """A forget killed before its proof, restarted with a proof scan that cannot answer in
    time (its child is killed): the daemon serves, says why the forget waits, and keeps it
    pending; the next start proves it and nothing is left."""
    home = short_tmp / "home"
    home.mkdir()
    crashing = DaemonProcess(home, MEMLANE_TEST_CRASH_AT="shredded").start()
    secret = f"{SECRET} deferred"
    memory = post(crashing, "/v1/memories", {"text": f"{POOL[1]}; {secret}"})["id"]
    crashing.wait_idle()
    with pytest.raises((DaemonUnavailable, DaemonError)):
        post(crashing, f"/v1/memories/{memory}/forget")
    assert crashing.process is not None and crashing.process.wait(timeout=60) == 137
    stalled = DaemonProcess(home, MEMLANE_FORGET_SCAN_TIMEOUT_S="0.001").start()
    try:
        assert stalled.client.request("GET", "/v1/health")["status"] == "ready"
        history = stalled.client.request("GET", f"/v1/memories/{memory}/history")["events"]
        assert history[-1]["type"] == "forget_requested"
        assert "forget_proof_deferred" in stalled.stderr()
        assert "did not answer within 0.001 s" in stalled.stderr()
    finally:
        assert stalled.stop() == 0
    restarted = DaemonProcess(home).start()
    try:
        history = restarted.client.request("GET", f"/v1/memories/{memory}/history")["events"]
        assert history[-1]["type"] == "forgotten"
    finally:
        restarted.stop()
    assert traces(home, texts=(secret,)) == []


def test_embeds_racing_a_forget_do_not_bring_the_vector_back(daemon: DaemonProcess) -> None:
    """Forgets right after stores (embeds in flight): no vector, no Embedded after the request."""
    ids = [post(daemon, "/v1/memories", {"text": f"{SECRET} race {i}"})["id"] for i in range(8)]
    for memory in ids:
        post(daemon, f"/v1/memories/{memory}/forget")
    status = daemon.wait_idle()
    assert status["vectors"] == 0
    for memory in ids:
        types = [e["type"] for e in daemon.client.request(
            "GET", f"/v1/memories/{memory}/history")["events"]]
        assert "embedded" not in types[types.index("forget_requested"):]
    assert traces(daemon.home, texts=(SECRET,)) == []


def test_keep_descendants_forgets_the_source_alone(daemon: DaemonProcess) -> None:
    """With keep_descendants the consolidated memory keeps its text, and the proof scan says
    where the source's words live on in it."""
    ids = [post(daemon, "/v1/memories", {"text": t, "project": "/p"})["id"] for t in POOL]
    daemon.wait_idle()
    assert post(daemon, "/v1/jobs/cluster")["clusters"]
    proven = post(daemon, "/v1/jobs/consolidate", {"offline": True})["consolidated"][0]["proven"]
    answer = post(daemon, f"/v1/memories/{ids[0]}/forget", {"keep_descendants": True})
    merged = daemon.client.request("GET", f"/v1/memories/{proven}")["text"]
    assert answer["memories"] == [ids[0]]
    assert (answer["verify"]["matches"] > 0) == (POOL[0] in merged)
    assert daemon.client.request("GET", f"/v1/memories/{ids[0]}")["state"] == "forgotten"
