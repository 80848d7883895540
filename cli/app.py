"""The ``memlane`` command: a thin client of the daemon (plus offline log tools)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Optional, TypeVar

import typer

from memlane.cli import daemonctl
from memlane.cli.client import Client, DaemonError, DaemonUnavailable
from memlane.cli.backupcmd import register as register_backup
from memlane.cli.compactcmd import register as register_compact
from memlane.cli.waitcmd import register as register_wait
from memlane.cli.configcmd import config_app
from memlane.cli.hookscmd import hook_command, hooks_app
from memlane.cli.lifecyclecmd import register as register_lifecycle
from memlane.cli.mcpcmd import mcp_app
from memlane.cli.modelcmd import model_app
from memlane.cli.servicecmd import service_app
from memlane.cli.synccmd import sync_app
from memlane.cli.uicmd import ui_command
from memlane.daemon.adapters.git_project import detect_project
from memlane.cli.render import emit, emit_lines, fail, wants_json
from memlane.daemon.adapters.paths import Paths, resolve_paths

app = typer.Typer(help="memlane: local memory lifecycle for coding assistants.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
daemon_app = typer.Typer(help="Run the daemon.", no_args_is_help=True)
log_app = typer.Typer(help="Inspect the event log.", no_args_is_help=True)
app.add_typer(daemon_app, name="daemon")
app.add_typer(log_app, name="log")
app.add_typer(model_app, name="model")
app.add_typer(config_app, name="config")
app.add_typer(mcp_app, name="mcp")
app.add_typer(hooks_app, name="hooks")
app.add_typer(service_app, name="service")
app.add_typer(sync_app, name="sync")
app.command(name="hook")(hook_command)
app.command(name="ui")(ui_command)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON (default when piped).")]
ProjectOpt = Annotated[Optional[str], typer.Option("--project", "-p",
                                                   help="Project (default: git root of cwd).")]
NoFallback = Annotated[bool, typer.Option("--no-fallback",
                                          help="Fail instead of loading the model in-process.")]
IMPORT_BATCH = 1000
T = TypeVar("T")


def _paths() -> Paths:
    return resolve_paths()


def _call(method: str, path: str, body: Any = None, *, timeout: float | None = None) -> Any:
    try:
        client = Client(_paths()) if timeout is None else Client(_paths(), timeout=timeout)
        return client.request(method, path, body)
    except DaemonUnavailable as exc:
        fail(f"{exc}. Start it with `memlane up`.", code=2)
    except DaemonError as exc:
        fail(f"{exc.code}: {exc.message}", code=1)


def _call_or_fallback(method: str, path: str, body: Any, fallback: Callable[[], T],
                      *, allowed: bool) -> T | Any:
    """Ask the daemon; when none answers, run ``fallback`` in this process (if allowed)."""
    try:
        return Client(_paths()).request(method, path, body)
    except DaemonError as exc:
        fail(f"{exc.code}: {exc.message}", code=1)
    except DaemonUnavailable as exc:
        if not allowed:
            fail(f"{exc}. Start it with `memlane up`.", code=2)
    print("memlane: no daemon answered; loading the model in this process (slower). "
          "`memlane up` keeps it warm.", file=sys.stderr)
    try:
        return fallback()
    except Exception as exc:  # the offline path's errors are the user's to read, not a trace
        fail(f"in-process fallback failed: {exc}")


@daemon_app.command("run")
def daemon_run() -> None:
    """Run the daemon in the foreground (what the service manager starts)."""
    from memlane.daemon.__main__ import main as run_main

    raise SystemExit(run_main())


@app.command()
def up(as_json: JsonFlag = False) -> None:
    """Start the daemon in the background (no-op when it already runs)."""
    paths = _paths()
    health = daemonctl.is_up(paths)
    if health is not None:
        emit({"running": True, "already": True, **health}, as_json=as_json,
             text="memlane is already running")
        return
    try:
        health = daemonctl.start_background(paths)
    except RuntimeError as exc:
        fail(str(exc))
    emit({"running": True, "already": False, **health}, as_json=as_json,
         text=f"memlane started (pid {health['pid']}, model {health.get('model') or 'loading'})")


@app.command()
def down(as_json: JsonFlag = False) -> None:
    """Stop the background daemon."""
    try:
        result = daemonctl.stop(_paths())
    except RuntimeError as exc:
        fail(str(exc))
    emit(result, as_json=as_json,
         text="memlane stopped" if result["stopped"] else "memlane was not running")


@app.command()
def store(text: str, project: ProjectOpt = None,
          kind: Annotated[Optional[str], typer.Option(help="decision, user-note, insight...")] = None,
          tag: Annotated[Optional[list[str]], typer.Option(help="A tag (repeatable).")] = None,
          as_json: JsonFlag = False) -> None:
    """Store a memory."""
    body = {"text": text, "project": project or detect_project(Path.cwd()), "kind": kind,
            "tags": tag or [], "source": "cli"}
    answer = _call("POST", "/v1/memories", body)
    note = " (duplicate of an existing memory)" if answer["duplicate"] else ""
    emit(answer, as_json=as_json, text=f"stored memory {answer['id']}{note}")


@app.command()
def get(memory_id: int, as_json: JsonFlag = False) -> None:
    """Show one memory."""
    memory = _call("GET", f"/v1/memories/{memory_id}")
    emit(memory, as_json=as_json,
         text=f"[{memory['id']}] {memory['state']} {memory['kind']} in {memory['project']}\n"
              f"{memory['text']}")


@app.command()
def pause(as_json: JsonFlag = False) -> None:
    """Capture nothing (marked prompts, session saves, what was shown) until `memlane resume`
    or the daemon restarts. One session: start its prompt with #off-the-record."""
    answer = _call("POST", "/v1/capture", {"paused": True})
    emit(answer, as_json=as_json, text="memlane: capture paused until `memlane resume`")


@app.command()
def resume(as_json: JsonFlag = False) -> None:
    """Capture again after `memlane pause`."""
    answer = _call("POST", "/v1/capture", {"paused": False})
    emit(answer, as_json=as_json, text="memlane: capturing again")


@app.command()
def status(as_json: JsonFlag = False) -> None:
    """Show the daemon's state: model, counts, last seq, and what the log's bytes hold."""
    from memlane.cli.sizes import describe_sizes

    answer = {**_call("GET", "/v1/status"), "sizes": _call("GET", "/v1/status/sizes")}
    emit(answer, as_json=as_json,
         text=json.dumps(answer, indent=2, ensure_ascii=False) + "\n\n" +
         describe_sizes(answer["sizes"]))


NO_HITS = "no memory is relevant enough (--all-hits shows the closest ones)"


@app.command()
def search(query: str, project: ProjectOpt = None,
           all_projects: Annotated[bool, typer.Option("--all", help="Search every project.")] = False,
           k: Annotated[int, typer.Option("-k", help="How many hits.", min=1, max=100)] = 10,
           recall: Annotated[bool, typer.Option("--recall",
                                                help="Record the hits as recalled.")] = False,
           all_hits: Annotated[bool, typer.Option(
               "--all-hits", help="Also show hits below the relevance floor, marked.")] = False,
           no_fallback: NoFallback = False, as_json: JsonFlag = False) -> None:
    """Search memories (dense + full text, fused); only hits above the relevance floor."""
    scope = None if all_projects else (project or detect_project(Path.cwd()))
    body = {"query": query, "project": scope, "k": k, "recall": recall, "floor": not all_hits}

    def offline() -> dict[str, Any]:
        from memlane.cli import inprocess

        if recall:
            print("memlane: --recall needs the daemon; hits are not recorded", file=sys.stderr)
        return {"hits": inprocess.search(_paths(), query, project=scope, k=k)}

    hits = _call_or_fallback("POST", "/v1/search", body, offline, allowed=not no_fallback)["hits"]
    text = "\n".join(_hit_line(h) for h in hits) or NO_HITS
    emit_lines(hits, as_json=as_json, text=text)


def _hit_line(hit: dict[str, Any]) -> str:
    mark = " (below floor)" if hit.get("below_floor") else ""
    return f"{hit['score']:.4f} [{hit['id']}]{mark} {hit['text']}"


@app.command()
def embed(texts: Annotated[list[str], typer.Argument(help="Texts to embed.")],
          query: Annotated[bool, typer.Option("--query", help="Embed as search queries.")] = False,
          dims: Annotated[Optional[int], typer.Option(help="Truncate (Matryoshka models).")] = None,
          no_fallback: NoFallback = False) -> None:
    """Print one JSON line per text: its vector from the local model."""
    input_type = "query" if query else "document"
    body: dict[str, Any] = {"input": texts, "input_type": input_type, "encoding_format": "base64"}
    if dims is not None:
        body["dimensions"] = dims

    def offline() -> dict[str, Any]:
        from memlane.cli import inprocess

        model, vectors = inprocess.embed(_paths(), texts, input_type=input_type, dims=dims)
        return {"model": model, "data": [{"index": i, "embedding": v}
                                         for i, v in enumerate(vectors)]}

    answer = _call_or_fallback("POST", "/v1/embeddings", body, offline, allowed=not no_fallback)
    for row in answer["data"]:
        vector = _floats(row["embedding"])
        print(json.dumps({"index": row["index"], "model": answer["model"], "dims": len(vector),
                          "embedding": vector}))


def _floats(embedding: str | list[float]) -> list[float]:
    """A vector from the daemon (base64 little-endian float32: a quarter of the JSON)."""
    if isinstance(embedding, list):
        return embedding
    import array
    import base64

    values = array.array("f", base64.b64decode(embedding))
    if sys.byteorder == "big":
        values.byteswap()
    return values.tolist()


@app.command(name="import")
def import_(file: Annotated[Path, typer.Argument(help="JSON lines; - for stdin.")],
            project: ProjectOpt = None, as_json: JsonFlag = False) -> None:
    """Import memories from JSON lines (text, project, kind, tags)."""
    default_project = project or detect_project(Path.cwd())
    handle = sys.stdin if str(file) == "-" else file.open(encoding="utf-8")
    from memlane.cli.progress import progress_bar

    totals = {"stored": 0, "duplicates": 0}
    batch: list[dict[str, Any]] = []
    with handle, progress_bar("importing", enabled=False if wants_json(as_json) else None) \
            as update:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                batch.append(_import_line(line, number, default_project))
            if len(batch) >= IMPORT_BATCH:
                _send_import(batch, totals)
                update(totals["stored"] + totals["duplicates"], 0)
                batch = []
        if batch:
            _send_import(batch, totals)
    emit(totals, as_json=as_json,
         text=f"imported {totals['stored']} memories ({totals['duplicates']} duplicates)")


def _import_line(line: str, number: int, default_project: str) -> dict[str, Any]:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        fail(f"line {number}: not JSON ({exc})")
    if not isinstance(row, dict) or not isinstance(row.get("text"), str):
        fail(f"line {number}: expected an object with a \"text\" string")
    return {"text": row["text"], "project": row.get("project") or default_project,
            "kind": row.get("kind"), "tags": row.get("tags") or [], "source": "import"}


def _send_import(batch: list[dict[str, Any]], totals: dict[str, int]) -> None:
    answer = _call("POST", "/v1/import", {"memories": batch})
    totals["stored"] += answer["stored"]
    totals["duplicates"] += answer["duplicates"]


@app.command()
def export(project: Annotated[Optional[str], typer.Option("--project", "-p")] = None,
           include_expired: Annotated[bool, typer.Option("--include-expired")] = False) -> None:
    """Export memories as JSON lines (text, project, kind, tags)."""
    query = "?include_expired=1" if include_expired else ""
    if project:
        query += ("&" if query else "?") + "project=" + _quote(project)
    for row in _call("GET", f"/v1/export{query}")["memories"]:
        print(json.dumps(row, ensure_ascii=False))


def _quote(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="")


@app.command()
def rebuild(as_json: JsonFlag = False) -> None:
    """Delete the projections and replay them from the log."""
    from memlane.cli.progress import polled, progress_bar, while_polling

    paths = _paths()
    with progress_bar("replaying", enabled=False if wants_json(as_json) else None) as update:
        if daemonctl.is_up(paths) is not None:
            result = while_polling(lambda: _call("POST", "/v1/rebuild", timeout=3600.0),
                                   lambda: polled(Client(paths, timeout=2.0), "/v1/rebuild"),
                                   update)
        else:
            from memlane.cli.offline import rebuild_offline

            result = rebuild_offline(paths, update)
    emit(result, as_json=as_json, text=f"replayed {result['replayed']} events")


@app.command()
def token() -> None:
    """Print the TCP bearer token (create it if needed)."""
    from memlane.daemon.adapters.token_file import ensure_token

    print(ensure_token(_paths().token))


@app.command()
def doctor(as_json: JsonFlag = False) -> None:
    """Check the daemon, service, permissions, model, log, disk, LLM key and hooks."""
    from dataclasses import asdict

    from memlane.cli.doctor import run_checks

    findings = run_checks(_paths())
    marks = {True: "ok  ", False: "FAIL", None: "--  "}
    emit({"ok": all(f.ok is not False for f in findings), "checks": [asdict(f) for f in findings]},
         as_json=as_json, text="\n".join(
             f"{marks[f.ok]} {f.check:<18} {f.detail}" + (f"\n     fix: {f.fix}" if f.fix else "")
             for f in findings))
    if any(f.ok is False for f in findings):
        raise SystemExit(1)


@log_app.command("verify")
def log_verify(as_json: JsonFlag = False) -> None:
    """Check every record's checksum and the seq order."""
    from memlane.cli.logcmd import verify

    result = verify(_paths().log_dir)
    emit(result, as_json=as_json,
         text=(f"log ok: {result['records']} records, last seq {result['last_seq']}"
               if result["ok"] else f"log damaged: {result['error']}"))
    if not result["ok"]:
        raise SystemExit(3)


@log_app.command("tail")
def log_tail(n: Annotated[int, typer.Option("-n", help="How many records.")] = 10) -> None:
    """Print the last records as JSON lines."""
    from memlane.cli.logcmd import tail

    for row in tail(_paths().log_dir, n):
        print(json.dumps(row, ensure_ascii=False, default=str))


register_lifecycle(app, _call, _paths,
                   lambda project: project or detect_project(Path.cwd()))
register_compact(app, _paths)
register_backup(app, _call, _paths)
register_wait(app, _paths)


def main() -> None:
    app()
