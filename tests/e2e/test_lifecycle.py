"""The lifecycle end to end on a real daemon with the fake Gemini server: link, cluster,
consolidate with lineage, route into CLAUDE.md, age out noise, forget, replay."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.daemon import DaemonProcess
from tests.e2e.test_cli import run, run_json
from tests.gemini_server import FakeGemini, GeminiRequest, Reply, json_text, plausible_reply

POOL = ["The pg pool runs out under load; set pool_size=20 in db.py",
        "Postgres connection pool exhausted under load, raise pool_size to 20",
        "Under heavy load the database pool is exhausted: pool_size=20 fixes it"]
ACTIVITY = ["Frontend builds with vite; run `npm run build` before deploying the assets",
            "The CI matrix covers Python 3.11 and 3.12 on ubuntu-latest runners",
            "Logs ship to Loki through promtail; labels are app and env",
            "Feature flags live in flags.yaml and reload on SIGHUP",
            "Use httpx.AsyncClient with a 10 s timeout for the billing API",
            "Alembic migrations must be reviewed by two people before merge",
            "The nightly export job writes parquet files to s3://acme-exports/",
            "Rate limiting uses a token bucket of 100 requests per minute per key",
            "Celery workers need --max-tasks-per-child=200 to contain the memory leak",
            "Docs are built with mkdocs-material and published from the gh-pages branch",
            "Sentry DSN is read from SENTRY_DSN; sampling rate 0.2 in production",
            "The admin UI is behind Cloudflare Access with GitHub SSO"]


def respond(request: GeminiRequest) -> Reply:
    """Plausible replies, with chatter judged to have no substance."""
    if "keep" in request.schema_fields:
        return json_text({"keep": "brb" not in request.prompt, "reason": "fake judgement"})
    return plausible_reply(request)


@pytest.fixture
def gemini() -> Iterator[FakeGemini]:
    with FakeGemini(respond=respond) as fake:
        yield fake


@pytest.fixture
def repo(short_tmp: Path) -> Path:
    root = short_tmp / "repo"
    root.mkdir()
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    (root / "CLAUDE.md").write_text("# Acme API\n\nA FastAPI service on Postgres.\n")
    return root


@pytest.fixture
def lived(short_tmp: Path, gemini: FakeGemini, repo: Path) -> Iterator[DaemonProcess]:
    home = short_tmp / "home"
    home.mkdir()
    (home / "config.toml").write_text(f'route_write_projects = ["{repo}"]\nage_limit = 10\n')
    daemon = DaemonProcess(home, GEMINI_API_KEY=gemini.api_key,
                           MEMLANE_LLM_BASE_URL=gemini.base_url, MEMLANE_JOBS_INTERVAL_S="3600")
    daemon.start()
    yield daemon
    if daemon.process is not None and daemon.process.poll() is None:
        daemon.stop()


def store(daemon: DaemonProcess, text: str, project: Path, *extra: str) -> int:
    return int(run_json(daemon, "store", text, "--project", str(project), *extra)["id"])


def test_memories_link_cluster_consolidate_route_and_age(lived: DaemonProcess, repo: Path,
                                                         gemini: FakeGemini) -> None:
    noise = store(lived, "brb", repo)
    decision = store(lived, "#decision we deploy with blue-green only", repo)
    pool = [store(lived, text, repo) for text in POOL]
    store(lived, POOL[0], Path("/elsewhere"))  # the same words in another project
    for text in ACTIVITY:
        store(lived, text, repo)
    lived.wait_idle()
    links = [json.loads(line) for line in run(lived, "links", str(pool[0]), "--json").stdout.splitlines()]
    assert {link["other"] for link in links} >= {pool[1]}
    last = run_json(lived, "status")["last_seq"]
    memories = {m["id"]: m for m in (lived.client.request("GET", f"/v1/memories/{i}")
                                      for i in range(1, last + 1)
                                      if _exists(lived, i))}
    all_links = [link for m in memories
                 for link in lived.client.request("GET", f"/v1/memories/{m}/links")["links"]]
    assert len(all_links) >= 4
    assert all(memories[link["id"]]["project"] == memories[link["other"]]["project"]
               for link in all_links)

    clusters = run_json(lived, "cluster")["clusters"]
    assert [sorted(c["members"]) for c in clusters] == [sorted(pool)]

    gemini.reset()
    done = run_json(lived, "consolidate")["consolidated"]
    assert len(done) == 1 and len(gemini.requests) == 1
    proven = done[0]["proven"]
    assert run_json(lived, "get", str(proven))["state"] == "proven"
    assert run_json(lived, "lineage", str(proven))["parents"] == sorted(pool)
    for source in pool:
        memory = run_json(lived, "get", str(source))
        assert memory["state"] == "expired" and memory["expiry_reason"] == f"consolidated into {proven}"

    routed = [json.loads(line) for line in run(lived, "route", "--json").stdout.splitlines()]
    assert [(r["memory"], r["action"]) for r in routed] == [(proven, "written")]
    claude = (repo / "CLAUDE.md").read_text()
    assert claude.startswith("# Acme API\n\nA FastAPI service on Postgres.\n")
    assert f"<!-- memlane:{proven} -->" in claude and "pool_size=20" in claude
    assert json.loads(run(lived, "route", "--json").stdout or "null") is None  # nothing twice

    preview = [json.loads(line) for line in run(lived, "age", "--dry-run", "--json").stdout.splitlines()]
    assert noise in {d["id"] for d in preview if d["action"] == "expire"}
    assert run_json(lived, "get", str(noise))["state"] == "active"  # a dry run changes nothing
    run(lived, "age")
    assert run_json(lived, "get", str(noise))["state"] == "expired"
    assert run_json(lived, "get", str(decision))["state"] == "active"
    history = [json.loads(line) for line in run(lived, "history", str(noise)).stdout.splitlines()]
    assert history[-1]["type"] == "expired" and "no substance" in history[-1]["reason"]
    assert run_json(lived, "restore", str(noise))["state"] == "active"


def test_without_a_key_clusters_wait_and_offline_consolidation_merges(short_tmp: Path,
                                                                      repo: Path) -> None:
    home = short_tmp / "home"
    home.mkdir()
    daemon = DaemonProcess(home, GEMINI_API_KEY="", GOOGLE_API_KEY="")
    daemon.start()
    try:
        pool = [store(daemon, text, repo) for text in POOL]
        daemon.wait_idle()
        run(daemon, "cluster")
        waiting = run(daemon, "consolidate", check=False)
        assert waiting.returncode == 1 and "--offline" in waiting.stderr
        assert run_json(daemon, "status")["clusters_waiting"] == 1
        done = run_json(daemon, "consolidate", "--offline")["consolidated"]
        proven = run_json(daemon, "get", str(done[0]["proven"]))
        assert proven["state"] == "proven" and "pool_size" in proven["text"]
        assert proven["text"].count("\n") < len(pool) - 1 or len(proven["text"]) < sum(map(len, POOL))
        assert run_json(daemon, "status")["clusters_waiting"] == 0
    finally:
        daemon.stop()


def test_consolidate_right_after_storing_clusters_first(short_tmp: Path, repo: Path) -> None:
    """No separate `memlane cluster` needed: consolidate finds what was just stored."""
    home = short_tmp / "home"
    home.mkdir()
    daemon = DaemonProcess(home, GEMINI_API_KEY="", GOOGLE_API_KEY="")
    daemon.start()
    try:
        for text in POOL:
            store(daemon, text, repo)
        daemon.wait_idle()
        done = run_json(daemon, "consolidate", "--offline")["consolidated"]
        assert len(done) == 1 and len(done[0]["sources"]) == len(POOL)
    finally:
        daemon.stop()


def test_a_forgotten_memory_leaves_no_trace_and_replay_shows_the_past(daemon: DaemonProcess,
                                                                      short_tmp: Path) -> None:
    secret = "the vault recipe is quokka-saffron-7781"
    keep = store(daemon, "Use uv for installs", Path("/p"))
    gone = store(daemon, secret, Path("/p"))
    daemon.wait_idle()
    before_forget = run_json(daemon, "status")["last_seq"]
    assert run_json(daemon, "forget", str(gone))["forgotten"] is True
    assert run_json(daemon, "get", str(gone))["state"] == "forgotten"
    daemon.stop()
    for path in daemon.home.rglob("*"):
        if path.is_file():
            assert b"quokka-saffron" not in path.read_bytes(), path
    assert run_json(daemon, "log", "verify")["ok"] is True
    past = run_json(daemon, "replay", "--until", str(keep), "--into", str(short_tmp / "past"))
    assert past["until_seq"] == keep and past["memories"] == {"active": 1}
    late = run_json(daemon, "replay", "--until", str(before_forget), "--into", str(short_tmp / "late"))
    assert late["memories"] == {"active": 2}  # the text is gone from the log, the memory was there


def _exists(daemon: DaemonProcess, memory_id: int) -> bool:
    from memlane.cli.client import DaemonError

    try:
        daemon.client.request("GET", f"/v1/memories/{memory_id}")
    except DaemonError:
        return False
    return True


def test_secrets_are_redacted_before_anything_is_written(daemon: DaemonProcess) -> None:
    token = "ghp_" + "Zq81xT0pLm4RvW2nY7kB5cJ9dF3gH6sA1eUo"
    url_password = "hunter2-Quokka-77"
    text = (f"CI pushes with GITHUB_TOKEN={token}; the staging db is "
            f"postgres://app:{url_password}@db.internal:5432/app")
    answer = run_json(daemon, "store", text, "--project", "/p")
    assert answer["redactions"] == 2
    stored = run_json(daemon, "get", str(answer["id"]))["text"]
    assert token not in stored and url_password not in stored
    assert "postgres://app:[redacted:" in stored and "GITHUB_TOKEN=" in stored
    daemon.wait_idle()
    daemon.stop()
    for path in daemon.home.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert token.encode() not in data and url_password.encode() not in data, path
