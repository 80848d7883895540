"""Commands that Claude Code runs on every prompt or slash command, kept off the CLI framework:
a fresh ``memlane recall`` pays the interpreter and one request, not Typer's imports.

``main`` in :mod:`memlane.cli.main` sends ``recall`` and ``remember`` here when their arguments
are plain; anything else (``--help``, a typo) goes to the full CLI, which explains itself.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from memlane.cli.client import Client, DaemonError, DaemonUnavailable
from memlane.daemon.adapters.paths import resolve_paths
from memlane.daemon.adapters.git_project import detect_project

LINE_CHARS = 240


def _call(method: str, path: str, body: object) -> object:
    try:
        return Client(resolve_paths()).request(method, path, body)
    except DaemonUnavailable as exc:
        print(f"memlane: {exc}. Start it with `memlane up`.", file=sys.stderr)
        raise SystemExit(2) from None
    except DaemonError as exc:
        print(f"memlane: {exc.code}: {exc.message}", file=sys.stderr)
        raise SystemExit(1) from None


def recall(query: str, project: str | None, k: int) -> None:
    """Print one compact line per memory for ``query`` (recorded as recalled)."""
    answer = _call("POST", "/v1/search", {"query": query, "k": k, "recall": True,
                                          "project": project or detect_project(Path.cwd())})
    hits = answer["hits"]  # type: ignore[index]
    for hit in hits:
        text = " ".join(hit["text"].split())
        print(f"[{hit['id']}] {text if len(text) <= LINE_CHARS else text[:LINE_CHARS - 1] + '…'}")
    if not hits:
        print("no memories match")


def remember(text: str, project: str | None) -> None:
    """Store a note (kind from #decision, #note or #insight) and say so in one line."""
    answer = _call("POST", "/v1/memories", {"text": text, "source": "remember",
                                            "project": project or detect_project(Path.cwd())})
    note = " (already known)" if answer["duplicate"] else ""  # type: ignore[index]
    print(f"remembered [{answer['id']}] as {answer['kind']}{note}")  # type: ignore[index]


def relay_hook(event: str, timeout: float) -> None:
    """Send a Claude Code hook's stdin to the daemon and print its output, if any. A marked
    prompt the daemon cannot take now (down, starting, too slow) is spooled, and the user is
    told either way: a ``#decision`` is never dropped silently."""
    import json

    # Like hook.sh: whatever goes wrong, the session goes on without memlane's output.
    if not (event.isascii() and event.isalpha()):
        return
    try:
        body = json.loads(sys.stdin.buffer.read())
    except (OSError, ValueError):
        return
    try:
        answer = Client(resolve_paths(), timeout=timeout).request("POST", f"/hooks/{event}", body)
    except (OSError, DaemonUnavailable) as exc:
        answer = spool_marked(event, body, str(exc) or type(exc).__name__)
    except DaemonError as exc:
        answer = spool_marked(event, body, exc.message) if exc.status >= 500 else None
    if isinstance(answer, dict) and answer:
        print(json.dumps(answer, ensure_ascii=False))


def spool_marked(event: str, body: object, reason: str) -> dict[str, str] | None:
    """Spool a marked prompt for the daemon's replay; the hook output telling the user."""
    import json

    from memlane.daemon.adapters.spool import append_entry
    from memlane.daemon.domain.kinds import prompt_marks
    from memlane.daemon.domain.redaction import redact

    if event != "UserPromptSubmit" or not isinstance(body, dict):
        return None
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or prompt_marks(prompt).kind is None:
        return None
    # Redacted before it touches the disk: a secret never waits in the spool.
    entry = {"prompt": redact(prompt).text, "cwd": body.get("cwd", ""),
             "session_id": body.get("session_id", "")}
    try:
        append_entry(resolve_paths().home, json.dumps(entry).encode())
    except OSError as exc:
        return {"systemMessage": f"memlane: this marked prompt was NOT saved (the daemon is "
                                 f"unavailable: {reason}; the spool failed: {exc}). "
                                 f"Start it with `memlane up` and send it again."}
    return {"systemMessage": "memlane: the daemon is not answering; this marked prompt was "
                             "spooled and will be stored when it is back (`memlane up`)."}


def parse_hook(argv: Sequence[str]) -> tuple[str, float] | None:
    """(event, timeout) for ``hook <Event> [--timeout S]``, else None."""
    if len(argv) == 2 and argv[0] == "hook":
        return argv[1], 2.0
    if len(argv) == 4 and argv[0] == "hook" and argv[2] == "--timeout":
        try:
            return argv[1], float(argv[3])
        except ValueError:
            return None
    return None


def parse(argv: Sequence[str]) -> tuple[str, str, str | None, int] | None:
    """(command, text, project, k) for plain ``recall``/``remember`` arguments, else None.

    The words of the text may come unquoted (``memlane recall how do we deploy``), options
    before or after them; ``--`` ends the options. A blank text is refused here, clearly."""
    if len(argv) < 2 or argv[0] not in ("recall", "remember"):
        return None
    command, rest = argv[0], list(argv[1:])
    options: dict[str, str | None] = {"-p": None, "--project": None}
    if command == "recall":
        options["-k"] = None
    words = []
    while rest:
        item = rest.pop(0)
        if item == "--":
            words += rest
            break
        if item in options and rest:
            options[item] = rest.pop(0)
        elif item.startswith("-") and item != "-":
            return None
        else:
            words.append(item)
    k = options.get("-k")
    if not words or (k is not None and not (k.isdigit() and 1 <= int(k) <= 20)):
        return None
    text = " ".join(words)
    if not text.strip():
        print(f"memlane: {command} needs some words, e.g. `memlane {command} how we deploy`",
              file=sys.stderr)
        raise SystemExit(2)
    return command, text, options["-p"] or options["--project"], int(k or 5)
