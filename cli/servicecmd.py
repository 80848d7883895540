"""``memlane service install|uninstall|start|stop|status``: the daemon under the user's service
manager, a systemd user unit on Linux and a launchd agent on macOS.

``install`` writes the definition (see :mod:`memlane.cli.serviceunits`) for the ``memlane``
executable that runs it and a private env file for secrets, then asks the manager to enable
and start the service. A manager that cannot be reached (no user bus in a container, an ssh
session on a Mac) is reported with what to do; the written files stay.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from memlane.cli.installation import memlane_executable
from memlane.cli.render import emit, fail
from memlane.cli.serviceunits import Answer, Command, Launchd, Manager, Systemd
from memlane.daemon.adapters.files import write_atomic

service_app = typer.Typer(help="Run the daemon under systemd (Linux) or launchd (macOS).",
                          no_args_is_help=True)
DryRun = Annotated[bool, typer.Option("--dry-run", help="Show what would be written and run.")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON (default when piped).")]

PROBE_TIMEOUT = 15.0
ENV_FILE_TEXT = """\
# Environment of the memlane service, read by systemd (EnvironmentFile=) or by the launchd
# agent's shell: one KEY=value per line, without $, quotes or backslashes (the two readers
# differ on those). It holds secrets: keep it private (chmod 600).
# GEMINI_API_KEY=
"""


@service_app.command()
def install(dry_run: DryRun = False, as_json: JsonFlag = False) -> None:
    """Write the service definition for this memlane, then enable and start it (idempotent)."""
    manager = _manager()
    executable = str(memlane_executable("service install"))
    try:
        content = manager.render(executable)
    except ValueError as exc:
        fail(str(exc))
    action = _action(manager.path, content)
    enable = manager.enable(changed=action != "unchanged")
    report: dict[str, Any] = {"manager": manager.name, "path": str(manager.path),
                              "action": action, "executable": executable,
                              "env_file": str(manager.env_file)}
    if dry_run:
        commands = [shlex.join(command.argv) for command in enable]
        emit({**report, "dry_run": True, "content": content, "commands": commands},
             as_json=as_json, text=f"would write {manager.path}:\n\n{content}\nthen run:\n  "
                                   + "\n  ".join(commands))
        return
    try:
        _write_definition(manager, content)
        report["env_file_created"] = _create_env_file(manager.env_file)
    except OSError as exc:
        fail(f"could not write {exc.filename or manager.path}: {exc.strerror or exc}")
    report["warnings"] = _warnings(manager)
    report |= _apply(manager, enable)
    if report["reachable"] and ("failed" in report or not report["state"]["running"]):
        report["hint"] = manager.not_running_hint()
    _finish(manager, report, as_json=as_json, headline=f"{manager.path}: {action}")


@service_app.command()
def uninstall(as_json: JsonFlag = False) -> None:
    """Stop and disable the service and remove its definition (the env file stays)."""
    manager = _manager()
    report: dict[str, Any] = {"manager": manager.name, "path": str(manager.path)}
    report |= _apply(manager, manager.disable())
    if not report["reachable"]:
        # The service may be enabled, even running, in a session this one cannot see:
        # deleting its definition would orphan it.
        _finish(manager, {**report, "removed": False}, as_json=as_json,
                headline=f"nothing removed; without a manager `rm {manager.path}` does it")
        raise SystemExit(2)
    report["removed"] = manager.path.exists()
    try:
        manager.path.unlink(missing_ok=True)
    except OSError as exc:
        fail(f"could not remove {manager.path}: {exc.strerror or exc}")
    for command in manager.forget():
        _call(command)
    headline = f"removed {manager.path}" if report["removed"] else f"{manager.path} was absent"
    _finish(manager, report, as_json=as_json,
            headline=f"{headline}; {manager.env_file} is kept (it may hold your keys)")


@service_app.command()
def start(as_json: JsonFlag = False) -> None:
    """Start the installed service."""
    manager = _manager()
    _report_state(manager, (manager.start(),), as_json=as_json)


@service_app.command()
def stop(as_json: JsonFlag = False) -> None:
    """Stop the service (it starts again at the next login)."""
    manager = _manager()
    _report_state(manager, (manager.stop(),), as_json=as_json)


@service_app.command()
def status(as_json: JsonFlag = False) -> None:
    """The service manager's view: state, main pid, last exit status."""
    _report_state(_manager(), (), as_json=as_json)


def _report_state(manager: Manager, commands: Sequence[Command], *, as_json: bool) -> None:
    """Run ``commands`` and report the service's state; exit 2 when the manager cannot be
    reached."""
    report: dict[str, Any] = {"manager": manager.name, "path": str(manager.path),
                              "installed": manager.path.exists()}
    report |= _apply(manager, commands)
    _finish(manager, report, as_json=as_json, headline=f"memlane {manager.name} service")
    if not report["reachable"]:
        raise SystemExit(2)


def _manager() -> Manager:
    if sys.platform == "darwin":
        return Launchd(home=Path.home(), uid=os.getuid())
    if not sys.platform.startswith("linux"):
        fail("memlane service knows systemd (Linux) and launchd (macOS); use `memlane up`")
    config_home = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Systemd(config_home=Path(config_home))


def _action(path: Path, content: str) -> str:
    """What writing ``content`` to ``path`` does: created, updated or unchanged."""
    try:
        return "unchanged" if path.read_text(encoding="utf-8") == content else "updated"
    except FileNotFoundError:
        return "created"


def _write_definition(manager: Manager, content: str) -> None:
    """Replace the definition atomically, 0644 (it holds no secrets), and make the log
    directory the manager will not create."""
    write_atomic(manager.path, content.encode(), mode=0o644)
    if manager.log_dir is not None:
        manager.log_dir.mkdir(parents=True, exist_ok=True, mode=0o700)


def _create_env_file(path: Path) -> bool:
    """Create the private env file (0600) unless it exists; True when created."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False  # the user's keys may be in it
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(ENV_FILE_TEXT)
    return True


def _warnings(manager: Manager) -> list[str]:
    warnings = []
    if mode := manager.env_file.stat().st_mode & 0o077:
        warnings.append(f"{manager.env_file} is readable by others (mode "
                        f"{0o600 | mode:04o}); `chmod 600` it: it holds secrets")
    if home := os.environ.get("MEMLANE_HOME"):
        warnings.append(f"MEMLANE_HOME is set here but the service does not see it; add "
                        f"MEMLANE_HOME={home} to {manager.env_file} if it should use it")
    return warnings


def _apply(manager: Manager, commands: Sequence[Command]) -> dict[str, Any]:
    """Run ``commands`` in order, stopping at the first required one that fails; then ask
    for the service's state."""
    probe = _call(manager.probe(), timeout=PROBE_TIMEOUT)
    if not probe.ok:
        return {"reachable": False, "error": probe.error or "no answer", "hint": manager.hint()}
    outcome: dict[str, Any] = {"reachable": True}
    for command in commands:
        answer = _call(command)
        if command.required and not answer.ok:
            outcome |= {"failed": shlex.join(command.argv), "error": answer.error}
            break
    state = _call(manager.status(), timeout=PROBE_TIMEOUT)
    return outcome | {"state": manager.parse_status(state)}


def _call(command: Command, timeout: float | None = None) -> Answer:
    # No timeout by default: systemd bounds a start by the unit's TimeoutStartSec=.
    try:
        done = subprocess.run(command.argv, check=False, capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=timeout)
    except FileNotFoundError:
        return Answer(ok=False, output="", error=f"{command.argv[0]} is not installed")
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Answer(ok=False, output="", error=str(exc))
    return Answer(ok=done.returncode == 0, output=done.stdout, error=done.stderr.strip())


def _finish(manager: Manager, report: dict[str, Any], *, as_json: bool, headline: str) -> None:
    """Print the report; exit 1 when a manager command failed."""
    lines = [headline]
    if not report["reachable"]:
        lines.append(f"the {manager.name} service manager could not be reached: "
                     f"{report['error']}")
    elif "failed" in report:
        lines.append(f"`{report['failed']}` failed: {report['error']}")
    if state := report.get("state"):
        lines.append("service: " + _describe(state))
    if hint := report.get("hint"):
        lines.append(hint)
    lines += [f"warning: {warning}" for warning in report.get("warnings", ())]
    emit(report, as_json=as_json, text="\n".join(lines))
    if "failed" in report:
        raise SystemExit(1)


def _describe(state: dict[str, Any]) -> str:
    words = state.get("active_state") or state.get("state") or "unknown"
    if state.get("sub_state"):
        words += f" ({state['sub_state']})"
    if state.get("pid"):
        words += f", pid {state['pid']}"
    if state.get("status_text"):
        words += f": {state['status_text']}"
    return words
