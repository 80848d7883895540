"""memlane's hooks in Claude Code's ``settings.json``: which entries, merged in and taken out.

The functions on dicts are pure; the ``*_file`` functions at the end read and write. Invariants:
only handlers that ``is_ours`` recognises are added or removed; everything else keeps its value
and its place; a matcher group, an event key or ``hooks`` itself disappears only when removing
ours emptied it. No token is ever written: HTTP hooks name ``$MEMLANE_HOOK_TOKEN`` (the
hook-only credential, valid for ``/hooks/*``) and Claude Code fills it from the environment.

The first install keeps the file's bytes in memlane's state directory; an uninstall that leaves
exactly that content puts those bytes back, so an untouched file returns byte-identical.
"""

from __future__ import annotations

import copy
import hashlib
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from memlane.cli import jsonfile
from memlane.cli.jsonfile import Layout, read_bytes
from memlane.daemon.adapters.files import write_atomic

Mode = Literal["command", "http"]
Settings = dict[str, Any]

HOOK_SCRIPT = Path(__file__).with_name("hook.sh")
SCRIPT_MARKER = "memlane/cli/hook.sh"  # where an installed wheel puts the script
TOKEN_ENV = "MEMLANE_HOOK_TOKEN"
_OUR_ENVS = (TOKEN_ENV, "MEMLANE_TOKEN")  # the main token, named by installs before the hook token
_OUR_URL = re.compile(r"^http://127\.0\.0\.1:\d{1,5}/hooks/[A-Za-z]+$")

# Timeouts in seconds, each above the script's own deadline for the event (hook.sh) so the
# script gives up first and exits cleanly. Stop and PostToolUse are left out: the daemon has
# nothing to say to them, and a hook per tool call would only cost time.
COMMAND_TIMEOUTS = {"SessionStart": 5, "UserPromptSubmit": 5, "PreCompact": 10, "SessionEnd": 2}
# SessionStart takes no http handler, so it stays a command hook in HTTP mode too.
HTTP_TIMEOUTS = {"UserPromptSubmit": 3, "PreCompact": 5, "SessionEnd": 1}


class SettingsError(Exception):
    """A settings file memlane cannot edit safely; nothing was changed."""


@dataclass(frozen=True)
class Target:
    """What our hooks point at."""

    script: Path
    socket: Path
    memlane: Path
    port: int

    @property
    def markers(self) -> tuple[str, ...]:
        return script_markers(self.script)


def script_markers(script: Path = HOOK_SCRIPT) -> tuple[str, ...]:
    """What a command of ours contains (an editable install runs the checkout's script)."""
    return SCRIPT_MARKER, str(script)


def command_handler(event: str, target: Target) -> dict[str, Any]:
    # Through sh, so a copy of the script that lost its exec bit still runs.
    argv = ["/bin/sh", str(target.script), event, str(target.socket), str(target.memlane)]
    return {"type": "command", "command": shlex.join(argv),
            "timeout": COMMAND_TIMEOUTS[event]}


def http_handler(event: str, port: int) -> dict[str, Any]:
    return {"type": "http", "url": f"http://127.0.0.1:{port}/hooks/{event}",
            "headers": {"Authorization": f"Bearer ${TOKEN_ENV}"},
            "allowedEnvVars": [TOKEN_ENV], "timeout": HTTP_TIMEOUTS[event]}


def our_entries(mode: Mode, target: Target) -> dict[str, dict[str, Any]]:
    """Our handler for each event we hook, in ``mode``."""
    if mode == "command":
        return {event: command_handler(event, target) for event in COMMAND_TIMEOUTS}
    return {"SessionStart": command_handler("SessionStart", target),
            **{event: http_handler(event, target.port) for event in HTTP_TIMEOUTS}}


def is_ours(handler: Any, markers: tuple[str, ...]) -> bool:
    """Whether a handler is memlane's: our script, or our URL with our token variable."""
    if not isinstance(handler, dict):
        return False
    command, url = handler.get("command"), handler.get("url")
    if handler.get("type") == "command" and isinstance(command, str):
        return any(_runs_script(word, markers) for word in _words(command))
    allowed = handler.get("allowedEnvVars")
    return (handler.get("type") == "http" and isinstance(url, str)
            and bool(_OUR_URL.match(url)) and isinstance(allowed, list)
            and any(env in allowed for env in _OUR_ENVS))


def _words(command: str) -> list[str]:
    try:
        return shlex.split(command)
    except ValueError:  # unbalanced quotes: not a command we wrote
        return []


def _runs_script(word: str, markers: tuple[str, ...]) -> bool:
    """An argument that is our script by its absolute path (installed, or this checkout's);
    a user's own command that merely mentions a relative path like it is not ours."""
    return word.startswith("/") and any(
        word == marker or word.endswith("/" + marker) for marker in markers)


def ours_in(settings: Settings, markers: tuple[str, ...]) -> dict[str, list[dict[str, Any]]]:
    """Our handlers per event, in file order."""
    found: dict[str, list[dict[str, Any]]] = {}
    for event, groups in _events(settings):
        for group in groups:
            for handler in _handlers(group):
                if is_ours(handler, markers):
                    found.setdefault(event, []).append(handler)
    return found


def install_hooks(settings: Settings, entries: dict[str, dict[str, Any]],
                  markers: tuple[str, ...]) -> Settings:
    """``settings`` with exactly ``entries`` as ours; the same object when already so."""
    check_shape(settings)
    if ours_in(settings, markers) == {event: [h] for event, h in entries.items()}:
        return settings
    result = copy.deepcopy(settings)
    hooks = result.setdefault("hooks", {})
    emptied = _strip_ours(hooks, markers)
    for event, handler in entries.items():
        hooks.setdefault(event, []).append({"hooks": [handler]})
    for event in emptied - entries.keys():
        del hooks[event]
    return result


def remove_hooks(settings: Settings, markers: tuple[str, ...]) -> Settings:
    """A copy of ``settings`` without our handlers (see the module's invariants)."""
    result = copy.deepcopy(settings)
    hooks = result.get("hooks")
    if not isinstance(hooks, dict) or not hooks:
        return result
    for event in _strip_ours(hooks, markers):
        del hooks[event]
    if not hooks:
        del result["hooks"]
    return result


def _strip_ours(hooks: dict[str, Any], markers: tuple[str, ...]) -> set[str]:
    """Remove our handlers in place; the events that removing them left with no group."""
    emptied = set()
    for event, groups in hooks.items():
        if not isinstance(groups, list):
            continue
        kept = [g for g in (_strip_group(group, markers) for group in groups) if g is not None]
        hooks[event] = kept
        if groups and not kept:
            emptied.add(event)
    return emptied


def check_shape(settings: Settings) -> None:
    """Refuse a ``hooks`` value we would have to guess how to edit."""
    hooks = settings.get("hooks", {})
    if not isinstance(hooks, dict):
        raise SettingsError('"hooks" is not a JSON object')
    for event, groups in hooks.items():
        if not isinstance(groups, list):
            raise SettingsError(f'"hooks"."{event}" is not a JSON array')


def _events(settings: Settings) -> list[tuple[str, list[Any]]]:
    hooks = settings.get("hooks")
    if not isinstance(hooks, dict):
        return []
    return [(event, groups) for event, groups in hooks.items() if isinstance(groups, list)]


def _handlers(group: Any) -> list[Any]:
    handlers = group.get("hooks") if isinstance(group, dict) else None
    return handlers if isinstance(handlers, list) else []


def _strip_group(group: Any, markers: tuple[str, ...]) -> Any:
    """The group without our handlers; None when it held only ours."""
    handlers = _handlers(group)
    kept = [h for h in handlers if not is_ours(h, markers)]
    if len(kept) == len(handlers):
        return group
    return {**group, "hooks": kept} if kept else None


# --- files ---------------------------------------------------------------------------------


def parse_settings(data: bytes | None) -> tuple[Settings, Layout]:
    """The settings in a file's bytes (None: no file) and their layout."""
    try:
        return jsonfile.parse(data)
    except jsonfile.JsonFileError as exc:
        raise SettingsError(str(exc)) from None


render_settings = jsonfile.render


# --- backups -------------------------------------------------------------------------------
#
# One backup per settings path: ``<sha256 of the path>`` holds the bytes as they were before
# the first install, or ``<sha256>.absent`` says there was no file.


def backup_paths(state: Path, settings_path: Path) -> tuple[Path, Path]:
    name = hashlib.sha256(str(settings_path.absolute()).encode()).hexdigest()
    folder = state / "claude-settings-backup"
    return folder / name, folder / f"{name}.absent"


def save_backup(state: Path, settings_path: Path, original: bytes | None) -> None:
    copy_path, absent = backup_paths(state, settings_path)
    copy_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    drop_backup(state, settings_path)
    # 0600: settings.json often carries API keys in its "env".
    write_atomic(copy_path if original is not None else absent, original or b"", mode=0o600)


def load_backup(state: Path, settings_path: Path) -> tuple[bool, bytes | None]:
    """Whether there is a backup, and the original bytes (None: there was no file)."""
    copy_path, absent = backup_paths(state, settings_path)
    if absent.exists():
        return True, None
    data = read_bytes(copy_path)
    return data is not None, data


def drop_backup(state: Path, settings_path: Path) -> None:
    for path in backup_paths(state, settings_path):
        path.unlink(missing_ok=True)


# --- install / uninstall -------------------------------------------------------------------


def install_file(path: Path, entries: dict[str, dict[str, Any]], *,
                 markers: tuple[str, ...], state: Path, dry_run: bool = False) -> str:
    """Put our entries in the settings file; the action: added, updated or unchanged."""
    original = read_bytes(path)
    settings, layout = _parse_file(path, original)
    had_ours = bool(ours_in(settings, markers))
    merged = install_hooks(settings, entries, markers)
    if merged is settings:
        return "unchanged"
    if not dry_run:
        if not had_ours:  # the file as the user had it; a backup from before is stale
            save_backup(state, path, original)
        write_atomic(path, render_settings(merged, layout))
    return "updated" if had_ours else "added"


def uninstall_file(path: Path, *, markers: tuple[str, ...], state: Path,
                   dry_run: bool = False) -> str:
    """Take our entries out; the action: removed, restored (original bytes back) or absent."""
    original = read_bytes(path)
    settings, layout = _parse_file(path, original)
    remaining = remove_hooks(settings, markers)
    if remaining == settings:
        if not dry_run:
            drop_backup(state, path)
        return "absent"
    restored, data = _restoration(state, path, remaining)
    if not dry_run:
        write_atomic(path, data if restored else render_settings(remaining, layout))
        drop_backup(state, path)
    return "restored" if restored else "removed"


def _restoration(state: Path, path: Path, remaining: Settings) -> tuple[bool, bytes | None]:
    """The backup's bytes, when what remains is what the backup holds."""
    exists, data = load_backup(state, path)
    if not exists:
        return False, None
    try:
        before, _ = parse_settings(data)
    except (SettingsError, UnicodeDecodeError):
        return False, None
    return before == remaining, data


def _parse_file(path: Path, data: bytes | None) -> tuple[Settings, Layout]:
    try:
        settings, layout = parse_settings(data)
        check_shape(settings)
    except (SettingsError, UnicodeDecodeError) as exc:
        raise SettingsError(f"{path}: {exc}; fix it first, nothing was changed") from None
    return settings, layout
