"""`memlane model pull|verify|use|list` against a local server speaking the hub's download
protocol, serving a tiny model with the Qwen3 export's interface; then the daemon runs it."""

from __future__ import annotations

import json
from unittest.mock import ANY
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from memlane.daemon.domain.models import QWEN3
from tests.e2e.daemon import DaemonProcess
from tests.e2e.test_cli import MEMLANE
from tests.hub_server import COMMIT, Hub, serve
from tests.tiny_qwen import build_tiny_qwen

ONNX, TOKENIZER = QWEN3.onnx_file, QWEN3.tokenizer_file


@pytest.fixture(scope="module")
def model_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_qwen(tmp_path_factory.mktemp("hub") / "tiny-qwen")


@pytest.fixture
def home(short_tmp: Path) -> Path:
    (short_tmp / "home").mkdir()
    return short_tmp / "home"


def memlane(home: Path, endpoint: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MEMLANE_HOME": str(home), "HF_ENDPOINT": endpoint,
           "HF_HOME": str(home / "hf"), "HF_HUB_DISABLE_TELEMETRY": "1", "MEMLANE_PORT": "0"}
    env.pop("HF_HUB_OFFLINE", None)
    return subprocess.run([MEMLANE, *args], env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture
def hub(model_source: Path) -> Iterator[tuple[Hub, str]]:
    served = Hub(repo=QWEN3.hub_repo or "", root=model_source, lfs=(ONNX,))
    with serve(served) as endpoint:
        yield served, endpoint


def test_pull_records_checksums_and_the_commit(home: Path, hub: tuple[Hub, str],
                                               model_source: Path) -> None:
    served, endpoint = hub
    result = memlane(home, endpoint, "model", "pull", QWEN3.name, "--json")
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["revision"] == COMMIT and set(answer["files"]) == {ONNX, TOKENIZER}
    root = home / "models" / QWEN3.name
    for relative in (ONNX, TOKENIZER):
        assert (root / relative).read_bytes() == (model_source / relative).read_bytes()
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["files"][ONNX]["sha256"] == served.etag(ONNX)
    verify = memlane(home, endpoint, "model", "verify", QWEN3.name, "--json")
    assert verify.returncode == 0 and json.loads(verify.stdout)["ok"] is True
    listed = {json.loads(line)["name"]: json.loads(line)
              for line in memlane(home, endpoint, "model", "list", "--json").stdout.splitlines()}
    assert listed[QWEN3.name]["present"] is True


def test_an_interrupted_download_resumes_with_a_range_request(home: Path, tmp_path: Path,
                                                              model_source: Path) -> None:
    """The connection drops after 12 MB of a 24 MB file: the download goes on from the last
    whole chunk written (the client writes 10 MiB chunks) instead of starting over."""
    root = tmp_path / "big"
    (root / "onnx").mkdir(parents=True)
    (root / ONNX).write_bytes(np.random.default_rng(0).bytes(24 * 1024 * 1024))
    (root / TOKENIZER).write_bytes((model_source / TOKENIZER).read_bytes())
    served = Hub(repo=QWEN3.hub_repo or "", root=root, lfs=(ONNX,),
                 drop_first_get_after=12 * 1024 * 1024)
    with serve(served) as endpoint:
        result = memlane(home, endpoint, "model", "pull", QWEN3.name, "--json")
    assert result.returncode == 0, result.stderr
    assert served.ranges == [f"bytes={10 * 1024 * 1024}-"]
    pulled = home / "models" / QWEN3.name / ONNX
    assert pulled.read_bytes() == (root / ONNX).read_bytes()


def test_a_download_that_differs_from_the_hub_checksum_is_refused(home: Path,
                                                                  hub: tuple[Hub, str]) -> None:
    served, endpoint = hub
    served.corrupt = (ONNX,)
    result = memlane(home, endpoint, "model", "pull", QWEN3.name)
    assert result.returncode != 0 and "differs from the hub's checksum" in result.stderr
    root = home / "models" / QWEN3.name
    assert not (root / ONNX).exists() and not (root / "manifest.json").exists()
    use = memlane(home, endpoint, "model", "use", QWEN3.name)
    assert use.returncode != 0 and "memlane model pull" in use.stderr


def test_verify_detects_a_changed_file_and_the_daemon_refuses_it(home: Path,
                                                                 hub: tuple[Hub, str]) -> None:
    _, endpoint = hub
    assert memlane(home, endpoint, "model", "pull", QWEN3.name).returncode == 0
    assert memlane(home, endpoint, "model", "use", QWEN3.name).returncode == 0
    onnx_path = home / "models" / QWEN3.name / ONNX
    data = bytearray(onnx_path.read_bytes())
    data[-1] ^= 0x01
    onnx_path.write_bytes(bytes(data))
    verify = memlane(home, endpoint, "model", "verify", QWEN3.name, "--json")
    assert verify.returncode == 3
    assert {f["status"] for f in json.loads(verify.stdout)["files"]} == {"ok", "mismatch"}
    daemon = DaemonProcess(home)
    daemon.start(wait_model=False)
    try:
        health = daemon.client.request("GET", "/v1/health")
        for _ in range(200):
            if health["status"] != "loading":
                break
            health = daemon.client.request("GET", "/v1/health")
        assert health["status"] == "failed" and "sha256" in health["error"]
    finally:
        daemon.stop()


def test_the_daemon_runs_a_pulled_model_after_use(home: Path, hub: tuple[Hub, str]) -> None:
    _, endpoint = hub
    daemon = DaemonProcess(home)
    daemon.start()
    daemon.client.request("POST", "/v1/import", {"memories": [
        {"text": f"note {n}: clear the cache before build {n}", "project": "p"}
        for n in range(40)]})
    daemon.wait_idle()
    daemon.stop()
    assert memlane(home, endpoint, "model", "pull", QWEN3.name).returncode == 0
    used = memlane(home, endpoint, "model", "use", QWEN3.name, "--json")
    assert used.returncode == 0 and f'model = "{QWEN3.name}"' in (home / "config.toml").read_text()
    daemon.start()
    try:
        health = daemon.client.request("GET", "/v1/health")
        assert health["model"] == QWEN3.name and health["pipeline"].startswith(QWEN3.name)
        full = daemon.client.request("POST", "/v1/embeddings", {"input": ["a cat", "a dog"]})
        assert len(full["data"][0]["embedding"]) == 1024
        short = daemon.client.request("POST", "/v1/embeddings",
                                      {"input": ["a cat"], "dimensions": 256})
        head = np.array(full["data"][0]["embedding"][:256])
        assert np.allclose(short["data"][0]["embedding"], head / np.linalg.norm(head), atol=1e-5)
        waited = memlane(home, endpoint, "wait", "--json")  # follows the re-embedding
        assert waited.returncode == 0, waited.stderr
        assert json.loads(waited.stdout) == {"caught_up": True, "vectors": 40,
                                             "model": QWEN3.name, "last_seq": ANY}
        status = daemon.client.request("GET", "/v1/status")
        assert status["model"] == QWEN3.name and status["vectors"] == 40  # re-embedded
    finally:
        daemon.stop()
