"""The service definitions memlane installs (a systemd user unit, a launchd agent), the
commands that drive each manager and the parsing of its answers. Pure: no I/O.

The templates below are the source of truth; ``systemd/`` at the top of the repository holds
readable copies that a test keeps equal. ``@MEMLANE@`` stands for the absolute path of the
``memlane`` executable and ``@HOME@`` for the user's home (launchd expands neither ``~`` nor
variables).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

UNIT_NAME = "memlane.service"
LAUNCHD_LABEL = "dev.memlane"

SYSTEMD_UNIT = """\
# memlane: the memory daemon as a systemd user service.
# `memlane service install` writes it to ~/.config/systemd/user/, the command of ExecStart=
# being the absolute path of the memlane executable.

[Unit]
Description=memlane memory daemon

[Service]
# READY=1 comes once the log is recovered, the projections caught up and the listeners
# bound; WATCHDOG=1 pings come from the event loop, so a stuck loop gets restarted.
Type=notify
NotifyAccess=main
ExecStart=@MEMLANE@ daemon run
# Recovery and catch-up run before READY=1: a long replay must not be killed half-way.
TimeoutStartSec=5min
# SIGTERM lets the daemon finish the batch it is syncing and save its vector index.
TimeoutStopSec=30
WatchdogSec=30
Restart=on-failure
RestartSec=5
# 3: the event log is damaged, 6: the config is wrong, 7: acknowledged events are missing
# from the log, 8: the state directory is full or read-only; a restart cannot fix any of them
# (`memlane doctor`, `memlane log verify`, `journalctl --user -u memlane` say what to do).
RestartPreventExitStatus=3 6 7 8
# The socket goes to $XDG_RUNTIME_DIR/memlane, where the CLI looks for it.
RuntimeDirectory=memlane
RuntimeDirectoryMode=0700
# No StateDirectory=: before systemd 254 it means ~/.config in user units, while the CLI
# reads ~/.local/state/memlane. The daemon creates that directory itself (0700).
UMask=0077
# GEMINI_API_KEY=... and MEMLANE_* settings; keep this file private (0600).
EnvironmentFile=-%E/memlane/env
# Only hardening that needs no user namespace: ProtectSystem=, PrivateTmp= and friends are
# ignored in user units before systemd 253 and fail the start where unprivileged user
# namespaces are restricted; the route job also writes to project files anywhere in $HOME.
NoNewPrivileges=yes
LockPersonality=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
RestrictNamespaces=yes
SystemCallArchitectures=native
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6

[Install]
WantedBy=default.target
"""

LAUNCHD_PLIST = """\
<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<!--
  memlane: the memory daemon as a launchd agent. `memlane service install` writes it to
  ~/Library/LaunchAgents/ with the placeholders replaced by absolute paths.
  State stays where the CLI looks for it (~/.local/state/memlane, socket in its run/).
-->
<plist version="1.0">
<dict>
  <key>Label</key>
  <string>dev.memlane</string>
  <!-- launchd has no EnvironmentFile: the shell exports GEMINI_API_KEY and MEMLANE_*
       from the same 0600 file the systemd unit reads, then becomes the daemon.
       launchd cannot exempt exit codes from KeepAlive: MEMLANE_SUPERVISOR=launchd makes the
       daemon exit 0 where a restart cannot help (3, 6, 7, 8; its log says why). -->
  <key>ProgramArguments</key>
  <array>
    <string>/bin/sh</string>
    <string>-c</string>
    <string>set -a; if [ -r "$1" ]; then . "$1"; fi; set +a; MEMLANE_SUPERVISOR=launchd exec "$2" daemon run</string>
    <string>memlane</string>
    <string>@HOME@/.config/memlane/env</string>
    <string>@MEMLANE@</string>
  </array>
  <key>RunAtLoad</key>
  <true/>
  <!-- Restart after a crash, not after a clean stop or a permanent failure. -->
  <key>KeepAlive</key>
  <dict>
    <key>SuccessfulExit</key>
    <false/>
  </dict>
  <!-- Standard, not Background: hooks wait for its answers, so no CPU and I/O throttling. -->
  <key>ProcessType</key>
  <string>Standard</string>
  <key>ExitTimeOut</key>
  <integer>30</integer>
  <!-- 63 is 0077: files private to the user -->
  <key>Umask</key>
  <integer>63</integer>
  <key>StandardOutPath</key>
  <string>@HOME@/Library/Logs/memlane/memlane.log</string>
  <key>StandardErrorPath</key>
  <string>@HOME@/Library/Logs/memlane/memlane.log</string>
</dict>
</plist>
"""

PLACEHOLDER = re.compile(r"@(MEMLANE|HOME)@")
# systemd refuses to run an executable whose path holds quotes, backslashes or control
# characters, however it is quoted.
UNRUNNABLE = re.compile(r"[\"'\\\x00-\x1f\x7f]")
PLAIN_WORD = re.compile(r"[\w/.+-]+", re.ASCII)


def render_unit(executable: str) -> str:
    """The systemd unit that runs ``executable`` (an absolute path)."""
    return _fill(SYSTEMD_UNIT, {"MEMLANE": exec_word(executable)})


def render_plist(executable: str, home: str) -> str:
    """The launchd agent that runs ``executable`` for the user whose home is ``home``."""
    return _fill(LAUNCHD_PLIST, {"MEMLANE": _xml_text(executable), "HOME": _xml_text(home)})


def _fill(template: str, values: dict[str, str]) -> str:
    # One pass, so a value that happens to contain a placeholder is left alone.
    return PLACEHOLDER.sub(lambda match: values[match.group(1)], template)


def exec_word(path: str) -> str:
    """``path`` as the command of an ``ExecStart=`` line: specifiers escaped, quoted if needed.

    The command itself is not subject to ``$`` expansion, so only ``%`` needs escaping.
    """
    if not path.startswith("/"):
        raise ValueError(f"the executable must be an absolute path, not {path!r}")
    if UNRUNNABLE.search(path):
        raise ValueError(f"systemd cannot run {path!r}: its path holds quotes, backslashes "
                         "or control characters; install memlane under another path")
    if PLAIN_WORD.fullmatch(path):
        return path
    return '"' + path.replace("%", "%%") + '"'


def _xml_text(value: str) -> str:
    if not value.isprintable():
        raise ValueError(f"{value!r} holds control characters, which a plist cannot carry")
    # By hand: xml.sax.saxutils would import urllib.request into every CLI start.
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


SHOW_PROPERTIES = {
    "LoadState": "load_state",
    "UnitFileState": "unit_file_state",
    "ActiveState": "active_state",
    "SubState": "sub_state",
    "MainPID": "pid",
    "ExecMainStatus": "exit_status",
    "Result": "result",
    "NRestarts": "restarts",
    "StatusText": "status_text",
}
NUMERIC = {"pid", "exit_status", "restarts"}


def parse_systemctl_show(text: str) -> dict[str, Any]:
    """``systemctl show -p ...`` output as JSON-ready fields (``pid`` None when not running)."""
    fields: dict[str, Any] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key in SHOW_PROPERTIES:
            name = SHOW_PROPERTIES[key]
            fields[name] = _number(value) if name in NUMERIC else value
    if fields.get("pid") == 0:
        fields["pid"] = None
    fields["running"] = fields.get("active_state") == "active"
    return fields


def parse_launchctl_print(text: str) -> dict[str, Any]:
    """The state, pid and last exit code from ``launchctl print gui/<uid>/<label>``."""
    wanted = {"state": "state", "pid": "pid", "last exit code": "exit_status"}
    fields: dict[str, Any] = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition(" = ")
        if sep and key in wanted and wanted[key] not in fields:  # nested dicts repeat keys
            fields[wanted[key]] = value if key == "state" else _number(value)
    fields.setdefault("pid", None)
    fields["running"] = fields.get("state") == "running"
    return fields


def _number(value: str) -> int | None:
    try:
        return int(value)
    except ValueError:
        return None


@dataclass(frozen=True)
class Command:
    """One call of the manager's tool; an optional one may fail (stopping what is not loaded)."""

    argv: tuple[str, ...]
    required: bool = True


@dataclass(frozen=True)
class Answer:
    """What a manager command printed, and whether it succeeded."""

    ok: bool
    output: str
    error: str


class Manager(Protocol):
    """What install, uninstall, start, stop and status need from a service manager."""

    name: ClassVar[str]

    @property
    def path(self) -> Path: ...
    @property
    def env_file(self) -> Path: ...
    @property
    def log_dir(self) -> Path | None: ...
    def render(self, executable: str) -> str: ...
    def probe(self) -> Command: ...
    def enable(self, *, changed: bool) -> tuple[Command, ...]: ...
    def disable(self) -> tuple[Command, ...]: ...
    def forget(self) -> tuple[Command, ...]: ...
    def start(self) -> Command: ...
    def stop(self) -> Command: ...
    def status(self) -> Command: ...
    def parse_status(self, answer: Answer) -> dict[str, Any]: ...
    def hint(self) -> str: ...
    def not_running_hint(self) -> str: ...


SYSTEMCTL = ("systemctl", "--user")
ONE_DAEMON = ("A daemon started by `memlane up` keeps the service's own from starting (one per "
              "user): `memlane down`, then `memlane service start`.")


@dataclass(frozen=True)
class Systemd:
    """The systemd user manager, through ``systemctl --user``."""

    config_home: Path
    name: ClassVar[str] = "systemd"

    @property
    def path(self) -> Path:
        return self.config_home / "systemd" / "user" / UNIT_NAME

    @property
    def env_file(self) -> Path:
        return self.config_home / "memlane" / "env"  # %E/memlane/env in the unit

    @property
    def log_dir(self) -> Path | None:
        return None  # the journal

    def render(self, executable: str) -> str:
        return render_unit(executable)

    def probe(self) -> Command:
        return Command((*SYSTEMCTL, "show", "--property=Version"))

    def enable(self, *, changed: bool) -> tuple[Command, ...]:
        # `enable --now` leaves a running daemon alone: restart it first if its unit changed.
        restart = (Command((*SYSTEMCTL, "try-restart", UNIT_NAME)),) if changed else ()
        return (Command((*SYSTEMCTL, "daemon-reload")), *restart,
                Command((*SYSTEMCTL, "enable", "--now", UNIT_NAME)))

    def disable(self) -> tuple[Command, ...]:
        return (Command((*SYSTEMCTL, "disable", "--now", UNIT_NAME), required=False),)

    def forget(self) -> tuple[Command, ...]:
        return (Command((*SYSTEMCTL, "daemon-reload")),)

    def start(self) -> Command:
        return Command((*SYSTEMCTL, "start", UNIT_NAME))

    def stop(self) -> Command:
        return Command((*SYSTEMCTL, "stop", UNIT_NAME))

    def status(self) -> Command:
        return Command((*SYSTEMCTL, "show", UNIT_NAME, "--property=" + ",".join(SHOW_PROPERTIES)))

    def parse_status(self, answer: Answer) -> dict[str, Any]:
        return parse_systemctl_show(answer.output)

    def hint(self) -> str:
        return ("`systemctl --user` needs a login session with a user manager "
                "(`loginctl enable-linger $USER` keeps one without a login): run this command "
                "there. Meanwhile `memlane up` and `memlane down` run the daemon without one.")

    def not_running_hint(self) -> str:
        return f"`journalctl --user -u memlane -e` says why. {ONE_DAEMON}"


@dataclass(frozen=True)
class Launchd:
    """The user's launchd GUI domain, through ``launchctl``."""

    home: Path
    uid: int
    name: ClassVar[str] = "launchd"

    @property
    def domain(self) -> str:
        return f"gui/{self.uid}"

    @property
    def target(self) -> str:
        return f"{self.domain}/{LAUNCHD_LABEL}"

    @property
    def path(self) -> Path:
        return self.home / "Library" / "LaunchAgents" / f"{LAUNCHD_LABEL}.plist"

    @property
    def env_file(self) -> Path:
        return self.home / ".config" / "memlane" / "env"  # named in the plist

    @property
    def log_dir(self) -> Path | None:
        return self.home / "Library" / "Logs" / "memlane"  # launchd does not create it

    def render(self, executable: str) -> str:
        return render_plist(executable, str(self.home))

    def probe(self) -> Command:
        return Command(("launchctl", "print", self.domain))

    def enable(self, *, changed: bool) -> tuple[Command, ...]:
        enable = Command(("launchctl", "enable", self.target))
        if changed:  # bootstrap refuses a loaded label: unload the old definition first
            return (Command(("launchctl", "bootout", self.target), required=False), enable,
                    Command(("launchctl", "bootstrap", self.domain, str(self.path))))
        # Unchanged: load it if it is not (bootstrap fails when it is), start it if stopped.
        return (enable, Command(("launchctl", "bootstrap", self.domain, str(self.path)),
                                required=False),
                Command(("launchctl", "kickstart", self.target)))

    def disable(self) -> tuple[Command, ...]:
        return (Command(("launchctl", "bootout", self.target), required=False),)

    def forget(self) -> tuple[Command, ...]:
        return ()

    def start(self) -> Command:
        return Command(("launchctl", "kickstart", self.target))

    def stop(self) -> Command:
        # A clean exit after SIGTERM is a SuccessfulExit: KeepAlive leaves it stopped.
        return Command(("launchctl", "kill", "SIGTERM", self.target))

    def status(self) -> Command:
        return Command(("launchctl", "print", self.target))

    def parse_status(self, answer: Answer) -> dict[str, Any]:
        if not answer.ok:  # launchctl print fails for a label that is not loaded
            return {"state": "not loaded", "pid": None, "running": False}
        return parse_launchctl_print(answer.output)

    def hint(self) -> str:
        return ("launchctl needs your GUI session (log in on the Mac, not only over ssh): run "
                "this command there. Meanwhile `memlane up` and `memlane down` run the daemon "
                "without it.")

    def not_running_hint(self) -> str:
        return f"{self.log_dir}/memlane.log says why. {ONE_DAEMON}"
