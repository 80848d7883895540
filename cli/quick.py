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
    """Send a Claude Code hook's stdin to the daemon and print its output, if any."""
    import json

    # Like hook.sh: whatever goes wrong, the session goes on without memlane's output.
    if not (event.isascii() and event.isalpha()):
        return
    try:
        body = json.loads(sys.stdin.buffer.read())
        answer = Client(resolve_paths(), timeout=timeout).request("POST", f"/hooks/{event}", body)
    except (OSError, ValueError, DaemonUnavailable, DaemonError):
        return
    if isinstance(answer, dict) and answer:
        print(json.dumps(answer, ensure_ascii=False))


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
    """(command, text, project, k) for plain ``recall``/``remember`` arguments, else None."""
    if len(argv) < 2 or argv[0] not in ("recall", "remember"):
        return None
    command, rest = argv[0], list(argv[1:])
    options = {"-p": None, "--project": None, "-k": None} if command == "recall" else \
        {"-p": None, "--project": None}
    positional = []
    while rest:
        item = rest.pop(0)
        if item in options and rest:
            options[item] = rest.pop(0)
        elif item.startswith("-"):
            return None
        else:
            positional.append(item)
    k = options.get("-k")
    if len(positional) != 1 or (k is not None and not (k.isdigit() and 1 <= int(k) <= 20)):
        return None
    return command, positional[0], options["-p"] or options["--project"], int(k or 5)
