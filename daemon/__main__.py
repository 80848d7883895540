"""``python -m memlane.daemon``: run the daemon in the foreground."""

from __future__ import annotations

import os
import sys

from memlane.daemon.adapters.log_output import configure_logging
from memlane.daemon.adapters.paths import UnsafeStateDir, ensure_private_dir, resolve_paths
from memlane.daemon.adapters.settings import ConfigError, Settings
from memlane.daemon.app import serve_until_signalled
from memlane.events.errors import LogError, LogLocked

EXIT_LOG_FAILED = 5
EXIT_BAD_CONFIG = 6


def main() -> int:
    """Run until signalled; the exit code says why it stopped (0: stopped or already running)."""
    import anyio

    configure_logging()
    os.umask(0o077)  # every file the daemon creates is private to its user
    _raise_open_files_limit()
    paths = resolve_paths()
    try:
        ensure_private_dir(paths.home)
    except UnsafeStateDir as exc:
        print(f"memlane: {exc}", file=sys.stderr)
        return exc.exit_code
    try:
        settings = Settings.load(paths.config)
    except ConfigError as exc:
        print(f"memlane: {exc}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    try:
        anyio.run(serve_until_signalled, paths, settings)
    except (LogError, BaseExceptionGroup) as exc:
        error = _log_error(exc)
        if error is None:
            raise
        print(f"memlane: {error}", file=sys.stderr)
        if isinstance(error, LogLocked):
            return 0
        return getattr(error, "exit_code", EXIT_LOG_FAILED)
    return 0


def _raise_open_files_limit() -> None:
    """Idle keep-alive clients hold a descriptor each: allow as many as the hard limit does."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def _log_error(exc: BaseException) -> LogError | None:
    """The log error inside a (possibly nested) exception group."""
    if isinstance(exc, LogError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            if (found := _log_error(inner)) is not None:
                return found
    return None


if __name__ == "__main__":
    sys.exit(main())
