"""The daily budget of LLM calls, kept in a 0600 JSON file (per UTC day)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import structlog

from memlane.daemon.adapters.files import write_atomic

log = structlog.get_logger()


class _Spent(msgspec.Struct, frozen=True):
    day: str  # ISO date, UTC
    used: int


def _utc_day(now: datetime) -> str:
    """The UTC calendar day of an aware ``now``."""
    return now.astimezone(UTC).date().isoformat()


def _used_on(spent: _Spent, day: str) -> int:
    return spent.used if spent.day == day else 0


def _utc_now() -> datetime:
    return datetime.now(UTC)


class DailyBudget:
    """Gemini calls per UTC day, capped at ``limit`` and kept in a 0600 JSON file."""

    def __init__(self, path: Path, limit: int, *,
                 clock: Callable[[], datetime] = _utc_now) -> None:
        self.path = path
        self.limit = limit
        self._clock = clock
        self._spent = _read_spent(path, today=self._today(), limit=limit)

    def _today(self) -> str:
        return _utc_day(self._clock())

    @property
    def used_today(self) -> int:
        return _used_on(self._spent, self._today())

    def try_spend(self) -> bool:
        """Count one call if today's budget allows it."""
        today = self._today()
        used = _used_on(self._spent, today)
        if used >= self.limit:
            return False
        self._spent = _Spent(today, used + 1)
        _write_spent(self.path, self._spent)
        return True


def _read_spent(path: Path, *, today: str, limit: int) -> _Spent:
    try:
        return msgspec.json.decode(path.read_bytes(), type=_Spent)
    except FileNotFoundError:
        return _Spent(today, 0)
    except msgspec.DecodeError:
        # Fail closed: a damaged file must not hand out a fresh budget.
        log.warning("llm_budget_damaged", path=str(path))
        return _Spent(today, limit)


def _write_spent(path: Path, spent: _Spent) -> None:
    """Replace the file atomically (no fsync: losing one count to a power cut is harmless)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_atomic(path, msgspec.json.encode(spent), mode=0o600)
