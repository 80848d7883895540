"""Where memlane keeps its state, socket and token. Standard library only: the CLI imports it.

``MEMLANE_HOME`` puts everything under one directory (tests, tools). Otherwise state follows
systemd's ``$STATE_DIRECTORY`` or the XDG state dir, and the socket ``$RUNTIME_DIRECTORY`` or
``$XDG_RUNTIME_DIR``.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import NamedTuple

DEFAULT_PORT = 52525
EXIT_UNSAFE_STATE = 8  # the daemon's exit code when its state directory is not its own


class UnsafeStateDir(Exception):
    """The state (or runtime) directory is a symlink, not a directory, or another user's."""

    exit_code = EXIT_UNSAFE_STATE


class Paths(NamedTuple):
    """Every path the daemon and its clients agree on (a named tuple: the CLI's quick path
    does not pay for importing dataclasses)."""

    home: Path
    runtime: Path
    config: Path

    @property
    def log_dir(self) -> Path:
        return self.home / "log"

    @property
    def projections_dir(self) -> Path:
        return self.home / "projections"

    @property
    def sqlite(self) -> Path:
        return self.projections_dir / "memlane.sqlite3"

    @property
    def vectors(self) -> Path:
        return self.projections_dir / "vectors.usearch"

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def token(self) -> Path:
        return self.home / "token"

    @property
    def hook_token(self) -> Path:
        """The credential of HTTP hooks: valid for ``/hooks/*`` only."""
        return self.home / "hook-token"

    @property
    def socket(self) -> Path:
        return self.runtime / "memlane.sock"

    @property
    def pid_file(self) -> Path:
        return self.runtime / "memlane.pid"

    @property
    def daemon_log(self) -> Path:
        return self.home / "daemon.log"


def resolve_paths(env: dict[str, str] | None = None) -> Paths:
    """The paths for this environment (``os.environ`` by default)."""
    env = dict(os.environ) if env is None else env
    if home_override := env.get("MEMLANE_HOME"):
        home = Path(home_override).expanduser().absolute()
        return Paths(home=home, runtime=home / "run", config=home / "config.toml")
    user_home = Path(env.get("HOME", str(Path.home())))
    state = env.get("STATE_DIRECTORY") or str(
        Path(env.get("XDG_STATE_HOME") or user_home / ".local" / "state") / "memlane")
    runtime = env.get("RUNTIME_DIRECTORY") or (
        str(Path(env["XDG_RUNTIME_DIR"]) / "memlane") if env.get("XDG_RUNTIME_DIR")
        else str(Path(state) / "run"))
    config = Path(env.get("XDG_CONFIG_HOME") or user_home / ".config") / "memlane" / "config.toml"
    return Paths(home=Path(state), runtime=Path(runtime), config=config)


def ensure_private_dir(path: Path) -> None:
    """Create ``path`` 0700, or make sure the existing one is a real directory of this user's
    and make it 0700 without following a link; raise :class:`UnsafeStateDir` otherwise."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode):
        raise UnsafeStateDir(f"{path} is a symlink; point MEMLANE_HOME (or the state "
                             f"directory) at the real directory {os.path.realpath(path)}")
    if not stat.S_ISDIR(info.st_mode):
        raise UnsafeStateDir(f"{path} is not a directory; move it away or set MEMLANE_HOME")
    if info.st_uid != os.getuid():
        raise UnsafeStateDir(f"{path} belongs to uid {info.st_uid}, not to you "
                             f"(uid {os.getuid()}); use a directory of your own")
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        os.fchmod(fd, 0o700)
    finally:
        os.close(fd)
