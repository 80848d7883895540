"""``memlane compact``: compaction by hand, through the daemon or, when none runs, in place."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer

from memlane.cli.client import Client, DaemonError, DaemonUnavailable
from memlane.cli.progress import polled, progress_bar, while_polling
from memlane.cli.render import emit, fail, wants_json

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON (default when piped).")]


def register(app: typer.Typer, paths: Callable[[], Any]) -> None:
    @app.command()
    def compact(as_json: JsonFlag = False) -> None:
        """Rewrite old sealed log segments into an equivalent shorter history."""
        client = Client(paths(), timeout=3600.0)
        with progress_bar("compacting", enabled=None if not wants_json(as_json) else False) \
                as update:
            try:
                answer = while_polling(lambda: client.request("POST", "/v1/compact", {}),
                                       lambda: polled(Client(paths(), timeout=2.0), "/v1/status",
                                                      "compaction"), update)
            except DaemonError as exc:
                fail(f"{exc.code}: {exc.message}")
            except DaemonUnavailable:
                answer = _offline(paths(), update)
        emit(answer, as_json=as_json, text=describe(answer))


def _offline(paths: Any, update: Callable[[int, int], None]) -> dict[str, Any]:
    from memlane.cli.offline import compact_offline

    return compact_offline(paths, progress=update)


def describe(answer: dict[str, Any]) -> str:
    before, after = answer["bytes_before"], answer["bytes_after"]
    if not answer["segments_compacted"]:
        return (f"nothing to compact: {answer['segments_examined']} segment(s) below seq "
                f"{answer['horizon']} (records after {answer['retention_cutoff']} keep every "
                "detail)")
    lines = [f"compacted {answer['segments_compacted']} of {answer['segments_examined']} "
             f"segment(s) below seq {answer['horizon']}: {before:,} → {after:,} bytes "
             f"({before / max(after, 1):.1f}×) in {answer['seconds']} s"]
    kinds = sorted(set(answer["by_kind_before"]) | set(answer["by_kind_after"]),
                   key=lambda k: -answer["by_kind_before"].get(k, 0))
    lines += [f"  {k:<17} {answer['by_kind_before'].get(k, 0):>14,} → "
              f"{answer['by_kind_after'].get(k, 0):>14,}" for k in kinds]
    return "\n".join(lines)
