"""``memlane doctor``: checks that explain what is wrong and how to fix it.

Each check returns (ok, detail, fix). Checks that need the daemon are skipped with a reason
when it is down; nothing here changes state.
"""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memlane.cli.client import Client, DaemonError, DaemonUnavailable
from memlane.daemon.adapters.paths import DEFAULT_PORT, Paths

MIN_FREE_BYTES = 500 * 1024 * 1024


@dataclass
class Finding:
    check: str
    ok: bool | None  # None: skipped
    detail: str
    fix: str = ""


def _health(paths: Paths) -> dict[str, Any] | None:
    try:
        return Client(paths, timeout=3).request("GET", "/v1/health")  # type: ignore[no-any-return]
    except (DaemonUnavailable, DaemonError):
        return None


def check_socket(paths: Paths) -> Finding:
    if not paths.socket.exists():
        return Finding("unix socket", False, f"{paths.socket} does not exist",
                       "start the daemon: `memlane up` or `memlane service install`")
    health = _health(paths)
    if health is None:
        return Finding("unix socket", False, f"{paths.socket} exists but nothing answers",
                       "a stale socket: `memlane up` replaces it")
    return Finding("unix socket", True, f"daemon answers: model {health.get('model')}, "
                                        f"{health.get('status')}")


def check_tcp(paths: Paths) -> Finding:
    try:
        clash = Client(paths, timeout=3).request("GET", "/v1/status").get("tcp_error")
    except (DaemonUnavailable, DaemonError):
        clash = None
    if clash:
        return Finding("tcp listener", False, clash,
                       "another process holds the port: find it with `ss -ltnp`, or move memlane "
                       "with `memlane config set port N` (hooks over the socket keep working)")
    port = _port(paths)
    try:
        Client(paths, timeout=3, tcp_only=True).request("GET", "/v1/health")
    except DaemonUnavailable as exc:  # the token never goes to a listener that cannot prove it
        return Finding("tcp listener", False, f"127.0.0.1:{port}: {exc}",
                       "start the daemon; if the port is taken, `memlane config set port N`")
    except DaemonError as exc:
        return Finding("tcp listener", False, f"127.0.0.1:{port} answered {exc.status}",
                       f"another process holds port {port}: stop it or `memlane config set port N`")
    return Finding("tcp listener", True, f"127.0.0.1:{port} proves it holds the token")


def _port(paths: Paths) -> int:
    """The port the daemon listens on, else the configured one."""
    try:
        return int((paths.runtime / "tcp.port").read_text())
    except (OSError, ValueError):
        pass
    from memlane.daemon.adapters.settings import ConfigError, Settings

    try:
        return Settings.load(paths.config).port
    except ConfigError:
        return DEFAULT_PORT


def check_permissions(paths: Paths) -> Finding:
    problems = []
    for path, mode in ((paths.home, 0o700), (paths.runtime, 0o700), (paths.token, 0o600),
                       (paths.socket, 0o600)):
        if path.exists():
            actual = stat.S_IMODE(path.stat().st_mode)
            if actual & ~mode:
                problems.append(f"{path} is {actual:o}, should be {mode:o}")
    if problems:
        return Finding("permissions", False, "; ".join(problems),
                       "chmod them as shown (the daemon creates them so; something changed them)")
    return Finding("permissions", True, "state directory 0700, token and socket 0600")


def check_model(paths: Paths) -> Finding:
    from memlane.daemon.adapters.model_store import check_files
    from memlane.daemon.adapters.model_store import default_model_name
    from memlane.daemon.domain.models import ModelUnavailable, resolve_spec
    from memlane.daemon.adapters.settings import ConfigError, Settings

    try:
        name = Settings.load(paths.config).model or default_model_name(paths.models_dir)
        rows = check_files(resolve_spec(name), paths.models_dir, full=True)
    except (ModelUnavailable, ConfigError) as exc:
        return Finding("model files", False, str(exc), "`memlane model list`, `memlane model pull`")
    bad = [r for r in rows if r["status"] != "ok"]
    if bad:
        return Finding("model files", False, "; ".join(f"{r['file']}: {r['detail']}" for r in bad),
                       f"`memlane model pull {name}` (or reinstall memlane for the offline model)")
    return Finding("model files", True, f"{name}: checksums match")


def check_log(paths: Paths) -> Finding:
    from memlane.cli.logcmd import verify

    result = verify(paths.log_dir)
    if not result["ok"]:
        return Finding("event log", False, str(result["error"]),
                       "keep a copy of the log directory and report it; the daemon will not "
                       "start on a damaged log")
    return Finding("event log", True, f"{result['records']} records, last seq {result['last_seq']}")


def check_projections(paths: Paths) -> Finding:
    try:
        status = Client(paths, timeout=5).request("GET", "/v1/status")
    except (DaemonUnavailable, DaemonError):
        return Finding("projections", None, "skipped: the daemon is not running")
    behind = status["last_seq"] - status["applied_seq"]
    state = status.get("projections") or {}
    if state.get("stalled"):
        return Finding("projections", False, f"the projector cannot write: {state['stalled']}; "
                       "reads show the state before it", "see `disk space` and `state directory`: "
                       "it retries by itself once the disk takes writes")
    if behind > 1000:
        return Finding("projections", False, f"{behind} events behind the log",
                       "wait, or `memlane rebuild` if it does not shrink")
    repaired = ""
    if state.get("rebuilt_after_damage"):
        repaired = (f"; rebuilt from the log after damage {state['rebuilt_after_damage']} "
                    f"time(s), last: {state['last_damage']} (damaged files kept in "
                    f"{state['set_aside']}: delete them when done)")
    return Finding("projections", True,
                   f"in step with the log (seq {status['last_seq']}){repaired}")


def check_log_size(paths: Paths) -> Finding:
    """The log's size, what it holds, and whether it is past the disk budget."""
    from memlane.cli.sizes import budget_problem, describe_sizes

    try:
        sizes = Client(paths, timeout=120).request("GET", "/v1/status/sizes")
    except (DaemonUnavailable, DaemonError):
        return Finding("log size", None, "skipped: the daemon is not running")
    detail = describe_sizes(sizes).replace("\n", "; ")
    if (problem := budget_problem(sizes)) is not None:
        return Finding("log size", False, f"{problem}; {detail}",
                       "raise disk_budget_mb (`memlane config set disk_budget_mb N`), shorten "
                       "retention_days, or forget what you no longer need")
    return Finding("log size", True, detail)


def check_state_dir(paths: Paths) -> Finding:
    """Whether the state directory takes writes, as the running daemon or the disk says."""
    from memlane.daemon.runtime.storage import ADVICE, state_dir_refusal

    try:
        storage = Client(paths, timeout=5).request("GET", "/v1/status").get("storage") or {}
        up, refusing = True, storage.get("refusing_writes")
    except (DaemonUnavailable, DaemonError):
        up, refusing = False, state_dir_refusal(paths.home) if paths.home.exists() else None
    if refusing is None:
        return Finding("state directory", True, f"{paths.home} takes writes")
    if up:
        return Finding("state directory", False, f"the daemon is up and serves reads and "
                       f"search, but refuses writes (507 {refusing}): {ADVICE[refusing]}",
                       "once it takes writes again, stores work again by themselves")
    return Finding("state directory", False, f"{ADVICE[refusing]}: the daemon cannot start "
                   "(exit 8; the service does not restart it)",
                   "fix that, then `memlane up` (or `systemctl --user start memlane`)")


def check_disk(paths: Paths) -> Finding:
    target = paths.home if paths.home.exists() else Path.home()
    free = shutil.disk_usage(target).free
    if free < MIN_FREE_BYTES:
        return Finding("disk space", False, f"{free // 2**20} MiB free under {target}",
                       "free some space there: when the disk is full, stores fail with 507 "
                       "disk_full (nothing acknowledged is lost) and work again once it has room")
    return Finding("disk space", True, f"{free // 2**20} MiB free")


def check_llm(paths: Paths) -> Finding:
    from memlane.daemon.adapters.gemini import api_key_from_env

    env = dict(os.environ)
    env_file = paths.config.parent / "env"
    if env_file.exists():
        for line in env_file.read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep and not line.lstrip().startswith("#"):
                env.setdefault(key.strip(), value.strip())
    if api_key_from_env(env) is None:
        return Finding("LLM key", None, "no GEMINI_API_KEY: clusters wait; "
                                        "`memlane consolidate --offline` merges without an LLM",
                       f"put GEMINI_API_KEY=... in {env_file} (mode 0600) for the service")
    return Finding("LLM key", True, "a Gemini key is configured (not validated: that costs a call)")


def check_sync(paths: Paths) -> Finding:
    """Sync enabled: the daemon runs it, reaches the server, and refused nothing."""
    if not (paths.home / "sync.toml").exists():
        return Finding("sync", None, "not enabled (`memlane sync enable`)")
    try:
        sync = Client(paths, timeout=10).request("GET", "/v1/sync")
    except (DaemonUnavailable, DaemonError) as exc:
        return Finding("sync", None, f"skipped: the daemon does not answer ({exc})")
    if not sync["enabled"]:
        return Finding("sync", False, "enabled after the daemon started",
                       "restart the daemon: `memlane down && memlane up`")
    if not sync["connected"]:
        return Finding("sync", False, f"cannot reach {sync['url']}: {sync['last_error']}",
                       "check the server is up and the URL and credentials in sync.toml")
    if sync["inbox"]["refused"]:
        refusal = sync["inbox"]["last_refusal"]
        return Finding("sync", False, f"{sync['inbox']['refused']} event(s) refused, last from "
                       f"device {refusal['origin']}: {refusal['reason']}",
                       "someone publishes with a key outside the team roster: check who holds "
                       "the server credentials")
    return Finding("sync", True, f"team {sync['team']}: {sync['outbox']['lag_events']} events "
                   f"to publish, {sync['inbox']['pending']} to apply")


def check_hooks(paths: Paths) -> Finding:
    from memlane.cli.hookscmd import settings_path, status_row

    rows = [status_row(settings_path(project=scope)) for scope in (False, True)]
    found = [row for row in rows if row["hooks"]]
    if found:
        return Finding("Claude Code hooks", True, "; ".join(
            f"{row['path']}: {', '.join(row['hooks'])}" for row in found))
    return Finding("Claude Code hooks", None, "no memlane hooks in "
                   + " or ".join(row["path"] for row in rows), "`memlane hooks install`")


def check_hook_delivery(paths: Paths) -> Finding:
    """A dry-run prompt through each installed hook, as Claude Code would send it."""
    from memlane.cli.hookprobe import probe_settings
    from memlane.cli.hookscmd import settings_path

    results = [r for scope in (False, True) for r in probe_settings(settings_path(project=scope))]
    if not results:
        return Finding("hook delivery", None, "no memlane UserPromptSubmit hook installed")
    failed = [detail for ok, detail in results if not ok]
    if failed:
        return Finding("hook delivery", False, "; ".join(failed),
                       "fix the credential or port named above, or reinstall with "
                       "`memlane hooks install` (add --http for HTTP hooks)")
    return Finding("hook delivery", True, "; ".join(detail for _, detail in results))


def check_http_hooks_alone(paths: Paths, *, accounts: Callable[[], list[str]] | None = None
                           ) -> Finding:
    """HTTP hooks cannot prove the server before they send their credential: safe only where
    no other user could own 127.0.0.1's port first."""
    from memlane.cli.hookprobe import prompt_handlers
    from memlane.cli.hookscmd import settings_path

    handlers = [h for scope in (False, True)
                for h in prompt_handlers(settings_path(project=scope))]
    if not any(h.get("type") == "http" for h in handlers):
        return Finding("http hooks", None, "no HTTP hooks installed (command hooks prove the "
                       "daemon over the socket)")
    others = (accounts or other_login_accounts)()
    if others:
        return Finding("http hooks", False,
                       f"HTTP hooks send the hook token to whoever owns the port, and "
                       f"{len(others)} other account(s) can log in here: {', '.join(others)}",
                       "use command hooks: `memlane hooks uninstall` then `memlane hooks "
                       "install` (without --http)")
    return Finding("http hooks", True, "no other account can log in on this machine")


def other_login_accounts() -> list[str]:
    """Accounts other than this user's with a login shell (from the password database)."""
    import pwd

    return sorted(entry.pw_name for entry in pwd.getpwall()
                  if entry.pw_uid != os.getuid() and entry.pw_uid >= 1000
                  and not entry.pw_shell.endswith(("nologin", "false", "sync")))


def check_service(paths: Paths) -> Finding:
    if shutil.which("systemctl") is None:
        return Finding("service", None, "skipped: no systemctl")
    from memlane.cli.serviceunits import Systemd

    config_home = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    unit = Systemd(config_home=Path(config_home)).path
    if not unit.exists():
        return Finding("service", None, "no user unit installed", "`memlane service install`")
    result = subprocess.run(["systemctl", "--user", "is-active", "memlane"], capture_output=True,
                            text=True, timeout=5)
    state = result.stdout.strip() or result.stderr.strip()
    return Finding("service", state == "active", f"memlane.service is {state}",
                   "" if state == "active" else "`systemctl --user status memlane`")


CHECKS: tuple[Callable[[Paths], Finding], ...] = (
    check_socket, check_tcp, check_permissions, check_service, check_model, check_log,
    check_projections, check_log_size, check_state_dir, check_disk, check_llm, check_hooks,
    check_hook_delivery, check_http_hooks_alone, check_sync)


def run_checks(paths: Paths) -> list[Finding]:
    findings = []
    for check in CHECKS:
        try:
            findings.append(check(paths))
        except (OSError, subprocess.SubprocessError, socket.error) as exc:
            findings.append(Finding(check.__name__.removeprefix("check_"), False, str(exc)))
    return findings
