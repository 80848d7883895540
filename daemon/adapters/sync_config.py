"""Sync settings (``sync.toml`` in the state directory, written by ``memlane sync enable``)
and portable project ids. Standard library and tomli-w only: the CLI imports it.

A portable project id is the same on every machine: ``c`` + the repository's root commit
(the smallest, if there are several roots), or, for a repository without commits, ``u`` + a
digest of its normalised ``origin`` URL. Both are safe as a NATS subject token.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from memlane.daemon.adapters.files import write_atomic

GLOBAL = "global"
_TOKEN = re.compile(r"[a-z0-9_-]{1,64}")


class SyncConfigError(Exception):
    """Sync cannot be set up as asked; the message says what to do."""

    code = "bad_sync_config"


@dataclass(frozen=True)
class SyncConfig:
    """Where to sync, as which team, and which local projects (path -> portable id)."""

    url: str
    team: str
    creds: str | None = None
    replicas: int = 1
    projects: dict[str, str] = field(default_factory=dict)


def sync_path(home: Path) -> Path:
    return home / "sync.toml"


def read_sync_config(home: Path) -> SyncConfig | None:
    """The sync settings, or None when sync was never enabled."""
    try:
        with sync_path(home).open("rb") as handle:
            values = tomllib.load(handle)
    except FileNotFoundError:
        return None
    except tomllib.TOMLDecodeError as exc:
        raise SyncConfigError(f"{sync_path(home)}: not valid TOML: {exc}") from None
    try:
        return SyncConfig(url=str(values["url"]), team=check_token("team", values["team"]),
                          creds=values.get("creds"), replicas=int(values.get("replicas", 1)),
                          projects={str(k): check_token("project id", v)
                                    for k, v in values.get("projects", {}).items()})
    except (KeyError, TypeError, ValueError) as exc:
        raise SyncConfigError(f"{sync_path(home)}: {exc}; run `memlane sync enable` "
                              "again") from None


def write_sync_config(home: Path, config: SyncConfig) -> None:
    import tomli_w

    values: dict[str, object] = {"url": config.url, "team": config.team,
                                 "replicas": config.replicas, "projects": config.projects}
    if config.creds:
        values["creds"] = config.creds
    write_atomic(sync_path(home), tomli_w.dumps(values).encode(), mode=0o600)


def check_token(name: str, value: object) -> str:
    if not isinstance(value, str) or not _TOKEN.fullmatch(value):
        raise SyncConfigError(f"{name} {value!r}: use 1-64 of a-z, 0-9, '_' and '-'")
    return value


def portable_id(project: str) -> str:
    """The portable id of a local project (a git root, or ``global``)."""
    if project == GLOBAL:
        return GLOBAL
    roots = _git(project, "rev-list", "--max-parents=0", "HEAD").split()
    if roots:
        return "c" + min(roots)
    url = _git(project, "config", "--get", "remote.origin.url").strip()
    if url:
        return "u" + hashlib.sha256(normalise_url(url).encode()).hexdigest()[:40]
    raise SyncConfigError(f"{project} has no commit and no origin remote: commit once (or "
                          "add the remote) so every machine can name the project the same way")


def normalise_url(url: str) -> str:
    """``host/owner/repo`` for the forms one remote takes (https, ssh, scp-like, .git)."""
    text = url.strip().lower().removesuffix("/").removesuffix(".git")
    scheme = re.match(r"^[a-z+]+://", text)
    text = re.sub(r"^[^@/]+@", "", text[scheme.end():] if scheme else text)
    host, _, path = text.partition("/" if scheme else ":")
    return f"{host.split(':')[0]}/{path.lstrip('/')}"


def _git(cwd: str, *args: str) -> str:
    try:
        done = subprocess.run(["git", "-C", cwd, *args], capture_output=True, text=True,
                              timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SyncConfigError(f"cannot run git in {cwd}: {exc}") from None
    return done.stdout if done.returncode == 0 else ""


class OutboxCursor:
    """The outbox cursor file (``sync/outbox.json``): last published seq and clock stamp."""

    def __init__(self, home: Path) -> None:
        self.path = home / "sync" / "outbox.json"

    def read(self) -> tuple[int, int]:
        try:
            values = json.loads(self.path.read_text())
        except FileNotFoundError:
            return 0, 0
        return int(values["seq"]), int(values["hlc"])

    def write(self, seq: int, hlc: int) -> None:
        write_atomic(self.path, json.dumps({"seq": seq, "hlc": hlc}).encode(), mode=0o600)
