"""Errors of the event log; each has a stable ``code`` and a message that says what to do."""

from __future__ import annotations

from pathlib import Path


class LogError(Exception):
    """Base of event-log errors."""

    code = "log_error"


class LogCorrupted(LogError):
    """The log holds damage that is not a torn tail: refusing to touch it."""

    code = "log_corrupted"
    exit_code = 3

    def __init__(self, path: Path, offset: int, reason: str) -> None:
        self.path, self.offset, self.reason = path, offset, reason
        super().__init__(
            f"event log corrupted in {path} at byte {offset}: {reason}. "
            "The file was left untouched. Keep a copy, then run `memlane log verify` for details; "
            "restore the segment from a backup or contact the developers."
        )


class LogLocked(LogError):
    """Another process already writes to this state directory."""

    code = "log_locked"
    exit_code = 4

    def __init__(self, path: Path, holder: str) -> None:
        super().__init__(f"another memlane daemon ({holder}) already owns {path}; nothing to do")


class LogWriteFailed(LogError):
    """A write or sync failed; the batch was not acknowledged."""

    code = "log_write_failed"


class LogStopped(LogError):
    """A sync failure stopped the writer: no later append can be acknowledged."""

    code = "log_stopped"
