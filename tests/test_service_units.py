"""The systemd unit and launchd agent that `memlane service install` writes, and the install,
uninstall and status commands against a missing and a stand-in service manager."""

from __future__ import annotations

import json
import os
import plistlib
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from memlane.cli.serviceunits import (
    LAUNCHD_PLIST,
    SYSTEMD_UNIT,
    Launchd,
    exec_word,
    parse_launchctl_print,
    parse_systemctl_show,
    render_plist,
    render_unit,
)

from tests.tools import missing, require

ROOT = Path(__file__).parents[1]
MEMLANE = str(Path(sys.executable).parent / "memlane")
SHOW_OUTPUT = """\
LoadState=loaded
UnitFileState=enabled
ActiveState=active
SubState=running
MainPID=4242
ExecMainStatus=0
Result=success
NRestarts=1
StatusText=ready: 12 events, 12 vectors
"""


@pytest.fixture
def analyze(tmp_path: Path) -> Any:
    """``systemd-analyze --user verify`` in a private HOME and runtime directory."""
    binary = require("systemd-analyze", "Debian package systemd")
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    # --user needs a runtime directory, even to verify; nothing else of this machine leaks in.
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path / "home"),
           "XDG_RUNTIME_DIR": str(runtime), "LANG": "C.UTF-8"}

    def verify(unit: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run([binary, "--user", "verify", str(unit)], check=False, env=env,
                              capture_output=True, text=True, timeout=60)

    trivial = tmp_path / "trivial.service"
    trivial.write_text("[Service]\nExecStart=/bin/true\n")
    if (probe := verify(trivial)).returncode != 0:
        missing(f"systemd-analyze cannot verify units here: {probe.stderr.strip()}")
    return verify


def test_the_rendered_unit_verifies_without_a_single_warning(analyze: Any,
                                                             tmp_path: Path) -> None:
    """systemd-analyze accepts the unit for the real memlane executable and says nothing."""
    unit = tmp_path / "memlane.service"
    unit.write_text(render_unit(MEMLANE))
    result = analyze(unit)
    assert (result.returncode, result.stderr, result.stdout) == (0, "", "")


def test_an_executable_path_with_spaces_percent_and_dollar_reaches_systemd_intact(
        analyze: Any, tmp_path: Path) -> None:
    """The command is quoted and its % escaped, so systemd finds exactly that file."""
    odd = tmp_path / "my 100% $tools" / "memlane"
    odd.parent.mkdir()
    odd.write_text("#!/bin/sh\n")
    odd.chmod(0o755)
    unit = tmp_path / "memlane.service"
    unit.write_text(render_unit(str(odd)))
    result = analyze(unit)
    assert (result.returncode, result.stderr) == (0, "")


@pytest.mark.parametrize("path", ["memlane", "/opt/it's/memlane", '/opt/a"b/memlane',
                                  "/opt/a\\b/memlane", "/opt/a\nb/memlane"])
def test_paths_systemd_cannot_run_are_refused_with_a_reason(path: str) -> None:
    """Relative paths and quotes, backslashes or control characters are refused up front."""
    with pytest.raises(ValueError, match=r"absolute|systemd cannot run"):
        exec_word(path)


def test_the_repository_copies_are_the_templates() -> None:
    """systemd/ holds exactly what the installer renders from, placeholders included."""
    assert (ROOT / "systemd" / "memlane.service").read_text() == SYSTEMD_UNIT
    assert (ROOT / "systemd" / "dev.memlane.plist").read_text() == LAUNCHD_PLIST
    assert "ExecStart=@MEMLANE@ daemon run" in SYSTEMD_UNIT


def test_the_plist_names_the_executable_and_restarts_only_after_a_crash() -> None:
    """The agent runs memlane from absolute paths, at load, and again after a failed exit."""
    agent = plistlib.loads(render_plist("/opt/memlane & co/bin/memlane", "/Users/ada").encode())
    assert agent["Label"] == "dev.memlane"
    arguments = agent["ProgramArguments"]
    assert arguments[0].startswith("/") and arguments[-1] == "/opt/memlane & co/bin/memlane"
    assert arguments[-2] == "/Users/ada/.config/memlane/env"
    assert agent["RunAtLoad"] is True and agent["KeepAlive"] == {"SuccessfulExit": False}
    assert agent["StandardErrorPath"] == "/Users/ada/Library/Logs/memlane/memlane.log"
    assert "EnvironmentVariables" not in agent  # no MEMLANE_HOME: the CLI finds the same state


def test_the_agent_exports_the_env_file_and_becomes_memlane(tmp_path: Path) -> None:
    """The launchd command line reads KEY=value lines into the environment, then execs
    `memlane daemon run` (run here with this machine's /bin/sh)."""
    fake = tmp_path / "memlane"
    fake.write_text('#!/bin/sh\necho "$GEMINI_API_KEY $MEMLANE_PORT $$ $*"\n')
    fake.chmod(0o755)
    env_file = tmp_path / "home" / ".config" / "memlane" / "env"
    env_file.parent.mkdir(parents=True)
    env_file.write_text("# a comment\nGEMINI_API_KEY=k-123\nMEMLANE_PORT=0\n")
    arguments = plistlib.loads(render_plist(str(fake), str(tmp_path / "home")).encode())[
        "ProgramArguments"]
    shell = subprocess.Popen(arguments, stdout=subprocess.PIPE, text=True, env={"PATH": "/bin"})
    output, _ = shell.communicate(timeout=30)
    assert output.split() == ["k-123", "0", str(shell.pid), "daemon", "run"]  # exec: same pid
    env_file.unlink()
    output = subprocess.run(arguments, capture_output=True, text=True, check=True,
                            env={"PATH": "/bin"}, timeout=30).stdout
    assert output.split()[-2:] == ["daemon", "run"]


def test_systemctl_show_becomes_json_fields() -> None:
    """Numbers are numbers, a zero pid is None, and `running` says whether it is active."""
    assert parse_systemctl_show(SHOW_OUTPUT) == {
        "load_state": "loaded", "unit_file_state": "enabled", "active_state": "active",
        "sub_state": "running", "pid": 4242, "exit_status": 0, "result": "success",
        "restarts": 1, "status_text": "ready: 12 events, 12 vectors", "running": True}
    stopped = parse_systemctl_show("ActiveState=failed\nMainPID=0\nExecMainStatus=3\n")
    assert (stopped["running"], stopped["pid"], stopped["exit_status"]) == (False, None, 3)


def test_launchctl_print_becomes_json_fields() -> None:
    """The service's own state, pid and last exit code win over nested blocks."""
    text = ("gui/501/dev.memlane = {\n\tactive count = 1\n\tstate = running\n\tpid = 777\n"
            "\tlast exit code = (never exited)\n\tendpoints = {\n\t\tstate = active\n\t}\n}\n")
    assert parse_launchctl_print(text) == {"state": "running", "pid": 777, "exit_status": None,
                                           "running": True}


def test_launchd_is_driven_in_the_users_gui_domain(tmp_path: Path) -> None:
    """A changed plist replaces the loaded one (bootout may fail: nothing loaded); an
    unchanged one is loaded if it is not and started if it is stopped."""
    agent, target = Launchd(home=tmp_path, uid=501), "gui/501/dev.memlane"
    plist = str(tmp_path / "Library" / "LaunchAgents" / "dev.memlane.plist")
    assert [(c.argv, c.required) for c in agent.enable(changed=True)] == [
        (("launchctl", "bootout", target), False), (("launchctl", "enable", target), True),
        (("launchctl", "bootstrap", "gui/501", plist), True)]
    assert [(c.argv, c.required) for c in agent.enable(changed=False)] == [
        (("launchctl", "enable", target), True),
        (("launchctl", "bootstrap", "gui/501", plist), False),
        (("launchctl", "kickstart", target), True)]


def memlane(home: Path, *args: str, path: str | None = None) -> subprocess.CompletedProcess[str]:
    """The installed CLI with ``home`` as HOME and no user bus to reach."""
    runtime = home.parent / "runtime"
    runtime.mkdir(mode=0o700, exist_ok=True)
    drop = {"DBUS_SESSION_BUS_ADDRESS", "XDG_CONFIG_HOME", "XDG_STATE_HOME", "MEMLANE_HOME"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env |= {"HOME": str(home), "XDG_RUNTIME_DIR": str(runtime),
            "PATH": path or os.environ["PATH"]}
    return subprocess.run([MEMLANE, "service", *args, "--json"], check=False, env=env,
                          capture_output=True, text=True, timeout=120)


def fake_systemctl(tmp_path: Path, *, failing: str = "no-such-verb") -> tuple[str, Path]:
    """A PATH whose `systemctl` records its arguments and answers like a running manager,
    except that the ``failing`` verb fails."""
    bin_dir, calls = tmp_path / "bin", tmp_path / "calls"
    bin_dir.mkdir()
    script = bin_dir / "systemctl"
    script.write_text(f"""#!/bin/sh
echo "$*" >> {calls}
case "$*" in
  *"show memlane.service"*) printf '%s' '{SHOW_OUTPUT}';;
  *"{failing} "*) echo "Job for memlane.service failed." >&2; exit 1;;
esac
""")
    script.chmod(0o755)
    return f"{bin_dir}:{os.environ['PATH']}", calls


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the systemd layout")
def test_dry_run_prints_the_unit_and_touches_nothing(tmp_path: Path) -> None:
    """--dry-run --json names the unit's path and content and writes no file."""
    home = tmp_path / "home"
    home.mkdir()
    result = memlane(home, "install", "--dry-run")
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["path"] == str(home / ".config" / "systemd" / "user" / "memlane.service")
    assert answer["content"] == render_unit(MEMLANE)
    assert answer["dry_run"] is True and list(home.iterdir()) == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the systemd layout")
def test_install_without_a_user_manager_writes_the_files_and_says_so(tmp_path: Path) -> None:
    """With no user bus, the unit (0644) and the env file (0600) are written, the manager is
    reported unreachable with what to do, and the command succeeds; status and uninstall,
    which cannot do their job, exit 2."""
    home = tmp_path / "home"
    home.mkdir()
    result = memlane(home, "install")
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    unit = home / ".config" / "systemd" / "user" / "memlane.service"
    env_file = home / ".config" / "memlane" / "env"
    assert unit.read_text() == render_unit(MEMLANE)
    assert stat.S_IMODE(unit.stat().st_mode) == 0o644
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert (answer["reachable"], answer["env_file_created"]) == (False, True)
    assert "systemctl --user" in answer["hint"] and answer["error"]
    status = memlane(home, "status")
    assert status.returncode == 2 and json.loads(status.stdout)["reachable"] is False
    uninstall = memlane(home, "uninstall")
    assert uninstall.returncode == 2 and json.loads(uninstall.stdout)["removed"] is False
    assert unit.exists()  # it may be enabled in a session this one cannot reach


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the systemd layout")
def test_install_enables_and_reports_the_managers_view(tmp_path: Path) -> None:
    """With a manager, install reloads, restarts a daemon whose unit changed, enables and
    starts the unit, then shows its state; a second install restarts nothing and keeps the
    env file the user filled in."""
    home = tmp_path / "home"
    home.mkdir()
    path, calls = fake_systemctl(tmp_path)
    answer = json.loads(memlane(home, "install", path=path).stdout)
    assert calls.read_text().splitlines()[:4] == [
        "--user show --property=Version", "--user daemon-reload",
        "--user try-restart memlane.service", "--user enable --now memlane.service"]
    assert (answer["action"], answer["reachable"]) == ("created", True)
    assert answer["state"]["running"] is True and answer["state"]["pid"] == 4242
    env_file = home / ".config" / "memlane" / "env"
    env_file.write_text("GEMINI_API_KEY=k\n")
    calls.unlink()
    again = json.loads(memlane(home, "install", path=path).stdout)
    assert again["action"] == "unchanged" and "try-restart" not in calls.read_text()
    assert again["env_file_created"] is False and env_file.read_text() == "GEMINI_API_KEY=k\n"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the systemd layout")
def test_uninstall_disables_removes_the_unit_and_keeps_the_env_file(tmp_path: Path) -> None:
    """uninstall stops and disables the unit, deletes it, reloads the manager."""
    home = tmp_path / "home"
    home.mkdir()
    path, calls = fake_systemctl(tmp_path)
    memlane(home, "install", path=path)
    calls.unlink()
    answer = json.loads(memlane(home, "uninstall", path=path).stdout)
    assert answer["removed"] is True
    assert not (home / ".config" / "systemd" / "user" / "memlane.service").exists()
    assert (home / ".config" / "memlane" / "env").exists()
    recorded = calls.read_text().splitlines()
    assert recorded[1] == "--user disable --now memlane.service"
    assert recorded[-1] == "--user daemon-reload"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the systemd layout")
def test_a_start_the_manager_refuses_is_reported_and_exits_1(tmp_path: Path) -> None:
    """When the manager answers but the start fails, the command, its error and the state
    are reported and the exit status is 1."""
    home = tmp_path / "home"
    home.mkdir()
    path, _ = fake_systemctl(tmp_path, failing="enable")
    result = memlane(home, "install", path=path)
    assert result.returncode == 1
    answer = json.loads(result.stdout)
    assert answer["failed"] == "systemctl --user enable --now memlane.service"
    assert answer["error"] == "Job for memlane.service failed." and "state" in answer
    assert "journalctl --user -u memlane" in answer["hint"]


def _permanent_exit_codes() -> set[int]:
    """Every exit code the daemon declares permanent, and every ``exit_code`` of the log's
    and the daemon's errors except the lock's (another daemon runs: exit 0)."""
    from memlane.daemon import __main__ as entry
    from memlane.daemon.domain import errors as daemon_errors
    from memlane.events import errors as log_errors

    declared = set(entry.PERMANENT)
    for module in (log_errors, daemon_errors):
        for value in vars(module).values():
            if isinstance(value, type) and isinstance(getattr(value, "exit_code", None), int):
                if value is not log_errors.LogLocked:
                    declared.add(value.exit_code)
    return declared


def test_every_permanent_exit_code_stops_systemd_restarting() -> None:
    """RestartPreventExitStatus= lists every exit code that means a restart cannot help, and
    the restartable ones (5: a stopped log, reopened by a restart) are not among them."""
    from memlane.daemon.__main__ import EXIT_LOG_FAILED, PERMANENT

    line = next(l for l in SYSTEMD_UNIT.splitlines() if l.startswith("RestartPreventExitStatus="))
    prevented = {int(code) for code in line.split("=", 1)[1].split()}
    assert _permanent_exit_codes() == set(PERMANENT) == prevented
    assert EXIT_LOG_FAILED not in prevented and 1 not in prevented


def test_under_launchd_a_permanent_exit_is_a_successful_one(tmp_path: Path) -> None:
    """launchd restarts any failed exit: the agent marks the daemon, which then exits 0 on a
    permanent failure (a bad config here) and keeps its real code elsewhere."""
    arguments = plistlib.loads(render_plist("/bin/x", "/Users/ada").encode())["ProgramArguments"]
    assert "MEMLANE_SUPERVISOR=launchd exec" in arguments[2]
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text("port = 'not a number'\n")
    run = [sys.executable, "-m", "memlane.daemon"]
    env = {**os.environ, "MEMLANE_HOME": str(home)}
    plain = subprocess.run(run, env=env, capture_output=True, text=True, timeout=60)
    assert plain.returncode == 6, plain.stderr
    launchd = subprocess.run(run, env={**env, "MEMLANE_SUPERVISOR": "launchd"},
                             capture_output=True, text=True, timeout=60)
    assert launchd.returncode == 0 and "restart cannot help" in launchd.stderr
