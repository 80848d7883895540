"""Hostile-input oracle and strategies for the HTTP API of one real daemon.

The oracle (:class:`Target.exchange`): every answer is well-formed HTTP; no answer is a 5xx
(two documented exceptions below); every error carries ``{"error": {"code", "message"}}``;
and a rejected request (no answer, or only 4xx answers) leaves ``last_seq`` where it was.
"""

from __future__ import annotations

import json
import select
import time
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from memlane.daemon.service.requests import MAX_TEXT
from tests.e2e.daemon import DaemonProcess
from tests.reliability.wire import Endpoint, Exchange, Reply, call, error_of, send_raw

SETTLE_TIMEOUT = 120.0
HEAD_TIMEOUT = 10.0  # daemon.server.Limits.head_timeout


def allowed_5xx(reply: Reply) -> bool:
    """RFC 9112 §6.1 asks for 501 on a transfer coding the server does not know; 503 no_llm is
    the documented answer to a consolidation asked of a daemon without an LLM key."""
    if reply.head:
        return False
    error = error_of(reply)
    return ((reply.status == 501 and "Transfer-Encoding" in error["message"])
            or (reply.status == 503 and error["code"] == "no_llm"))


def assert_answered_safely(exchange: Exchange) -> None:
    for reply in exchange.replies:
        assert reply.status < 500 or allowed_5xx(reply), reply
        if reply.status >= 400 and not reply.head:
            error_of(reply)


@dataclass
class Target:
    """One daemon under attack; knows whether background work may still append."""

    daemon: DaemonProcess
    endpoint: Endpoint
    dirty: bool = True  # a fresh daemon appends its model_changed record soon after ready

    def status(self) -> dict[str, Any]:
        reply = call(self.endpoint, "GET", "/v1/status")
        assert reply.status == 200, reply
        return reply.json()  # type: ignore[no-any-return]

    def settle(self) -> None:
        """Wait until earlier accepted requests have nothing left to append (vectors, links)."""
        deadline = time.monotonic() + SETTLE_TIMEOUT
        while True:
            status = self.status()
            if (status["last_seq"] >= 1 and status["embedding_backlog"] == 0
                    and status["applied_seq"] == status["last_seq"]):
                self.dirty = False
                return
            assert time.monotonic() < deadline, f"the daemon did not settle: {status}"
            time.sleep(0.02)

    def exchange(self, raw: bytes, *, tcp: bool = False, head: bool = False) -> Exchange:
        """Send raw bytes and check the oracle; returns what came back."""
        if self.dirty:
            self.settle()
        before = self.status()["last_seq"]
        exchange = send_raw(self.endpoint, raw, tcp=tcp, head=head)
        assert_answered_safely(exchange)
        if exchange.rejected:
            after = self.status()["last_seq"]
            assert after == before, f"a rejected request appended: {raw[:200]!r}"
        else:
            self.dirty = True
        return exchange

    def assert_alive(self) -> None:
        assert self.daemon.process is not None and self.daemon.process.poll() is None, (
            self.daemon.stderr())
        assert call(self.endpoint, "GET", "/v1/health").json()["status"] == "ready"


# -- well-formed bodies, and ways to break them -------------------------------------------------

VALID: dict[str, dict[str, Any]] = {
    "/v1/memories": {"text": "we deploy with blue-green", "project": "p", "kind": "decision",
                     "tags": ["ops"], "idempotency_key": "k1"},
    "/v1/search": {"query": "how do we deploy", "project": "p", "k": 5, "recall": False},
    "/v1/embeddings": {"input": ["a text"], "encoding_format": "float", "input_type": "query",
                       "dimensions": 384},
    "/v1/briefing": {"project": "p", "context": "deploys", "budget": 500},
    "/v1/import": {"memories": [{"text": "imported", "project": "p"}]},
}
REQUIRED = {"/v1/memories": "text", "/v1/search": "query", "/v1/embeddings": "input",
            "/v1/import": "memories"}
STORE_FIELDS = {"text", "project", "kind", "tags", "source", "idempotency_key"}
STRICT = ("/v1/memories", "/v1/search", "/v1/briefing", "/v1/import")  # unknown fields refused

json_scalars = st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(
    allow_nan=False, allow_infinity=False) | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=4),
    max_leaves=12)


def is_text(value: Any) -> bool:
    return isinstance(value, str) and 1 <= len(value) <= MAX_TEXT


def fits(route: str, name: str, value: Any) -> bool:
    """Whether ``value`` is acceptable for field ``name`` (the mutation must break it)."""
    match name:
        case "text" | "query":
            return is_text(value)
        case "context":
            return value is None or (isinstance(value, str) and len(value) <= MAX_TEXT)
        case "project" | "kind" | "idempotency_key":
            return value is None or (isinstance(value, str) and 1 <= len(value) <= 200)
        case "tags":
            return isinstance(value, list) and all(isinstance(t, str) and 1 <= len(t) <= 64
                                                   for t in value) and len(value) <= 32
        case "k":
            return type(value) is int and 1 <= value <= 100
        case "budget":
            return type(value) is int and 200 <= value <= 100_000
        case "recall":
            return isinstance(value, bool)
        case "input":
            return is_text(value) or (isinstance(value, list) and 1 <= len(value) <= 2048
                                      and all(is_text(v) for v in value))
        case "encoding_format":
            return value in ("float", "base64")
        case "input_type":
            return value in ("query", "document")
        case "dimensions":
            return value is None or value == 384
        case "memories":  # over-approximated: only values surely invalid may be generated
            return isinstance(value, list) and all(
                isinstance(m, dict) and set(m) <= STORE_FIELDS and is_text(m.get("text"))
                for m in value)
    raise AssertionError(f"no rule for {route} {name}")


@st.composite
def invalid_bodies(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """A valid body with one field of the wrong type, a required field dropped, or an unknown
    field added (where the schema forbids unknown fields)."""
    route = draw(st.sampled_from(sorted(VALID)))
    body = dict(VALID[route])
    how = draw(st.sampled_from(["wrong", "missing", "unknown"]))
    if how == "missing" and route in REQUIRED:
        del body[REQUIRED[route]]
    elif how == "unknown" and route in STRICT:
        body[draw(st.text(min_size=1, max_size=10).filter(lambda k: k not in body))] = draw(
            json_values)
    else:
        name = draw(st.sampled_from(sorted(body)))
        body[name] = draw(json_values.filter(lambda v: not fits(route, name, v)))
    return route, body


JSON_ROUTES = ("/v1/memories", "/v1/search", "/v1/embeddings", "/v1/import", "/v1/briefing",
               "/v1/calibrate", "/v1/jobs/age", "/hooks/UserPromptSubmit", "/hooks/Stop")


def is_malformed_json(data: bytes) -> bool:
    try:
        json.loads(data)
    except ValueError:
        return True
    return False


@st.composite
def malformed_json(draw: st.DrawFn) -> bytes:
    """Truncated, spliced or free-form text that is not JSON (always valid UTF-8: invalid UTF-8
    inside a string has a test of its own)."""
    valid = json.dumps(VALID[draw(st.sampled_from(sorted(VALID)))])
    cut = draw(st.integers(0, len(valid) - 1))
    inserted = draw(st.sampled_from("{}[],:\"\\ \t'nu"))
    candidates = st.sampled_from([valid[:cut], valid[:cut] + valid[cut + 1:],
                                  valid[:cut] + inserted + valid[cut:],
                                  valid + draw(st.text(min_size=1, max_size=5))])
    text = draw((candidates | st.text(min_size=1, max_size=200)).filter(
        lambda t: t != "" and is_malformed_json(t.encode())))
    return text.encode()  # type: ignore[no-any-return]


# -- whole requests on the wire -----------------------------------------------------------------

KNOWN_PATHS = ("/v1/memories", "/v1/memories/1", "/v1/memories/1/links", "/v1/memories/2/history",
               "/v1/memories/1/forget", "/v1/memories/999999999999999999", "/v1/search",
               "/v1/embeddings", "/v1/status", "/v1/health", "/v1/import", "/v1/export",
               "/v1/clusters?open=1", "/v1/briefing", "/v1/routes", "/v1/calibrate",
               "/v1/jobs/age", "/v1/jobs/consolidate", "/hooks/SessionStart", "/hooks/Nope",
               "/v1/status?x=%00&y=%ff", "*", "http://localhost/v1/health", "/../../etc/passwd")
METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT", "HEAD",
           "get", "P0ST", "G\x00T", "GET GET", "")
SPECIAL_HEADERS = ("Content-Length", "Transfer-Encoding", "Host", "Origin", "Expect",
                   "Connection", "Upgrade", "Authorization", "Content-Type")
token = st.from_regex(r"[A-Za-z0-9!#$%&'*+.^_`|~-]{1,20}", fullmatch=True)


def mostly(usual: st.SearchStrategy[Any], odd: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``usual`` four times in five: most requests keep to the protocol but one part, so that
    they reach the routes and the body decoders, not only the request parser."""
    return st.integers(0, 4).flatmap(lambda n: odd if n == 0 else usual)


latin1 = st.text(st.characters(min_codepoint=0, max_codepoint=255), max_size=40)
printable = st.from_regex(r"[ -~]{0,40}", fullmatch=True).map(str.strip)
odd_paths = st.from_regex(r"/[!-~]{0,60}", fullmatch=True)
targets = mostly(st.sampled_from(KNOWN_PATHS), odd_paths | latin1)
header_values = mostly(printable | st.sampled_from(
    ["0", "5", "-1", "chunked", "gzip", "100-continue", "close", "upgrade", "h2c",
     "http://evil.example", "localhost", "application/json"]), latin1)
headers = st.lists(st.tuples(mostly(st.sampled_from(SPECIAL_HEADERS) | token, latin1),
                             header_values), max_size=4)
bodies = (st.builds(lambda v: json.dumps(v).encode(), json_values)
          | st.sampled_from([json.dumps(v).encode() for v in VALID.values()])
          | st.binary(max_size=300))


@st.composite
def raw_requests(draw: st.DrawFn) -> tuple[str, bytes]:
    """A request head with arbitrary method, target, version and headers, and a body framed
    correctly, wrongly or not at all."""
    method = draw(mostly(st.sampled_from(["GET", "POST"]), st.sampled_from(METHODS) | token))
    version = draw(mostly(st.just("HTTP/1.1"), st.sampled_from(
        ["HTTP/1.0", "HTTP/2.0", "HTTP/9.9", "http/1.1", "HTTP/1.1 ", "HTTP/1", ""])))
    lines = [f"{method} {draw(targets)} {version}".rstrip(" ")]
    if draw(mostly(st.just(True), st.just(False))):
        lines.append("Host: localhost")
    lines += [f"{name}: {value}" for name, value in draw(headers)]
    body = draw(bodies)
    framing = draw(mostly(st.just("length"), st.sampled_from(["none", "short", "long", "chunked"])))
    if framing == "chunked":
        lines.append("Transfer-Encoding: chunked")
        body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body) if body else b"0\r\n\r\n"
    elif framing != "none":
        declared = len(body) + {"length": 0, "short": -1, "long": 7}[framing]
        lines.append(f"Content-Length: {max(declared, 0)}")
    return method, "\r\n".join(lines).encode("latin-1") + b"\r\n\r\n" + body


# -- slow and oversized heads ---------------------------------------------------------------

def incomplete_head(size: int, *, many: bool = False) -> bytes:
    if many:
        return b"GET /v1/health HTTP/1.1\r\nHost: localhost\r\n" + b"X-A: b\r\n" * (size // 8)
    return b"GET /v1/health HTTP/1.1\r\nHost: localhost\r\nX-Big: " + b"a" * size


def dribble(endpoint: Endpoint, head: bytes, outcome: list[str]) -> None:
    """Send ``head`` one byte at a time until the daemon closes the connection."""
    with endpoint.connect(timeout=HEAD_TIMEOUT * 3) as sock:
        deadline = time.monotonic() + HEAD_TIMEOUT * 3
        for byte in head:
            readable, _, _ = select.select([sock], [], [], 0.25)  # the pace of the drip
            try:
                if readable and sock.recv(65536) == b"":
                    outcome.append("closed")
                    return
                sock.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                outcome.append("closed")
                return
            if time.monotonic() > deadline:
                break
        outcome.append("never closed")
