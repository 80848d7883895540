"""``python -m memlane.daemon``: run the daemon in the foreground."""

from __future__ import annotations

import logging
import os
import sys

# First: numpy reads its settings (one BLAS thread, no huge pages) only when it loads.
import memlane.daemon.adapters.numpy_environment  # noqa: F401  isort: skip
from memlane.daemon.adapters.log_output import configure_logging
from memlane.daemon.adapters.paths import UnsafeStateDir, ensure_private_dir, resolve_paths
from memlane.daemon.adapters.settings import ConfigError, Settings
from memlane.daemon.app import refused_by_disk, serve_until_signalled
from memlane.daemon.domain.errors import StartRefused
from memlane.events.errors import LogCorrupted, LogDamagedBelowAck, LogError, LogLocked

# Exit codes; PERMANENT ones mean a restart cannot help until the user acts, and the service
# units (systemd/, cli/serviceunits.py) must not restart on them.
EXIT_LOG_FAILED = 5  # the log stopped (a failed sync): a restart reopens and recovers it
EXIT_BAD_CONFIG = 6
EXIT_LOG_CORRUPTED = LogCorrupted.exit_code  # 3
EXIT_ACKED_MISSING = LogDamagedBelowAck.exit_code  # 7
EXIT_STATE_UNWRITABLE = StartRefused.exit_code  # 8: the state directory is full or read-only
PERMANENT = (EXIT_LOG_CORRUPTED, EXIT_BAD_CONFIG, EXIT_ACKED_MISSING, EXIT_STATE_UNWRITABLE)

# How long a thread runs Python before it hands the GIL to one that waits (CPython: 5 ms). The
# event loop gives the GIL up at every socket call and waits that long to get it back while a
# worker thread runs Python (a forget's log scan or rewrite), so a request that takes it
# back ten times waited ~50 ms; at 1 ms it waits a fifth of that (bench/bench_forget.py).
GIL_SWITCH_INTERVAL_S = 0.001


def main() -> int:
    """Run until signalled; the exit code says why it stopped (0: stopped or already running)."""
    import anyio

    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    os.umask(0o077)  # every file the daemon creates is private to its user
    _raise_open_files_limit()
    paths = resolve_paths()
    try:
        with refused_by_disk(paths.home):  # full or read-only: StartRefused
            ensure_private_dir(paths.home)
    except (UnsafeStateDir, StartRefused) as exc:
        print(f"memlane: {exc}", file=sys.stderr)
        return _for_supervisor(exc.exit_code)
    try:
        settings = Settings.load(paths.config)
    except ConfigError as exc:
        print(f"memlane: {exc}", file=sys.stderr)
        return _for_supervisor(EXIT_BAD_CONFIG)
    configure_logging(logging.getLevelNamesMapping()[settings.log_level.upper()])
    try:
        anyio.run(serve_until_signalled, paths, settings)
    except (LogError, StartRefused, BaseExceptionGroup) as exc:
        error = _log_error(exc)
        if error is None:
            raise
        print(f"memlane: {error}", file=sys.stderr)
        if isinstance(error, LogLocked):
            return 0
        return _for_supervisor(getattr(error, "exit_code", EXIT_LOG_FAILED))
    return 0


def _for_supervisor(code: int) -> int:
    """``code``, except under launchd, which cannot be told which exit codes not to restart:
    there a permanent failure exits 0 (the message above says why)."""
    if code in PERMANENT and os.environ.get("MEMLANE_SUPERVISOR") == "launchd":
        print(f"memlane: exit status {code} means a restart cannot help; exiting 0 so that "
              "launchd does not restart memlane", file=sys.stderr)
        return 0
    return code


def _raise_open_files_limit() -> None:
    """Idle keep-alive clients hold a descriptor each: allow as many as the hard limit does."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def _log_error(exc: BaseException) -> LogError | StartRefused | None:
    """The log or start-up error inside a (possibly nested) exception group."""
    if isinstance(exc, LogError | StartRefused):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            if (found := _log_error(inner)) is not None:
                return found
    return None


if __name__ == "__main__":
    sys.exit(main())
