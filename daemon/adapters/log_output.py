"""structlog, configured once: JSON lines when stderr is not a terminal, readable text when it is."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from memlane.daemon.adapters.error_ring import ErrorRing


@contextmanager
def _rich_hidden() -> Iterator[None]:
    """Within: ``import rich`` fails (``None`` in ``sys.modules`` is the import system's
    documented "not importable"), unless stderr is a terminal or rich is already loaded.

    structlog imports rich, when it is installed, for the pretty tracebacks of its console
    renderer: 40-60 ms of every start (rich, pygments, attrs). The JSON lines a daemon writes
    under a supervisor never use it (``format_exc_info`` turns tracebacks into text first);
    on a terminal nothing changes. Later imports of rich (a CLI's progress bar) work as ever.
    """
    hide = "rich" not in sys.modules and not (sys.stderr is not None and sys.stderr.isatty())
    if hide:
        sys.modules["rich"] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        if hide:
            del sys.modules["rich"]


with _rich_hidden():  # the daemon's entry imports this module before any other imports structlog
    import structlog  # noqa: E402

# The daemon's last warnings and errors, without their text (the health page shows them).
RECENT_ERRORS = ErrorRing()


def configure_logging(level: int = logging.INFO) -> None:
    renderer = (structlog.dev.ConsoleRenderer() if sys.stderr.isatty()
                else structlog.processors.JSONRenderer())
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            RECENT_ERRORS,  # before the exception is formatted into text
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
