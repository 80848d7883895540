"""HTTP framing by the RFC: ambiguous framing is refused, ``Expect: 100-continue`` is answered
before the body, unknown transfer codings get a 501, and access is decided before any body."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from memlane.daemon.api.proof import CHALLENGE_PATH
from tests.e2e.daemon import DaemonProcess
from tests.reliability.wire import Endpoint, call, parse_replies, read_until_closed, send_raw

pytestmark = pytest.mark.security
STORE = json.dumps({"text": "framed by the rfc", "project": "framing"}).encode()


@pytest.fixture(scope="module")
def endpoint() -> Iterator[Endpoint]:
    root = Path(tempfile.mkdtemp(prefix="ml-", dir="/tmp"))
    (root / "home").mkdir()
    daemon = DaemonProcess(root / "home").start(wait_model=False)
    yield Endpoint.of(daemon)
    daemon.stop()
    shutil.rmtree(root, ignore_errors=True)


def head(*lines: str, path: str = "/v1/memories") -> bytes:
    return "\r\n".join([f"POST {path} HTTP/1.1", "Host: localhost", *lines]).encode() + b"\r\n\r\n"


def stored_count(endpoint: Endpoint) -> int:
    return int(call(endpoint, "GET", "/v1/status").json()["last_seq"])


@pytest.mark.parametrize("tcp", [False, True], ids=["unix", "tcp"])
def test_content_length_beside_transfer_encoding_is_a_400_that_closes(
        endpoint: Endpoint, tcp: bool) -> None:
    """Both framings at once (request smuggling) get a 400 and a closed connection; the
    request smuggled in the body is never served."""
    before = stored_count(endpoint)
    auth = [f"Authorization: Bearer {endpoint.token}"] if tcp else []
    smuggled = head("Content-Length: 4", *auth, path="/v1/health").replace(b"POST", b"GET")
    raw = head("Content-Length: 4", "Transfer-Encoding: chunked", *auth) \
        + b"%x\r\n%s\r\n0\r\n\r\n" % (len(STORE), STORE) + smuggled
    replies = send_raw(endpoint, raw, tcp=tcp).replies
    assert [r.status for r in replies] == [400]
    assert replies[0].json()["error"]["code"] == "ambiguous_framing"
    assert replies[0].headers["connection"] == "close"
    assert stored_count(endpoint) == before


@pytest.mark.parametrize("coding", ["gzip", "gzip, chunked", "identity", "br"])
def test_an_unknown_transfer_coding_is_a_501_with_a_json_error(endpoint: Endpoint,
                                                                coding: str) -> None:
    """A transfer coding other than chunked is not implemented: 501, with a JSON error."""
    replies = send_raw(endpoint, head(f"Transfer-Encoding: {coding}") + STORE).replies
    assert [r.status for r in replies] == [501]
    assert replies[0].json()["error"]["code"] == "bad_request"


def test_expect_100_continue_is_answered_before_the_body_is_sent(endpoint: Endpoint) -> None:
    """The 100 Continue arrives while the client still holds its body back; then the body is
    read and answered."""
    with endpoint.connect() as sock:
        sock.sendall(head("Expect: 100-continue", f"Content-Length: {len(STORE)}",
                          "Connection: close"))
        interim = b""
        while b"\r\n\r\n" not in interim:
            chunk = sock.recv(4096)
            assert chunk, "the daemon closed instead of answering 100"
            interim += chunk
        assert interim.startswith(b"HTTP/1.1 100 ")
        sock.sendall(STORE)
        rest = interim.split(b"\r\n\r\n", 1)[1] + read_until_closed(sock)
    assert [r.status for r in parse_replies(rest)] == [200]


def test_curl_with_expect_100_continue_gets_the_interim_answer(endpoint: Endpoint) -> None:
    """curl, told to wait for the 100 for ten minutes, finishes: the daemon sent it."""
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    body = json.dumps({"text": "sent after the interim answer", "project": "framing"})
    result = subprocess.run(
        ["curl", "-sS", "-v", "--unix-socket", str(endpoint.unix), "--expect100-timeout", "600",
         "-H", "Expect: 100-continue", "-H", "Content-Type: application/json",
         "--data-binary", "@-", "http://localhost/v1/memories"],
        input=body, capture_output=True, text=True, timeout=120, check=True)
    assert "< HTTP/1.1 100 Continue" in result.stderr
    assert json.loads(result.stdout)["id"] > 0


def test_a_refused_head_gets_no_100_and_its_body_is_not_read(endpoint: Endpoint) -> None:
    """Without credentials on TCP the answer is a 401 that closes, before any 100 Continue."""
    with endpoint.connect(tcp=True) as sock:
        sock.sendall(head("Expect: 100-continue", "Content-Length: 8388608"))
        answer = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 401 ")


def test_a_challenge_is_answered_without_credentials_and_proves_nothing_by_itself(
        endpoint: Endpoint) -> None:
    """The challenge route needs no token and answers a nonce and a proof; a request that
    reuses its nonce with a wrong mac, or a used nonce, is a 401."""
    body = json.dumps({"nonce": "0" * 32}).encode()
    with endpoint.connect(tcp=True) as sock:
        sock.sendall(head(f"Content-Length: {len(body)}", "Connection: close",
                          path=CHALLENGE_PATH) + body)
        [reply] = parse_replies(read_until_closed(sock))
    nonce = reply.json()["nonce"]
    assert len(reply.json()["proof"]) == 64
    forged = f"Memlane-Proof nonce={nonce}, mac={'0' * 64}"
    raw = b"GET /v1/status HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n" \
          + f"Authorization: {forged}\r\n\r\n".encode()
    assert [r.status for r in send_raw(endpoint, raw, tcp=True).replies] == [401]


def test_the_hook_token_opens_hooks_only(endpoint: Endpoint) -> None:
    """HTTP hooks' credential is served on /hooks/* and refused everywhere else."""
    hook_token = (endpoint.unix.parent.parent / "hook-token").read_text().strip()
    assert hook_token and hook_token != endpoint.token
    auth = f"Authorization: Bearer {hook_token}"
    body = json.dumps({"session_id": "s", "hook_event_name": "SessionEnd"}).encode()
    hook = head(auth, f"Content-Length: {len(body)}", "Connection: close",
                path="/hooks/SessionEnd") + body
    assert [r.status for r in send_raw(endpoint, hook, tcp=True).replies] == [200]
    status = b"GET /v1/status HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n" \
             + f"{auth}\r\n\r\n".encode()
    assert [r.status for r in send_raw(endpoint, status, tcp=True).replies] == [401]
