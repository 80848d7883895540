"""CLI commands for the memory lifecycle: jobs, inspection, forget/restore, replay, briefing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from memlane.cli.render import emit, emit_lines, fail, wants_json

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON (default when piped).")]
Call = Callable[..., Any]


def register(app: typer.Typer, call: Call, paths: Callable[[], Any],
             project_of: Callable[[Optional[str]], str]) -> None:
    """Add the lifecycle commands to ``app``; ``call(method, path, body)`` asks the daemon."""

    @app.command()
    def cluster(as_json: JsonFlag = False) -> None:
        """Find new clusters of closely related memories now."""
        answer = call("POST", "/v1/jobs/cluster", {})
        emit(answer, as_json=as_json, text="\n".join(
            f"cluster {c['id']}: {c['members']}" for c in answer["clusters"]) or "no new cluster")

    @app.command()
    def consolidate(offline: Annotated[bool, typer.Option(
            "--offline", help="Merge extractively, without an LLM.")] = False,
            as_json: JsonFlag = False) -> None:
        """Merge waiting clusters into proven memories now."""
        answer = call("POST", "/v1/jobs/consolidate", {"offline": offline})
        emit(answer, as_json=as_json, text="\n".join(
            f"cluster {c['cluster']} → proven memory {c['proven']} (from {c['sources']})"
            for c in answer["consolidated"]) or "nothing to consolidate")

    @app.command()
    def age(dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list.")] = False,
            as_json: JsonFlag = False) -> None:
        """Reprieve or expire isolated old memories (--dry-run lists what would happen)."""
        answer = call("POST", "/v1/jobs/age", {"dry_run": dry_run})
        verb = "would" if dry_run else "did"
        emit_lines(answer["decisions"], as_json=as_json, text="\n".join(
            f"{verb} {d['action']} [{d['id']}]: {d['reason']}" for d in answer["decisions"])
            or "nothing to age")

    @app.command()
    def links(memory_id: int, as_json: JsonFlag = False) -> None:
        """The memories linked to one, strongest first."""
        rows = call("GET", f"/v1/memories/{memory_id}/links")["links"]
        emit_lines(rows, as_json=as_json, text="\n".join(
            f"{r['similarity']:.3f} → [{r['other']}]" for r in rows) or "no links")

    @app.command()
    def clusters(open_only: Annotated[bool, typer.Option("--open", help="Only waiting ones.")]
                 = False, as_json: JsonFlag = False) -> None:
        """Clusters and what they were consolidated into."""
        rows = call("GET", "/v1/clusters" + ("?open=1" if open_only else ""))["clusters"]
        emit_lines(rows, as_json=as_json, text="\n".join(
            f"cluster {c['id']} {c['members']} cohesion {c['cohesion']:.3f} → "
            f"{_outcome(c['consolidated_into'])}" for c in rows) or "no clusters")

    @app.command()
    def lineage(memory_id: int, as_json: JsonFlag = False) -> None:
        """The sources a memory was consolidated from, and what it was consolidated into."""
        answer = call("GET", f"/v1/memories/{memory_id}/lineage")
        emit(answer, as_json=as_json,
             text=f"[{memory_id}] from {answer['parents'] or '-'}; into {answer['children'] or '-'}")

    @app.command()
    def history(memory_id: int, as_json: JsonFlag = False) -> None:
        """Every event that touched a memory, with reasons."""
        rows = call("GET", f"/v1/memories/{memory_id}/history")["events"]
        emit_lines(rows, as_json=as_json, text="\n".join(
            f"{r['seq']:>8} {r['at'][:19]} {r['type']:<13} "
            f"{r.get('reason') or r.get('similarity') or ''}" for r in rows))

    @app.command()
    def forget(memory_id: Annotated[Optional[int], typer.Argument()] = None,
               project: Annotated[Optional[str], typer.Option(
                   "--project", help="Forget every memory of this project.")] = None,
               keep_descendants: Annotated[bool, typer.Option(
                   "--keep-descendants", help="Keep memories consolidated from it.")] = False,
               verify: Annotated[Optional[str], typer.Option(
                   "--verify", help="Only byte-scan the state and routed files for TEXT.")]
               = None, as_json: JsonFlag = False) -> None:
        """Purge a memory's (or with --project, a whole project's) text and vector everywhere,
        the log included (and, unless --keep-descendants, what was consolidated from it);
        --verify TEXT proves it is gone."""
        if verify is not None:
            scan = call("POST", "/v1/forget/verify", {"texts": [verify]})
            emit(scan, as_json=as_json, text=_scan_text(scan))
            if scan["matches"]:
                raise typer.Exit(1)
            return
        if project is not None:
            answer = call("POST", "/v1/projects/forget", {"project": project})
            emit(answer, as_json=as_json,
                 text=f"forgot {len(answer['forgotten'])} memories of {project}")
            return
        if memory_id is None:
            fail("give a memory id to forget, --project P, or --verify TEXT")
        answer = call("POST", f"/v1/memories/{memory_id}/forget",
                      {"keep_descendants": keep_descendants})
        diffs = "".join(d["diff"] for d in answer["routed"])
        emit(answer, as_json=as_json, text=f"forgot memories {answer['memories']}; "
             f"{_scan_text(answer['verify'])}" + (f"\n{diffs}" if diffs else ""))

    def _scan_text(scan: dict[str, Any]) -> str:
        if not scan["needles"]:
            return "no text left to scan for"
        where = "".join(f"\n  {p}" for p in scan["files_with_matches"])
        return (f"scanned {scan['files_scanned']} files: "
                + (f"text found in {scan['matches']}:{where}" if scan["matches"] else "not found"))

    @app.command()
    def briefing(project: Annotated[Optional[str], typer.Option("--project", "-p")] = None,
                 context: Annotated[Optional[str], typer.Option(help="What the session is about.")]
                 = None,
                 budget: Annotated[int, typer.Option(
                     help="Estimated tokens at most (about 4 characters each).")] = 1500,
                 as_json: JsonFlag = False) -> None:
        """The memories worth knowing at a session start."""
        answer = call("POST", "/v1/briefing", {"project": project_of(project), "context": context,
                                               "budget": budget})
        emit(answer, as_json=as_json, text=answer["text"] or "nothing to brief")

    @app.command()
    def replay(until: Annotated[str, typer.Option(help="A seq or an ISO time (local if no zone).")],
               into: Annotated[Path, typer.Option(help="A new directory for the replayed state.")],
               as_json: JsonFlag = False) -> None:
        """Rebuild the state as it was at a seq or a time into a separate memlane home."""
        from memlane.cli.offline import replay_until

        try:
            answer = replay_until(paths(), until, into)
        except ValueError as exc:
            fail(str(exc))
        emit(answer, as_json=as_json,
             text=f"replayed up to seq {answer['until_seq']} into {into}: {answer['memories']}; "
                  f"inspect it with MEMLANE_HOME={into} memlane ...")

    @app.command(name="route")
    def route_(dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the diffs only.")]
               = False,
               write: Annotated[bool, typer.Option(
                   "--write", help="Write even where the project has not opted in.")] = False,
               as_json: JsonFlag = False) -> None:
        """Route proven memories into CLAUDE.md / .claude/rules / docs (or propose them)."""
        answer = call("POST", "/v1/jobs/route", {"dry_run": dry_run, "write": write})
        emit_lines(answer["routes"], as_json=as_json, text="\n".join(
            f"{r['action']} [{r['memory']}] → {r['target']}: {r['verdict']}\n{r['diff']}"
            for r in answer["routes"]) or "nothing to route")

    @app.command()
    def routes(as_json: JsonFlag = False) -> None:
        """Routing decisions: proposed, written, skipped."""
        rows = call("GET", "/v1/routes")["routes"]
        emit_lines(rows, as_json=as_json, text="\n".join(
            f"{r['action']:<9} [{r['memory']}] → {r['target']}: {r['verdict']}" for r in rows)
            or "no routes")

    @app.command()
    def calibrate(apply: Annotated[bool, typer.Option(
            "--apply", help="Record the suggested thresholds.")] = False,
            as_json: JsonFlag = False) -> None:
        """Similarity distribution of your memories and suggested thresholds for the model."""
        answer = call("POST", "/v1/calibrate", {"apply": apply})
        text = None if wants_json(as_json) else calibration_text(answer)
        emit(answer, as_json=as_json, text=text)

    @app.command()
    def remember(text: str, project: Annotated[Optional[str], typer.Option("--project", "-p")]
                 = None) -> None:
        """Store a note (kind from #decision, #note or #insight in the text); one line out,
        for Claude Code's `!` and custom slash commands."""
        from memlane.cli.quick import remember as remember_now

        remember_now(text, project)

    @app.command()
    def recall(query: str, project: Annotated[Optional[str], typer.Option("--project", "-p")]
               = None, k: Annotated[int, typer.Option("-k", min=1, max=20)] = 5) -> None:
        """Memories for a question, one compact line each (recorded as recalled)."""
        from memlane.cli.quick import recall as recall_now

        recall_now(query, project, k)


def _outcome(consolidated_into: int | None) -> str:
    """What became of a cluster (0: the user rejected its merge in the viewer's review)."""
    return {None: "waiting", 0: "rejected"}.get(consolidated_into, str(consolidated_into))


def calibration_text(answer: dict[str, Any]) -> str:
    """The calibration readably: the relevance probes, then each threshold with its why."""
    probes = answer["relevance_probes"]
    lines = [(f"{answer['model']}: {answer['memories']} memories,"
              f" {answer['suspected_duplicates']} suspected duplicates"),
             (f"relevance probes: {probes['own']} recorded queries, {probes['negative']} asked"
              f" in other projects ({probes['projects']} projects with enough memories)")]
    for label in ("current", "suggested"):
        at = probes[label]
        if at["negatives_empty"] is not None:
            lines.append(f"  {label} {at['value']}: {at['negatives_empty']:.1%} of those get"
                         f" nothing, {at['own_held_back']:.1%} of your queries held back")
    for name, value in answer["suggested"].items():
        was = answer["current"].get(name)
        change = f"{value}" if value == was else f"{was} → {value}"
        lines.append(f"{name} {change}: {answer['why'].get(name, '')}")
    lines.append("applied" if answer["applied"] else "not applied (--apply records them)")
    return "\n".join(lines)
