"""A local server speaking the part of Gemini's REST protocol memlane uses:
``POST /{v1|v1beta}/models/{model}:generateContent`` with the key in ``x-goog-api-key``.

Replies come from a script (``queue``), then from a responder that builds a plausible answer
from the request. Every request is recorded, including those answered with an error.
"""

from __future__ import annotations

import json
import re
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

_ROUTE = re.compile(r"^/(?P<version>v1|v1beta)/models/(?P<model>[^/:]+):generateContent$")
_MEMORIES = re.compile(r"<memories>\n(?P<lines>.*?)\n</memories>", re.DOTALL)
_STATUS_NAMES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
                 404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL",
                 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}


@dataclass(frozen=True)
class Text:
    """A 200 whose first candidate's only part is ``text`` (valid JSON or not)."""

    text: str


@dataclass(frozen=True)
class Error:
    """An HTTP error with Google's body: ``{"error": {"code", "message", "status"}}``."""

    status: int
    message: str = "the fake Gemini says no"


@dataclass(frozen=True)
class Stall:
    """No answer until the server closes (or ``seconds`` pass): longer than any client timeout."""

    seconds: float = 30.0


@dataclass(frozen=True)
class Blocked:
    """A 200 without candidates: the prompt was blocked for safety."""

    reason: str = "SAFETY"


Reply = Text | Error | Stall | Blocked


def json_text(value: Any) -> Text:
    """A reply whose text is ``value`` as JSON."""
    return Text(json.dumps(value))


@dataclass(frozen=True)
class GeminiRequest:
    """One request as the server saw it."""

    version: str
    model: str
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def api_key(self) -> str | None:
        return self.headers.get("x-goog-api-key")

    @property
    def generation_config(self) -> dict[str, Any]:
        config: dict[str, Any] = self.body.get("generationConfig", {})
        return config

    @property
    def contents(self) -> list[dict[str, Any]]:
        contents: list[dict[str, Any]] = self.body.get("contents", [])
        return contents

    @property
    def prompt(self) -> str:
        """The text of the last content (the turn the model answers)."""
        return "".join(part.get("text", "") for part in self.contents[-1]["parts"])

    @property
    def schema_fields(self) -> set[str]:
        return set(self.generation_config.get("responseSchema", {}).get("properties", {}))


def plausible_reply(request: GeminiRequest) -> Reply:
    """A valid answer for the structured output the request asks for."""
    fields = request.schema_fields
    if {"text", "kind", "tags", "title"} <= fields:
        return json_text(_join_memories(request.prompt))
    if "verdict" in fields:
        return json_text({"verdict": "unrelated", "reason": "fake: no overlap checked"})
    if "keep" in fields:
        return json_text({"keep": True, "reason": "fake: everything is kept"})
    return Text("plain text")


def _join_memories(prompt: str) -> dict[str, Any]:
    match = _MEMORIES.search(prompt)
    sources = [json.loads(line) for line in match["lines"].splitlines()] if match else []
    tags = list(dict.fromkeys(tag for source in sources for tag in source["tags"]))
    text = " ".join(source["text"] for source in sources) or "nothing to merge"
    return {"text": text, "kind": "note", "tags": tags, "title": text[:40]}


@dataclass
class FakeGemini:
    """Serves on an ephemeral localhost port while used as a context manager."""

    api_key: str = "fake-gemini-key"
    respond: Callable[[GeminiRequest], Reply] = plausible_reply
    requests: list[GeminiRequest] = field(default_factory=list)
    _script: deque[Reply] = field(default_factory=deque)
    _closing: threading.Event = field(default_factory=threading.Event)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    def queue(self, *replies: Reply) -> None:
        """Answer the next requests with ``replies``, in order."""
        self._script.extend(replies)

    def reset(self) -> None:
        """Forget the script and the recorded requests (a server shared between tests)."""
        self._script.clear()
        self.requests.clear()

    @property
    def base_url(self) -> str:
        assert self._server is not None, "use FakeGemini as a context manager"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def next_reply(self, request: GeminiRequest) -> Reply:
        self.requests.append(request)
        if request.api_key != self.api_key:
            return Error(400, "API key not valid. Please pass a valid API key.")
        return self._script.popleft() if self._script else self.respond(request)

    def __enter__(self) -> Self:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        # A short poll interval: shutdown() waits up to one interval.
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.01,),
                                        daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None and self._thread is not None
        self._closing.set()  # releases stalled handlers
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)


def _handler(fake: FakeGemini) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # else a delayed ACK costs ~40 ms per reply

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            match = _ROUTE.match(self.path.split("?")[0])
            if match is None:
                self._send(404, _error_body(404, f"{self.path} is not a generateContent path"))
                return
            headers = {name.lower(): value for name, value in self.headers.items()}
            request = GeminiRequest(match["version"], match["model"], headers, body)
            self._answer(request, fake.next_reply(request))

        def _answer(self, request: GeminiRequest, reply: Reply) -> None:
            match reply:
                case Text(text):
                    self._send(200, _candidate_body(request.model, text))
                case Error(status, message):
                    self._send(status, _error_body(status, message))
                case Blocked(reason):
                    self._send(200, {"promptFeedback": {"blockReason": reason}})
                case Stall(seconds):
                    fake._closing.wait(seconds)
                    self.close_connection = True

        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


def _candidate_body(model: str, text: str) -> dict[str, Any]:
    prompt_tokens, reply_tokens = 50, max(1, len(text) // 4)
    return {
        "candidates": [{"content": {"role": "model", "parts": [{"text": text}]},
                        "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": prompt_tokens, "candidatesTokenCount": reply_tokens,
                          "totalTokenCount": prompt_tokens + reply_tokens},
        "modelVersion": model,
        "responseId": "fake-response",
    }


def _error_body(status: int, message: str) -> dict[str, Any]:
    return {"error": {"code": status, "message": message,
                      "status": _STATUS_NAMES.get(status, "UNKNOWN")}}
