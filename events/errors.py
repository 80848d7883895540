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


class LogDamagedBelowAck(LogCorrupted):
    """Records the log acknowledged are damaged or missing: refusing to open, cutting nothing.

    ``seq`` is the first record that cannot be read, ``acked`` the highest seq known to have
    been acknowledged and ``source`` where that is recorded.
    """

    code = "log_damaged_below_ack"
    exit_code = 7

    def __init__(self, path: Path, offset: int, seq: int, acked: int, source: str,
                 what: str) -> None:
        self.path, self.offset, self.seq, self.acked = path, offset, seq, acked
        self.reason = f"{what} at seq {seq}, but seq {acked} was acknowledged ({source})"
        LogError.__init__(
            self,
            f"event log {path} {what} at byte {offset} (seq {seq}), but every seq up to {acked} "
            f"was acknowledged ({source}). Nothing was cut or changed, and memlane will not "
            "reuse acknowledged ids. Keep a copy of the log directory, restore the missing or "
            "damaged segment from a backup, and run `memlane log verify`."
        )


class WatermarkDamaged(LogError):
    """The file recording the acknowledged position cannot be read."""

    code = "log_watermark_damaged"
    exit_code = 3

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        super().__init__(
            f"the acknowledged-position file {path} is damaged ({reason}); the log was not "
            "opened. Run `memlane log verify`: if it reports no damage, delete that file and "
            "start memlane again."
        )


class LogTooNew(LogCorrupted):
    """A segment was written by a newer memlane, in a format this one cannot read (a refusal
    like corruption's: nothing is read or changed)."""

    code = "log_too_new"

    def __init__(self, path: Path, version: int) -> None:
        self.path, self.offset, self.version = path, 8, version
        self.reason = f"log format version {version} is newer than this memlane reads"
        LogError.__init__(
            self,
            f"{path} is in log format version {version}, written by a newer memlane than this "
            "one: nothing was read or changed. Upgrade memlane (or restore a backup made by "
            "this version)."
        )
