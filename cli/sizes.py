"""The log's sizes as a few readable lines (``memlane status``, ``memlane doctor``)."""

from __future__ import annotations

from typing import Any

MIB = 1024 * 1024


def mib(count: int) -> str:
    return f"{count / MIB:,.1f} MiB"


def describe_sizes(sizes: dict[str, Any], top: int = 6) -> str:
    log = sizes["log"]
    lines = [f"log: {mib(log['bytes'])} in {log['segments']} segment(s); "
             f"+{mib(log['growth_7d']['bytes'])} over the last 7 days",
             "  by kind:    " + ", ".join(f"{k} {mib(n)}" for k, n in
                                          list(log["by_kind"].items())[:top]),
             "  by project: " + ", ".join(f"{k} {mib(n)}" for k, n in
                                          list(log["by_project"].items())[:top]),
             "projections: " + ", ".join(f"{k} {mib(n)}" for k, n in
                                         sizes["projections"].items())]
    compaction = sizes.get("compaction") or {}
    if compaction.get("budget_bytes"):
        state = "OVER BUDGET after compacting" if compaction["over_budget"] else "within"
        lines.append(f"disk budget: {mib(compaction['budget_bytes'])} ({state})")
    return "\n".join(lines)


def budget_problem(sizes: dict[str, Any]) -> str | None:
    """Why the log is past its disk budget even after compaction, or None."""
    compaction = sizes.get("compaction") or {}
    if not compaction.get("over_budget"):
        return None
    return (f"the log holds {mib(sizes['log']['bytes'])}, past the disk budget of "
            f"{mib(compaction['budget_bytes'])} even after compaction (live memories are "
            "never dropped to fit)")
