"""The daemon's files and the paths it is handed: private whatever the umask, a state
directory of the user's own, and transcripts that cannot hang a hook."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from memlane.daemon.adapters.paths import EXIT_UNSAFE_STATE
from tests.e2e.daemon import DaemonProcess
from tests.reliability.conftest import start

pytestmark = pytest.mark.security
UMASK_000 = ["/bin/sh", "-c", 'umask 000 && exec "$@"', "sh"]
NOBODY = 65534


class OpenUmaskDaemon(DaemonProcess):
    """The daemon started under umask 000: only its own care keeps its files private."""

    def start(self, *, wait_model: bool = True) -> OpenUmaskDaemon:
        stderr = self.home.parent.parent / "stderr.log"  # outside the checked tree
        with open(stderr, "ab") as handle:
            self.process = subprocess.Popen(
                [*UMASK_000, sys.executable, "-m", "memlane.daemon"], env=self.env,
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=handle)
        self.wait_ready(wait_model=wait_model)
        return self


def not_private(root: Path) -> dict[str, str]:
    """Each entry below ``root`` (and ``root``) that is not 0700 (a directory) or 0600."""
    found = {}
    for path in [root, *root.rglob("*")]:
        info = path.lstat()
        wanted = 0o700 if stat.S_ISDIR(info.st_mode) else 0o600
        if stat.S_IMODE(info.st_mode) != wanted:
            found[str(path)] = oct(stat.S_IMODE(info.st_mode))
    return found


def run_daemon(home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MEMLANE_HOME": str(home), "MEMLANE_PORT": "0"}
    return subprocess.run([sys.executable, "-m", "memlane.daemon"], env=env, capture_output=True,
                          text=True, timeout=60)


def test_every_file_is_0600_and_every_directory_0700_under_umask_000(
        daemons: list[DaemonProcess], short_tmp: Path) -> None:
    """Under umask 000 a new state directory, stores and a clean stop leave only 0600 files
    and 0700 directories."""
    daemon = start(daemons, OpenUmaskDaemon(short_tmp / "state" / "home"))
    daemon.client.request("POST", "/v1/memories", {"text": "kept private", "project": "p"})
    assert daemon.stop() == 0
    assert not_private(short_tmp / "state") == {}


def test_a_symlinked_state_directory_is_refused(short_tmp: Path) -> None:
    """MEMLANE_HOME naming a symlink exits 8 with a message naming the real directory, and
    neither the link's target nor its mode is touched."""
    real = short_tmp / "real"
    real.mkdir(mode=0o755)
    real.chmod(0o755)
    (short_tmp / "link").symlink_to(real)
    result = run_daemon(short_tmp / "link")
    assert result.returncode == EXIT_UNSAFE_STATE
    assert "symlink" in result.stderr and str(real) in result.stderr
    assert list(real.iterdir()) == [] and stat.S_IMODE(real.stat().st_mode) == 0o755


@pytest.mark.skipif(os.getuid() != 0, reason="giving a directory to another user needs root")
def test_another_users_state_directory_is_refused(short_tmp: Path) -> None:
    """A state directory owned by someone else exits 8 and is left as it was."""
    foreign = short_tmp / "foreign"
    foreign.mkdir()
    os.chown(foreign, NOBODY, NOBODY)
    foreign.chmod(0o755)
    result = run_daemon(foreign)
    assert result.returncode == EXIT_UNSAFE_STATE and "not to you" in result.stderr
    assert list(foreign.iterdir()) == [] and stat.S_IMODE(foreign.stat().st_mode) == 0o755


def test_a_fifo_as_transcript_does_not_hang_the_hook(daemons: list[DaemonProcess],
                                                     short_tmp: Path) -> None:
    """A session save naming a FIFO (no writer) is answered; the daemon goes on serving."""
    (short_tmp / "home").mkdir()
    daemon = start(daemons, DaemonProcess(short_tmp / "home"))
    fifo = short_tmp / "transcript.jsonl"
    os.mkfifo(fifo)
    answer = daemon.client.request("POST", "/hooks/PreCompact", {
        "session_id": "s1", "hook_event_name": "PreCompact", "cwd": str(short_tmp),
        "transcript_path": str(fifo)})
    assert answer == {} or isinstance(answer, dict)
    assert daemon.client.request("GET", "/v1/health")["status"]
