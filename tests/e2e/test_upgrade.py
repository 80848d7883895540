"""A state directory that an older release wrote (tests/data/upgrades) opens and serves as is."""

from __future__ import annotations

import http.client
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from memlane.cli.client import DaemonError

from tests.e2e.daemon import DaemonProcess

UPGRADES = Path(__file__).parents[1] / "data" / "upgrades"
FIXTURES = sorted(path for path in UPGRADES.iterdir() if (path / "expected.json").is_file())


@pytest.fixture(params=FIXTURES, ids=[path.name for path in FIXTURES])
def fixture_dir(request: pytest.FixtureRequest) -> Path:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def expected(fixture_dir: Path) -> dict[str, Any]:
    return json.loads((fixture_dir / "expected.json").read_text())  # type: ignore[no-any-return]


@pytest.fixture
def upgraded(fixture_dir: Path, short_tmp: Path) -> Iterator[DaemonProcess]:
    """The current daemon started on a copy of the fixture's state directory."""
    shutil.copytree(fixture_dir / "home", short_tmp / "home")
    process = DaemonProcess(short_tmp / "home").start()
    yield process
    if process.process is not None and process.process.poll() is None:
        assert process.stop() == 0


def answer(daemon: DaemonProcess, method: str, path: str, body: Any) -> Any:
    """The daemon's answer, with an error reduced to its status and code (as recorded)."""
    try:
        return daemon.client.request(method, path, body)
    except DaemonError as exc:
        return {"error": {"status": exc.status, "code": exc.code}}


def differences(daemon: DaemonProcess, expected: dict[str, Any]) -> list[str]:
    """Every recorded read whose answer now differs, each described."""
    found = []
    for read in expected["reads"]:
        body = read["body"]
        if read["path"] == "/v1/search":  # ranking may improve between releases; data may not
            body = {**body, "floor": False}
        got, want = answer(daemon, read["method"], read["path"], body), read["answer"]
        where = f"{read['method']} {read['path']} {json.dumps(read['body'])}"
        if read["path"] == "/v1/search" and "hits" in want and "hits" in got:
            found += search_differences(where, got["hits"], want["hits"])
        elif got != want:
            found.append(f"{where}\n  was {json.dumps(want)}\n  now {json.dumps(got)}")
    return found


def search_differences(where: str, got: list[dict[str, Any]],
                       want: list[dict[str, Any]]) -> list[str]:
    """Search hits: ranking is free to improve between releases, so the old best hit must
    still be found (the floor off), and every hit's memory must read as it did."""
    found = []
    if want and want[0]["id"] not in {hit["id"] for hit in got}:
        found.append(f"{where}\n  best hit {want[0]['id']} is no longer found: now "
                     f"{[h['id'] for h in got]}")
    was_by_id = {hit["id"]: hit for hit in want}
    for now in got:
        if (was := was_by_id.get(now["id"])) is None:
            continue
        keep = ("id", "text", "project", "kind", "state")
        if {k: now.get(k) for k in keep} != {k: was.get(k) for k in keep}:
            found.append(f"{where}: hit {now['id']}\n  was {was}\n  now {now}")
    return found


def status_differences(daemon: DaemonProcess, expected: dict[str, Any]) -> list[str]:
    status = daemon.client.request("GET", "/v1/status")
    return [f"status {field} was {json.dumps(want)}, now {json.dumps(status.get(field))}"
            for field, want in expected["status"].items() if status.get(field) != want]


def recovered_line(daemon: DaemonProcess) -> dict[str, Any]:
    lines = [json.loads(line) for line in (daemon.home / "stderr.log").read_text().splitlines()
             if line.startswith("{") and '"recovered"' in line]
    assert len(lines) == 1, daemon.stderr()
    return lines[0]


def test_projections_open_as_they_are(upgraded: DaemonProcess, expected: dict[str, Any]) -> None:
    """The daemon replays no event and embeds nothing at start (once its start-up work is
    done: the model loaded, the backlog checked); its status carries over."""
    status = upgraded.wait_idle()
    assert status["embedding_backlog"] == 0 and status["embed_passes"] == 0
    assert status["applied_seq"] == status["last_seq"] == expected["status"]["last_seq"]
    recovered = recovered_line(upgraded)
    assert recovered["replayed"] == 0 and not recovered["rebuilt"], recovered
    assert recovered["last_seq"] == expected["status"]["last_seq"]
    assert status_differences(upgraded, expected) == []


def test_reads_answer_as_before(upgraded: DaemonProcess, expected: dict[str, Any]) -> None:
    """Every recorded read (memories, links, clusters, export) answers as it did; every old
    best search hit is still found."""
    assert "\n".join(differences(upgraded, expected)) == ""


def test_rebuild_from_the_log_alone_answers_as_before(upgraded: DaemonProcess,
                                                      expected: dict[str, Any]) -> None:
    """A rebuild replays the old log into projections that answer every recorded read the same."""
    rebuilt = upgraded.client.request("POST", "/v1/rebuild")
    assert rebuilt["replayed"] == rebuilt["last_seq"] == expected["status"]["last_seq"]
    upgraded.wait_idle()
    assert status_differences(upgraded, expected) == []
    assert "\n".join(differences(upgraded, expected)) == ""


def test_token_file_authenticates_over_tcp(upgraded: DaemonProcess, fixture_dir: Path) -> None:
    """The old token file is kept as it is and opens TCP; a request without it is refused."""
    token = (fixture_dir / "home" / "token").read_text()
    assert upgraded.paths.token.read_text() == token
    port = int((upgraded.paths.runtime / "tcp.port").read_text())

    def status_over_tcp(headers: dict[str, str]) -> int:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            conn.request("GET", "/v1/status", headers=headers)
            response = conn.getresponse()
            response.read()
            return response.status
        finally:
            conn.close()

    assert status_over_tcp({"Authorization": f"Bearer {token.strip()}"}) == 200
    assert status_over_tcp({}) == 401


def test_old_duplicates_and_idempotency_keys_still_deduplicate(
        upgraded: DaemonProcess, expected: dict[str, Any]) -> None:
    """A retry with an old idempotency key appends nothing; old text again only reinforces."""
    last = expected["status"]["last_seq"]
    idempotent = expected["steps"]["idempotent"][0]["id"]
    duplicate = expected["steps"]["duplicate"]["id"]
    for old_id, appended in ((idempotent, 0), (duplicate, 1)):  # 1: the Reinforced event
        stored = upgraded.client.request("POST", "/v1/memories", store_body(upgraded, old_id))
        assert stored["duplicate"] and stored["id"] == old_id, stored
        last += appended
        assert upgraded.client.request("GET", "/v1/status")["last_seq"] == last


def store_body(daemon: DaemonProcess, memory_id: int) -> dict[str, Any]:
    """The store request that wrote ``memory_id``, rebuilt from its answers."""
    memory = daemon.client.request("GET", f"/v1/memories/{memory_id}")
    stored = daemon.client.request("GET", f"/v1/memories/{memory_id}/history")["events"][0]
    return {"text": memory["text"], "project": memory["project"], "kind": memory["kind"],
            "tags": memory["tags"], "source": memory["source"],
            "idempotency_key": stored["idempotency_key"]}
