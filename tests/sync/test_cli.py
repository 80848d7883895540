"""``memlane sync enable`` and ``memlane sync status`` through the real executable."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from memlane.daemon.adapters.sync_config import normalise_url, read_sync_config

from tests.sync.devices import Device, wait_for
from tests.tools import MEMLANE


def memlane(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([MEMLANE, *args], env={**os.environ, "MEMLANE_HOME": str(home)},
                          capture_output=True, text=True, check=False, timeout=60)


def test_enable_names_the_project_by_its_root_commit(short_tmp: Path, repo: Path) -> None:
    """The project's portable id is its root commit, the same in every clone; the config is
    private to the user."""
    done = memlane(short_tmp / "h", "sync", "enable", "--url", "nats://127.0.0.1:4222",
                   "--team", "core", "--project", str(repo), "--json")
    assert done.returncode == 0, done.stderr
    root = subprocess.run(["git", "-C", str(repo), "rev-list", "--max-parents=0", "HEAD"],
                          capture_output=True, text=True, check=True).stdout.strip()
    assert json.loads(done.stdout)["project_id"] == "c" + root
    config = read_sync_config(short_tmp / "h")
    assert config is not None and config.projects == {str(repo): "c" + root}
    assert os.stat(short_tmp / "h" / "sync.toml").st_mode & 0o777 == 0o600


@pytest.mark.parametrize("args, message", [
    (["--team", "Core Team"], "team 'Core Team'"),
    (["--team", "core", "--project", "/nonexistent/repo"], "no commit and no origin remote"),
])
def test_enable_refuses_what_cannot_sync(short_tmp: Path, args: list[str], message: str) -> None:
    """A team name unsafe in a subject, or a project without a portable id: a clear error,
    nothing written."""
    done = memlane(short_tmp / "h", "sync", "enable", "--url", "nats://127.0.0.1:4222", *args)
    assert done.returncode == 1 and message in done.stderr, done.stderr
    assert not (short_tmp / "h" / "sync.toml").exists()


def test_one_team_per_installation(short_tmp: Path, repo: Path) -> None:
    """Enabling a second team is refused; the first stays as it was."""
    home = short_tmp / "h"
    base = ["sync", "enable", "--url", "nats://127.0.0.1:4222", "--project", str(repo)]
    assert memlane(home, *base, "--team", "core").returncode == 0
    other = memlane(home, *base, "--team", "other")
    assert other.returncode == 1 and "one team per installation" in other.stderr
    config = read_sync_config(home)
    assert config is not None and config.team == "core"


def test_remote_urls_normalise_to_one_name() -> None:
    """https, ssh and scp-like forms of one remote are one project."""
    forms = ["https://github.com/Acme/Repo.git", "git@github.com:acme/repo.git",
             "ssh://git@github.com:22/acme/repo", "https://user@github.com/acme/repo/"]
    assert {normalise_url(f) for f in forms} == {"github.com/acme/repo"}


@pytest.mark.slow
def test_status_reports_both_directions(pair: tuple[Device, Device]) -> None:
    """``sync status`` shows the device, the connection and the lag each way."""
    a, _ = pair
    a.daemon.start()
    a.daemon.wait_idle()  # the start's ModelChanged is on record: no later event makes a lag

    def settled() -> bool:
        status = a.sync_status()
        return bool(status["connected"]) and status["outbox"]["lag_events"] == 0

    wait_for(settled, timeout=30, what="A connected, its outbox caught up",
             explain=a.sync_status)
    done = memlane(a.home, "sync", "status", "--json")
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout)
    assert status["device"] == a.device_id and status["connected"]
    assert status["outbox"]["lag_events"] == 0 and status["inbox"]["pending"] == 0
