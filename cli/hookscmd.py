"""``memlane hooks install|uninstall|status``: memlane's hooks in Claude Code's settings, and
``memlane hook <Event>``: the hook relay that ``hook.sh`` falls back to without curl.

User scope is ``~/.claude/settings.json`` (``$CLAUDE_CONFIG_DIR/settings.json`` when set);
project scope is ``.claude/settings.json`` at the project root (the git root, else the working
directory). The editing rules are in :mod:`memlane.cli.claude_settings`.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from memlane.cli.installation import memlane_executable
from memlane.cli.render import emit, fail
from memlane.daemon.adapters.paths import Paths, resolve_paths
from memlane.daemon.adapters.git_project import GLOBAL, detect_project

if TYPE_CHECKING:  # imported where used: `memlane hook` and every other command skip it
    from memlane.cli import claude_settings as cs

hooks_app = typer.Typer(help="Claude Code hooks: briefings, recall and session saves.",
                        no_args_is_help=True)
ProjectScope = Annotated[bool, typer.Option(
    "--project/--user", help="The project's .claude/settings.json, or the user's (default).")]
HttpMode = Annotated[bool, typer.Option(
    "--http/--command", help="HTTP hooks with $MEMLANE_HOOK_TOKEN (valid for hooks only; "
                             "the client cannot verify the server first), or command hooks "
                             "(default; no environment needed).")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Show the change, write nothing.")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON (default when piped).")]


def hook_command(
        event: Annotated[str, typer.Argument(help="The hook event, e.g. UserPromptSubmit.")],
        timeout: Annotated[float, typer.Option(help="Seconds to wait for the daemon.")] = 2.0,
) -> None:
    """Relay a Claude Code hook (input on stdin) to the daemon; print its output, if any."""
    from memlane.cli.quick import relay_hook

    relay_hook(event, timeout)


@hooks_app.command()
def install(project: ProjectScope = False, http: HttpMode = False, dry_run: DryRun = False,
            as_json: JsonFlag = False) -> None:
    """Add memlane's hooks to Claude Code's settings (idempotent; replaces the other mode's)."""
    from memlane.cli import claude_settings as cs

    paths = resolve_paths()
    path, target = settings_path(project=project), _target(paths, http=http)
    mode: cs.Mode = "http" if http else "command"
    entries = cs.our_entries(mode, target)
    action = _edit(lambda: cs.install_file(path, entries, markers=target.markers,
                                           state=paths.home, dry_run=dry_run))
    result: dict[str, Any] = {"action": action, "path": str(path), "mode": mode,
                              "dry_run": dry_run, "hooks": entries}
    if project and not dry_run:
        result["gitignore"] = _edit(lambda: ignore_in_git(path))
    text = f"memlane hooks ({mode}) {_VERBS[action]} {path}{_dry(dry_run)}"
    if http:
        result["shell_profile"] = _profile_line(paths.hook_token)
        text += ("\nClaude Code sends the hook token from the environment; add this to your shell "
                 f"profile:\n  {result['shell_profile']}")
    emit(result, as_json=as_json, text=text)


@hooks_app.command()
def uninstall(project: ProjectScope = False, dry_run: DryRun = False,
              as_json: JsonFlag = False) -> None:
    """Remove memlane's hooks, and nothing else (the original file returns when unchanged)."""
    from memlane.cli import claude_settings as cs

    paths, path = resolve_paths(), settings_path(project=project)
    action = _edit(lambda: cs.uninstall_file(path, markers=cs.script_markers(),
                                             state=paths.home, dry_run=dry_run))
    emit({"action": action, "path": str(path), "dry_run": dry_run}, as_json=as_json,
         text=f"memlane hooks {_VERBS[action]} {path}{_dry(dry_run)}")


@hooks_app.command()
def status(as_json: JsonFlag = False) -> None:
    """Which Claude Code settings files hold memlane's hooks."""
    rows = [status_row(settings_path(project=scope)) for scope in (False, True)]
    lines = [f"{row['path']}: " + (", ".join(f"{e} ({t})" for e, t in row["hooks"].items())
                                   or "no memlane hooks") for row in rows]
    emit({"settings": rows}, as_json=as_json, text="\n".join(lines))


def settings_path(*, project: bool) -> Path:
    if project:
        # The local file: the hooks name this machine's paths, which a shared file must not.
        root = detect_project(Path.cwd())
        return (Path.cwd() if root == GLOBAL else Path(root)) / ".claude" / "settings.local.json"
    config_dir = os.environ.get("CLAUDE_CONFIG_DIR")
    return (Path(config_dir) if config_dir else Path.home() / ".claude") / "settings.json"


def _target(paths: Paths, *, http: bool) -> cs.Target:
    from memlane.cli import claude_settings as cs

    if not cs.HOOK_SCRIPT.is_file():
        fail(f"{cs.HOOK_SCRIPT} is missing; reinstall memlane")
    return cs.Target(script=cs.HOOK_SCRIPT, socket=paths.socket.absolute(),
                     memlane=memlane_executable("hooks install"), port=_http_port(paths) if http else 0)


def _http_port(paths: Paths) -> int:
    """The daemon's configured TCP port; HTTP hooks need one that does not change."""
    from memlane.daemon.adapters.settings import ConfigError, Settings

    try:
        port: int = Settings.load(paths.config).port
    except ConfigError as exc:
        fail(str(exc))
    if port == 0:
        fail("the daemon's port is 0 (a new one at every start); set a fixed `port` in "
             f"{paths.config} or use --command")
    return port


def ignore_in_git(path: Path) -> str:
    """Add the local settings file (it names this machine's paths) to the repository's
    .gitignore unless git ignores it already; what was done."""
    root = path.parent.parent
    if not (root / ".git").exists():
        return "not a git repository"
    relative = path.relative_to(root).as_posix()
    gitignore = root / ".gitignore"
    text = gitignore.read_text(encoding="utf-8") if gitignore.exists() else ""
    if relative in text.splitlines() or _git_ignores(root, relative):
        return "already ignored"
    separator = "" if not text or text.endswith("\n") else "\n"
    gitignore.write_text(f"{text}{separator}{relative}\n", encoding="utf-8")
    return f"added {relative} to {gitignore}"


def _git_ignores(root: Path, relative: str) -> bool:
    """Whether git ignores the path (any rule, global excludes included); False without git."""
    try:
        return subprocess.run(["git", "-C", str(root), "check-ignore", "-q", relative],
                              capture_output=True, timeout=10, check=False).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def status_row(path: Path) -> dict[str, Any]:
    from memlane.cli import claude_settings as cs

    try:
        settings, _ = cs.parse_settings(cs.read_bytes(path))
    except (cs.SettingsError, UnicodeDecodeError) as exc:
        return {"path": str(path), "hooks": {}, "error": str(exc)}
    found = cs.ours_in(settings, cs.script_markers())
    return {"path": str(path), "hooks": {event: "+".join(h["type"] for h in handlers)
                                         for event, handlers in found.items()}}


def _edit(change: Callable[[], str]) -> str:
    from memlane.cli.claude_settings import SettingsError

    try:
        return change()
    except (SettingsError, OSError) as exc:
        raise SystemExit(f"memlane: {exc}") from None


def _profile_line(hook_token: Path) -> str:
    """The hook-only token (created by the daemon's first start), never the main token."""
    return f'export MEMLANE_HOOK_TOKEN="$(cat {shlex.quote(str(hook_token))})"'


def _dry(dry_run: bool) -> str:
    return " (dry run: nothing written)" if dry_run else ""


_VERBS = {"added": "added to", "updated": "updated in", "unchanged": "already in",
          "removed": "removed from", "restored": "removed; original restored at",
          "absent": "not in"}
