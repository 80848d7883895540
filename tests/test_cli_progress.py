"""Progress on long work: a bar on a terminal, nothing when piped, the work's own answer."""

from __future__ import annotations

import threading

import pytest

from memlane.cli.progress import progress_bar, while_polling


def test_the_polled_progress_is_drawn_and_the_work_answers() -> None:
    """While the work runs, each poll's (done, total) reaches the bar; its result comes back."""
    release = threading.Event()
    seen: list[tuple[int, int]] = []
    polls = iter([(1, 4), None, (3, 4)])

    def poll() -> tuple[int, int] | None:
        found = next(polls, None)
        if found is None and not release.is_set() and len(seen) >= 2:
            release.set()
        return found

    answer = while_polling(lambda: release.wait(30) and "done", poll,
                           lambda d, t: seen.append((d, t)), interval=0.01)
    assert answer == "done" and seen == [(1, 4), (3, 4)]


def test_the_work_s_error_is_raised_in_the_caller() -> None:
    """A failure inside the work is the caller's to see, not a silent thread death."""
    def work() -> None:
        raise ValueError("the daemon refused")

    with pytest.raises(ValueError, match="the daemon refused"):
        while_polling(work, lambda: None, lambda d, t: None, interval=0.01)


def test_a_bar_is_drawn_only_on_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    """Piped (not a terminal), nothing is written; forced on, the label shows."""
    with progress_bar("copying") as update:
        update(1, 2)
    assert capsys.readouterr().err == ""
    with progress_bar("copying", enabled=True) as update:
        update(2, 2)
    assert "copying" in capsys.readouterr().err
