"""The health page's last errors: warnings and errors by name, never the text they carry."""

from __future__ import annotations

import io

import structlog

from memlane.daemon.adapters.error_ring import SIZE, ErrorRing

SECRET = "the user's memory about quokka-saffron-7781"


def logger_with(ring: ErrorRing) -> structlog.stdlib.BoundLogger:
    return structlog.wrap_logger(  # type: ignore[no-any-return]
        structlog.PrintLogger(io.StringIO()),
        processors=[structlog.processors.add_log_level, ring,
                    structlog.processors.JSONRenderer()])


def test_an_error_keeps_its_name_exception_class_and_numbers_only() -> None:
    """Strings, messages and the exception's text are left out; names and numbers stay."""
    ring = ErrorRing()
    log = logger_with(ring)
    try:
        raise ValueError(SECRET)
    except ValueError:
        log.exception("hook_failed", hook=SECRET, memories=3, ratio=0.5)
    log.warning(SECRET, size=12)
    log.info("stored", id=1)
    entries = ring.recent()
    assert [(e["level"], e["event"]) for e in entries] == [("warning", "(unnamed)"),
                                                          ("error", "hook_failed")]
    assert entries[1]["exception"] == "ValueError"
    assert (entries[1]["memories"], entries[1]["ratio"], entries[0]["size"]) == (3, 0.5, 12)
    assert "quokka" not in repr(entries)


def test_the_ring_keeps_only_the_newest() -> None:
    """Past its size, the oldest entries go first."""
    ring = ErrorRing()
    log = logger_with(ring)
    for i in range(SIZE + 5):
        log.error("projector_stalled", attempt=i)
    assert [e["attempt"] for e in ring.recent()] == list(range(SIZE + 4, 4, -1))
