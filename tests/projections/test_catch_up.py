"""Catching the projections up with the log."""

from __future__ import annotations

from pathlib import Path

import pytest

from memlane.projections import catchup
from memlane.projections.catchup import Projections

from tests.events.test_log import write_log


def test_projections_at_the_log_end_read_no_segment(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    write_log(tmp_path / "log", 20)
    projections = Projections(tmp_path / "p.sqlite3", tmp_path / "vectors.usearch")
    assert projections.catch_up(tmp_path / "log", 20) == 20

    def no_reading(*args: object, **kwargs: object) -> None:
        raise AssertionError("the log was read with nothing to replay")

    monkeypatch.setattr(catchup, "read_log", no_reading)
    assert projections.catch_up(tmp_path / "log", 20) == 0
    projections.close()
