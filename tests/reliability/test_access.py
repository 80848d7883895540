"""Who may reach the daemon and what it keeps secret, on a real daemon in a subprocess.

Private files under a lax umask; the Unix socket's peer-uid check; the TCP bearer token; Host and
Origin checks against DNS rebinding and browsers; the Gemini key kept out of every file, log
and answer; secrets in memories redacted before anything reaches the disk, whatever the channel.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import json
import os
import pwd
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from memlane.daemon.api import access as token_module
from memlane.daemon.domain.session_notes import LINE_CHARS
from tests.claude_hooks import hook_input, write_transcript
from tests.e2e.daemon import DaemonProcess
from tests.e2e.test_cli import run
from tests.gemini_server import Error, FakeGemini, Text, json_text

pytestmark = pytest.mark.security

UMASK_022 = ["/bin/sh", "-c", 'umask 022 && exec "$@"', "sh"]
POOL = ["The pg pool runs out under load; set pool_size=20 in db.py",
        "Postgres connection pool exhausted under load, raise pool_size to 20",
        "Under heavy load the database pool is exhausted: pool_size=20 fixes it"]
# A shape no redaction rule knows: only care, not the redactor, keeps it out of the state.
GEMINI_KEY = "memlane-canary-" + hashlib.sha256(b"gemini key").hexdigest()[:32]
ANSWER_TIMEOUT = 20.0
LOCAL = [("Host", "localhost")]


class LaxUmaskDaemon(DaemonProcess):
    """The daemon started under umask 022 (a common login default); its stderr is kept beside
    the state directory, so every file inside that directory is the daemon's own."""

    @property
    def stderr_path(self) -> Path:
        return self.home.parent / f"{self.home.name}-stderr.log"

    def start(self, *, wait_model: bool = True) -> LaxUmaskDaemon:
        with open(self.stderr_path, "ab") as stderr:
            self.process = subprocess.Popen(
                [*UMASK_022, sys.executable, "-m", "memlane.daemon"], env=self.env,
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr)
        self.wait_ready(wait_model=wait_model)
        return self

    def stderr(self) -> str:
        path = self.stderr_path
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    @property
    def port(self) -> int:
        return int((self.paths.runtime / "tcp.port").read_text())

    @property
    def token(self) -> str:
        return self.paths.token.read_text().strip()

    def settled_seq(self) -> int:
        """The log's last seq, asked over the Unix socket once background work is done: the
        model's pipeline recorded (the first event) and every memory embedded and linked."""
        deadline = time.monotonic() + ANSWER_TIMEOUT
        while time.monotonic() < deadline:
            status = call(self, "GET", "/v1/status")
            live = sum(n for state, n in status["memories"].items()
                       if state in ("active", "proven"))
            if status["last_seq"] >= 1 and status["embedding_backlog"] == 0 \
                    and status["vectors"] >= live:
                return int(status["last_seq"])
            time.sleep(0.02)
        raise TimeoutError(f"the daemon did not settle: {status}")


Starter = Callable[..., LaxUmaskDaemon]


@pytest.fixture
def start(short_tmp: Path) -> Iterator[Starter]:
    """Start daemons on one state directory (one at a time); stop what still runs at the end."""
    started: list[LaxUmaskDaemon] = []

    def start_daemon(**env: str) -> LaxUmaskDaemon:
        home = short_tmp / "home"
        home.mkdir(exist_ok=True)
        started.append(LaxUmaskDaemon(home, MEMLANE_JOBS_INTERVAL_S="3600", **env).start())
        return started[-1]

    yield start_daemon
    for daemon in started:
        if daemon.process is not None and daemon.process.poll() is None:
            daemon.stop()


@pytest.fixture(scope="module")
def guarded() -> Iterator[LaxUmaskDaemon]:
    """One daemon for the many refused requests (each checks that it changed nothing)."""
    root = Path(tempfile.mkdtemp(prefix="ml-", dir="/tmp"))  # socket paths must stay short
    (root / "home").mkdir()
    daemon = LaxUmaskDaemon(root / "home").start()
    yield daemon
    daemon.stop()
    shutil.rmtree(root, ignore_errors=True)


# --- raw HTTP ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def http_request(method: str, path: str, headers: list[tuple[str, str]] | None = None,
                 body: Any = None, *, version: str = "HTTP/1.1") -> bytes:
    """A request with exactly these headers (no Host unless given) and a closing connection."""
    payload = b"" if body is None else json.dumps(body).encode()
    lines = [f"{method} {path} {version}", *(f"{k}: {v}" for k, v in headers or []),
             "Connection: close"]
    if payload:
        lines += ["Content-Type: application/json", f"Content-Length: {len(payload)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload


def exchange(sock: socket.socket, request: bytes) -> bytes:
    """Send ``request`` and read until the daemon closes the connection."""
    with sock:
        sock.settimeout(ANSWER_TIMEOUT)
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def parse(raw: bytes) -> Answer:
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in header_lines)
    return Answer(int(status_line.split()[1]), headers, body)


def unix_exchange(daemon: DaemonProcess, request: bytes) -> Answer:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(str(daemon.paths.socket))
    return parse(exchange(sock, request))


def tcp_exchange(daemon: LaxUmaskDaemon, request: bytes) -> Answer:
    sock = socket.create_connection(("127.0.0.1", daemon.port), timeout=ANSWER_TIMEOUT)
    return parse(exchange(sock, request))


def store_request(headers: list[tuple[str, str]], *, version: str = "HTTP/1.1") -> bytes:
    return http_request("POST", "/v1/memories", headers,
                        {"text": "a store that must be refused", "project": "p"}, version=version)


def assert_json_error(answer: Answer, status: int, code: str) -> None:
    assert answer.status == status, answer
    assert answer.headers["content-type"] == "application/json"
    error = answer.json()["error"]
    assert error["code"] == code and error["message"], error


def call(daemon: DaemonProcess, method: str, path: str, body: Any = None) -> Any:
    """A request over the Unix socket that must succeed; its JSON answer."""
    answer = unix_exchange(daemon, http_request(method, path, LOCAL, body))
    assert answer.status == 200, answer
    return answer.json()


# --- 1. private files ----------------------------------------------------------------------


def modes_under(root: Path) -> dict[Path, int]:
    """The permission bits of ``root`` and of everything below it (symlinks not followed)."""
    found = {root: stat.S_IMODE(root.lstat().st_mode)}
    for path in root.rglob("*"):
        found[path] = stat.S_IMODE(path.lstat().st_mode)
    return found


def not_private(modes: dict[Path, int]) -> dict[str, str]:
    """Each entry that is not 0700 (a directory) or 0600 (anything else), with its mode."""
    def wanted(path: Path) -> int:
        return 0o700 if stat.S_ISDIR(path.lstat().st_mode) else 0o600

    return {str(path): oct(mode) for path, mode in modes.items() if mode != wanted(path)}


def test_the_umask_wrapper_really_starts_processes_under_umask_022() -> None:
    """The wrapper the daemon is started with hands umask 022 to the process it runs."""
    probe = "import os; print(oct(os.umask(0)))"
    result = subprocess.run([*UMASK_022, sys.executable, "-c", probe], capture_output=True,
                            text=True, check=True)
    assert result.stdout.strip() == "0o22"


def test_every_state_file_is_0600_and_every_directory_0700_under_umask_022(
        start: Starter) -> None:
    """Under umask 022, stores, a search, jobs with the LLM, a rebuild and a clean stop leave
    only 0600 files and 0700 directories; the socket is 0600 in a 0700 directory."""
    with FakeGemini() as gemini:
        daemon = start(GEMINI_API_KEY=gemini.api_key, MEMLANE_LLM_BASE_URL=gemini.base_url)
        running = modes_under(daemon.home)
        assert running[daemon.paths.runtime] == 0o700 and running[daemon.paths.socket] == 0o600
        assert {daemon.paths.token, daemon.paths.pid_file, daemon.paths.runtime / "tcp.port"} \
            <= set(running)
        assert not_private(running) == {}

        for text in POOL:
            call(daemon, "POST", "/v1/memories", {"text": text, "project": "p"})
        daemon.wait_idle()
        assert call(daemon, "POST", "/v1/search", {"query": "db pool", "project": "p"})["hits"]
        assert call(daemon, "POST", "/v1/jobs/cluster")["clusters"]
        assert call(daemon, "POST", "/v1/jobs/consolidate")["consolidated"]
        assert call(daemon, "POST", "/v1/rebuild")["replayed"] > 0
        assert daemon.stop() == 0

    stopped = modes_under(daemon.home)
    names = {path.name for path in stopped}
    assert {"token", "memlane.sqlite3", "vectors.usearch", "llm-budget.json"} <= names
    assert any(path.parent == daemon.paths.log_dir for path in stopped)
    assert not_private(stopped) == {}


# --- 2. the socket's peer check ------------------------------------------------------------


def probe_socket(path: Path, request: bytes, *, as_user: str | None) -> dict[str, Any]:
    """Connect to the socket from a forked child (as ``as_user`` if given) and send ``request``;
    what happened: the connect error, or the bytes received until the daemon closed."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        outcome: dict[str, Any] = {}
        try:
            os.close(read_end)
            if as_user is not None:
                user = pwd.getpwnam(as_user)
                os.setgroups([])
                os.setgid(user.pw_gid)
                os.setuid(user.pw_uid)
            outcome = _probe(path, request)
        except Exception as exc:  # reported to the parent; `finally` exits in any case
            outcome = {"child_error": repr(exc)}
        finally:
            os.write(write_end, json.dumps(outcome).encode())
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        report = pipe.read()
    os.waitpid(pid, 0)
    return json.loads(report)  # type: ignore[no-any-return]


def _probe(path: Path, request: bytes) -> dict[str, Any]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(ANSWER_TIMEOUT)
    try:
        sock.connect(str(path))
    except OSError as exc:
        sock.close()
        return {"connect_errno": exc.errno}
    try:
        received = exchange(sock, request)
    except (ConnectionResetError, BrokenPipeError):
        received = b""  # closed on us before or while we wrote: no answer either
    return {"connected": True, "received": received.decode("latin-1")}


@pytest.fixture
def nobody() -> str:
    if os.geteuid() != 0:
        pytest.skip("acting as another user needs root")
    try:
        pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no 'nobody' user on this machine")
    return "nobody"


def test_another_user_cannot_reach_the_socket_through_its_private_directory(
        start: Starter, nobody: str) -> None:
    """The 0700 directories alone stop another uid before it can connect."""
    daemon = start()
    request = store_request(LOCAL)
    seq = daemon.settled_seq()
    refused = probe_socket(daemon.paths.socket, request, as_user=nobody)
    assert refused == {"connect_errno": errno.EACCES}
    assert daemon.settled_seq() == seq


def test_the_peer_uid_check_closes_another_users_connection_without_an_answer(
        start: Starter, nobody: str, short_tmp: Path) -> None:
    """With the directories opened to traversal and the socket to all, another uid connects,
    and the daemon closes the connection unanswered and appends nothing; its own uid, sending
    the same bytes, is answered and stored."""
    daemon = start()
    request = store_request(LOCAL)
    seq = daemon.settled_seq()
    opened = [short_tmp, daemon.home, daemon.paths.runtime]
    for directory in opened:
        os.chmod(directory, 0o711)
    os.chmod(daemon.paths.socket, 0o666)
    try:
        assert probe_socket(daemon.paths.socket, request, as_user=nobody) == {
            "connected": True, "received": ""}
        assert daemon.settled_seq() == seq
        own = probe_socket(daemon.paths.socket, request, as_user=None)
    finally:
        for directory in opened:
            os.chmod(directory, 0o700)
        os.chmod(daemon.paths.socket, 0o600)
    answer = parse(own["received"].encode("latin-1"))
    assert answer.status == 200 and answer.json()["seq"] == seq + 1, answer


# --- 3. the TCP token ----------------------------------------------------------------------


# Each names a wrong Authorization header, given the real token (None: no header at all).
WRONG_AUTHORIZATIONS: dict[str, Callable[[str], str | None]] = {
    "no header": lambda t: None,
    "an empty header": lambda t: "",
    "the scheme alone": lambda t: "Bearer",
    "a wrong token": lambda t: "Bearer " + "A" * len(t),
    "the token in the other case": lambda t: f"Bearer {t.swapcase()}",
    "the token upper-cased": lambda t: f"Bearer {t.upper()}",
    "a space inside the token": lambda t: f"Bearer {t[:20]} {t[20:]}",
    "a tab inside the token": lambda t: f"Bearer {t[:20]}\t{t[20:]}",
    "the token twice": lambda t: f"Bearer {t} {t}",
    "the token cut short": lambda t: f"Bearer {t[:-1]}",
    "the token with a suffix": lambda t: f"Bearer {t}x",
    "the token with a non-ASCII suffix": lambda t: f"Bearer {t}\xe9",
    "the token without a scheme": lambda t: t,
    "no space after the scheme": lambda t: f"Bearer{t}",
    "the Basic scheme": lambda t: f"Basic {t}",
    "the Token scheme": lambda t: f"Token {t}",
}


@pytest.mark.parametrize("case", WRONG_AUTHORIZATIONS)
def test_tcp_without_the_right_bearer_token_is_401_and_changes_nothing(
        guarded: LaxUmaskDaemon, case: str) -> None:
    """A TCP request without exactly the bearer token is refused with a JSON 401, whatever the
    header holds, and the log is untouched."""
    token = guarded.token
    authorization = WRONG_AUTHORIZATIONS[case](token)
    headers = [("Host", f"127.0.0.1:{guarded.port}")]
    if authorization is not None:
        headers.append(("Authorization", authorization))
    seq = guarded.settled_seq()
    answer = tcp_exchange(guarded, store_request(headers))
    assert_json_error(answer, 401, "unauthorized")
    assert token.encode() not in answer.body
    assert guarded.settled_seq() == seq


@pytest.mark.parametrize("authorization", ["Bearer {t}", "bearer {t}", "BEARER  {t}"])
def test_tcp_with_the_token_is_served(guarded: LaxUmaskDaemon, authorization: str) -> None:
    """The token itself is accepted; the scheme is case-insensitive (RFC 7235) and may be
    followed by several spaces (RFC 6750: ``"Bearer" 1*SP b64token``)."""
    headers = [("Host", f"127.0.0.1:{guarded.port}"),
               ("Authorization", authorization.format(t=guarded.token))]
    seq = guarded.settled_seq()
    answer = tcp_exchange(guarded, http_request(
        "POST", "/v1/memories", headers, {"text": f"stored with {authorization}", "project": "p"}))
    assert answer.status == 200, answer
    assert guarded.settled_seq() > seq


def test_the_token_is_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """The token check goes through ``hmac.compare_digest``, never ``==``."""
    compared: list[tuple[bytes, bytes]] = []
    real = token_module.hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(token_module.hmac, "compare_digest", spy)
    assert token_module.token_matches("s3cret-token", "Bearer s3cret-token")
    assert not token_module.token_matches("s3cret-token", "Bearer s3cret-tokem")
    assert compared == [(b"s3cret-token", b"s3cret-token"), (b"s3cret-tokem", b"s3cret-token")]


# --- 4. DNS rebinding and browsers ---------------------------------------------------------


FOREIGN_HOSTS = ["evil.example", "evil.example:{port}", "127.0.0.1.evil.example",
                 "127.0.0.1.evil.example:{port}", "localhost.evil.example",
                 "localhost:{port}@evil", "localhost:52525@evil", "evil@localhost",
                 "localhost:{port}.evil.example", "localhost:{port}:evil", "localhost.",
                 "0.0.0.0:{port}", "127.0.0.2:{port}", "[::ffff:127.0.0.1]:{port}", ""]


@pytest.mark.parametrize("host", FOREIGN_HOSTS)
def test_tcp_with_a_foreign_host_header_is_403_even_with_the_token(
        guarded: LaxUmaskDaemon, host: str) -> None:
    """A Host header that does not name localhost (a DNS-rebinding page) is refused with a JSON
    403 although the token is right, and the log is untouched."""
    headers = [("Host", host.format(port=guarded.port)),
               ("Authorization", f"Bearer {guarded.token}")]
    seq = guarded.settled_seq()
    assert_json_error(tcp_exchange(guarded, store_request(headers)), 403, "forbidden")
    assert guarded.settled_seq() == seq


def test_tcp_without_a_host_header_is_403(guarded: LaxUmaskDaemon) -> None:
    """An HTTP/1.0 request without Host is refused like a foreign one."""
    seq = guarded.settled_seq()
    request = store_request([("Authorization", f"Bearer {guarded.token}")], version="HTTP/1.0")
    assert_json_error(tcp_exchange(guarded, request), 403, "forbidden")
    assert guarded.settled_seq() == seq


def test_a_second_host_header_is_a_bad_request(guarded: LaxUmaskDaemon) -> None:
    """A local Host followed by a foreign one cannot slip past the check: it is a 400."""
    headers = [("Host", f"localhost:{guarded.port}"), ("Host", "evil.example"),
               ("Authorization", f"Bearer {guarded.token}")]
    seq = guarded.settled_seq()
    assert_json_error(tcp_exchange(guarded, store_request(headers)), 400, "bad_request")
    assert guarded.settled_seq() == seq


@pytest.mark.parametrize("host", ["localhost:{port}", "127.0.0.1:{port}", "[::1]:{port}",
                                  "LOCALHOST", "127.0.0.1"])
def test_tcp_with_a_local_host_header_is_served(guarded: LaxUmaskDaemon, host: str) -> None:
    """The names of the loopback interface pass the Host check."""
    headers = [("Host", host.format(port=guarded.port)),
               ("Authorization", f"Bearer {guarded.token}")]
    assert tcp_exchange(guarded, http_request("GET", "/v1/status", headers)).status == 200


ORIGINS = ["null", "http://localhost", "http://localhost:{port}", "http://127.0.0.1:{port}",
           "https://evil.example", "chrome-extension://abcdefghijklmnop", ""]


@pytest.mark.parametrize("transport", ["unix", "tcp"])
@pytest.mark.parametrize("origin", ORIGINS)
def test_a_browser_origin_is_403_on_both_listeners(guarded: LaxUmaskDaemon, origin: str,
                                                   transport: str) -> None:
    """Any Origin header on the API (a browser's request, even from the daemon's own origin or
    ``null``) is refused with a JSON 403 on the socket and on TCP with the token, and the log
    is untouched: only the viewer under /ui/ takes the daemon's own origin."""
    headers = [("Host", f"localhost:{guarded.port}"), ("Origin", origin.format(port=guarded.port)),
               ("Authorization", f"Bearer {guarded.token}")]
    send = unix_exchange if transport == "unix" else tcp_exchange
    seq = guarded.settled_seq()
    assert_json_error(send(guarded, store_request(headers)), 403, "forbidden")
    assert guarded.settled_seq() == seq


def viewer_session(daemon: LaxUmaskDaemon) -> tuple[str, str]:
    """(cookie, CSRF token) of a viewer session, logged in with a fresh one-time code."""
    code = call(daemon, "POST", "/v1/ui/login-code")["code"]
    sock = socket.create_connection(("127.0.0.1", daemon.port), timeout=ANSWER_TIMEOUT)
    raw = exchange(sock, http_request("GET", f"/ui/login?code={code}",
                                      [("Host", f"127.0.0.1:{daemon.port}")]))
    assert parse(raw).status == 303 and parse(raw).headers["location"] == "/ui/"
    # ``parse`` lowercases whole header lines; the cookie's value is case-sensitive.
    cookie = raw.split(b"set-cookie: ")[1].split(b";")[0].decode()
    page = tcp_exchange(daemon, http_request("GET", "/ui/health", [
        ("Host", f"127.0.0.1:{daemon.port}"), ("Cookie", cookie)]))
    csrf = page.body.decode().split('name="csrf" content="')[1].split('"')[0]
    return cookie, csrf


def viewer_change(daemon: LaxUmaskDaemon, headers: list[tuple[str, str]]) -> Answer:
    return tcp_exchange(daemon, http_request("POST", "/ui/jobs/cluster",
                                             [("Host", f"127.0.0.1:{daemon.port}"), *headers], {}))


def test_the_viewer_takes_a_change_from_its_own_origin_with_session_and_csrf(
        guarded: LaxUmaskDaemon) -> None:
    """A viewer change with the session cookie, the CSRF token and the daemon's own Origin
    is served; the answer carries no CORS header."""
    cookie, csrf = viewer_session(guarded)
    answer = viewer_change(guarded, [("Cookie", cookie), ("X-Memlane-Csrf", csrf),
                                     ("Origin", f"http://127.0.0.1:{guarded.port}")])
    assert answer.status == 200, answer
    assert not [h for h in answer.headers if h.startswith("access-control-")]


@pytest.mark.parametrize("origin", ["https://evil.example", "http://127.0.0.1:1",
                                    "http://localhost:{port}", "null", ""])
def test_the_viewer_refuses_a_foreign_origin_even_with_session_and_csrf(
        guarded: LaxUmaskDaemon, origin: str) -> None:
    """Another origin (another port, another name than the Host, ``null``) cannot change
    anything through the viewer, cookie and token notwithstanding: a JSON 403."""
    cookie, csrf = viewer_session(guarded)
    seq = guarded.settled_seq()
    answer = viewer_change(guarded, [("Cookie", cookie), ("X-Memlane-Csrf", csrf),
                                     ("Origin", origin.format(port=guarded.port))])
    assert_json_error(answer, 403, "forbidden")
    assert guarded.settled_seq() == seq


@pytest.mark.parametrize("case", ["no csrf", "wrong csrf", "no origin", "no session"])
def test_a_viewer_change_needs_session_csrf_and_origin(guarded: LaxUmaskDaemon,
                                                       case: str) -> None:
    """Without its session (401), its CSRF token or an Origin (403), a viewer change is
    refused before its body is read, and the log is untouched."""
    cookie, csrf = viewer_session(guarded)
    headers = {"Cookie": cookie, "X-Memlane-Csrf": csrf,
               "Origin": f"http://127.0.0.1:{guarded.port}"}
    if case == "no csrf":
        del headers["X-Memlane-Csrf"]
    elif case == "wrong csrf":
        headers["X-Memlane-Csrf"] = csrf[:-1] + ("0" if csrf[-1] != "0" else "1")
    elif case == "no origin":
        del headers["Origin"]
    else:
        del headers["Cookie"]
    seq = guarded.settled_seq()
    answer = viewer_change(guarded, list(headers.items()))
    assert answer.status == (401 if case == "no session" else 403), answer
    assert guarded.settled_seq() == seq


def test_the_viewer_is_not_served_on_the_socket_to_a_browser(guarded: LaxUmaskDaemon) -> None:
    """An Origin on the Unix socket is refused, even for /ui/ (the viewer is TCP only)."""
    answer = unix_exchange(guarded, http_request("GET", "/ui/", [
        *LOCAL, ("Origin", "http://localhost")]))
    assert_json_error(answer, 403, "forbidden")


# --- 5. the Gemini key ---------------------------------------------------------------------


def files_holding(roots: list[Path], needles: list[bytes]) -> dict[str, list[bytes]]:
    """Each regular file under ``roots`` (or a root that is a file) holding any needle."""
    files = [p for root in roots for p in ([root] if root.is_file() else root.rglob("*"))
             if p.is_file() and not p.is_symlink()]
    found = {}
    for path in files:
        data = path.read_bytes()
        if hits := [needle for needle in needles if needle in data]:
            found[str(path)] = hits
    return found


def closed_port() -> int:
    """A localhost port where nothing listens (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def consolidate_raw(daemon: DaemonProcess) -> Answer:
    return unix_exchange(daemon, http_request("POST", "/v1/jobs/consolidate", LOCAL, {}))


def test_the_gemini_key_appears_in_no_file_log_or_answer(start: Starter) -> None:
    """Whether Gemini answers, refuses (echoing the key), fails or cannot be reached, the key is
    in no file of the state directory, not in stderr, not in an answer, status or doctor."""
    unreachable = start(GEMINI_API_KEY=GEMINI_KEY,
                        MEMLANE_LLM_BASE_URL=f"http://127.0.0.1:{closed_port()}")
    for text in POOL:
        call(unreachable, "POST", "/v1/memories", {"text": text, "project": "p"})
    unreachable.wait_idle()
    assert call(unreachable, "POST", "/v1/jobs/cluster")["clusters"]
    answers = [consolidate_raw(unreachable)]
    assert "could not be reached" in answers[-1].json()["waiting"][0]["reason"]
    assert unreachable.stop() == 0

    with FakeGemini(api_key=GEMINI_KEY) as gemini:
        daemon = start(GEMINI_API_KEY=GEMINI_KEY, MEMLANE_LLM_BASE_URL=gemini.base_url)
        echo = f"API key {GEMINI_KEY} is not allowed"
        gemini.queue(Error(403, echo), Error(429, echo), Error(500, echo),
                     Text(f"not JSON: {GEMINI_KEY}"), Text(f"still not JSON: {GEMINI_KEY}"))
        for _ in range(4):
            answers.append(consolidate_raw(daemon))
        assert [a.json()["waiting"] != [] for a in answers] == [True] * 5
        assert "[api key]" in answers[1].json()["waiting"][0]["reason"]  # echoed, then redacted
        answers.append(consolidate_raw(daemon))
        assert answers[-1].json()["consolidated"], answers[-1]
        assert {request.api_key for request in gemini.requests} == {GEMINI_KEY}
        assert len(gemini.requests) == 6
        cli_output = [run(daemon, *args, check=False) for args in
                      (("status", "--json"), ("doctor", "--json"))]
        assert json.loads(cli_output[0].stdout)["llm"]["configured"] is True
        assert json.loads(cli_output[1].stdout)["checks"]
        assert daemon.stop() == 0

    key = GEMINI_KEY.encode()
    assert [a.body for a in answers if key in a.body] == []
    assert [r.args for r in cli_output if GEMINI_KEY in r.stdout + r.stderr] == []
    assert b'"llm_called"' in daemon.stderr_path.read_bytes()  # the log that is searched
    assert files_holding([daemon.home, daemon.stderr_path], [key]) == {}


def test_a_reply_quoting_the_key_does_not_bring_it_into_an_answer(start: Starter) -> None:
    """A reply that fails validation by quoting the key (a hostile proxy) is reported without
    the key, like an HTTP error that echoes it."""
    bad = json_text({"text": "merged", "kind": GEMINI_KEY, "tags": [], "title": "t"})
    with FakeGemini(api_key=GEMINI_KEY) as gemini:
        daemon = start(GEMINI_API_KEY=GEMINI_KEY, MEMLANE_LLM_BASE_URL=gemini.base_url)
        for text in POOL:
            call(daemon, "POST", "/v1/memories", {"text": text, "project": "p"})
        daemon.wait_idle()
        assert call(daemon, "POST", "/v1/jobs/cluster")["clusters"]
        gemini.queue(bad, bad)
        answer = consolidate_raw(daemon)
    assert answer.json()["waiting"], answer
    assert GEMINI_KEY.encode() not in answer.body


# --- 6. secrets in memories ----------------------------------------------------------------


@dataclass(frozen=True)
class Secrets:
    """One channel's secrets, distinct from every other channel's, and their markers."""

    aws_id: str
    aws_secret: str
    url_password: str
    openai_key: str
    pem_lines: tuple[str, ...]

    @classmethod
    def for_channel(cls, channel: str) -> Secrets:
        digest = hashlib.sha512(channel.encode()).digest()
        b64 = base64.b64encode(digest + hashlib.sha512(digest).digest()).decode()
        hexed = digest.hex()
        return cls(aws_id="AKIA" + hexed[:16].upper(), aws_secret=b64[:40],
                   url_password="pw-" + hexed[16:30], openai_key="sk-proj-" + hexed[30:70],
                   pem_lines=tuple(b64[i:i + 32] for i in range(40, 136, 32)))

    @property
    def pem(self) -> str:
        body = "\n".join(self.pem_lines)
        return f"-----BEGIN RSA PRIVATE KEY-----\n{body}\n-----END RSA PRIVATE KEY-----"

    @property
    def raw(self) -> list[str]:
        return [self.aws_id, self.aws_secret, self.url_password, self.openai_key, *self.pem_lines]

    def note(self, channel: str) -> str:
        return (f"#note deploy credentials ({channel}): AWS key {self.aws_id}, "
                f"aws_secret_access_key={self.aws_secret}; clone "
                f"https://deploy:{self.url_password}@git.internal/acme.git; "
                f"OPENAI_API_KEY={self.openai_key}\n{self.pem}")


MARKERS = ["[redacted:aws-access-key]", "[redacted:aws-secret-key]", "[redacted:url-password]",
           "[redacted:openai-key]", "[redacted:private-key]"]
CHANNELS = ["store", "import", "prompt", "transcript"]


def post_hook(daemon: DaemonProcess, event: str, **fields: Any) -> Any:
    return call(daemon, "POST", f"/hooks/{event}", hook_input(event, **fields))


def test_secrets_are_redacted_on_every_way_in(start: Starter, short_tmp: Path) -> None:
    """Secrets stored, imported, typed in a ``#note`` prompt or said in a compacted session are
    nowhere on disk after a clean stop, and ``memlane export`` shows their markers instead."""
    daemon = start()
    project = short_tmp / "project"
    (project / ".git").mkdir(parents=True)  # a repository root, so hooks file under it too
    found = {channel: Secrets.for_channel(channel) for channel in CHANNELS}
    stored = call(daemon, "POST", "/v1/memories",
                  {"text": found["store"].note("store"), "project": str(project)})
    assert stored["redactions"] == len(MARKERS)
    call(daemon, "POST", "/v1/import", {"memories": [
        {"text": found["import"].note("import"), "project": str(project), "source": "import"}]})
    post_hook(daemon, "UserPromptSubmit", cwd=str(project), prompt=found["prompt"].note("prompt"))
    said = found["transcript"]
    transcript = write_transcript(short_tmp / "session.jsonl", [
        ("user", f"the AWS key is {said.aws_id} and aws_secret_access_key={said.aws_secret}"),
        ("user", f"clone https://deploy:{said.url_password}@git.internal/acme.git please"),
        ("user", f"use OPENAI_API_KEY={said.openai_key} for the (transcript) embeddings"),
        ("assistant", f"Done. The deploy key is:\n{said.pem}")], cwd=str(project))
    post_hook(daemon, "PreCompact", cwd=str(project), transcript_path=str(transcript))

    exported = run(daemon, "export", "--project", str(project)).stdout
    rows = [json.loads(line) for line in exported.splitlines()]
    assert sorted(row["kind"] for row in rows) == ["session-save", "user-note", "user-note",
                                                  "user-note"]
    assert [[m for m in MARKERS if m not in row["text"]] for row in rows] == [[]] * 4
    daemon.wait_idle()
    assert daemon.stop() == 0
    raw = [secret.encode() for s in found.values() for secret in s.raw]
    assert [secret for secret in raw if secret in exported.encode()] == []
    assert files_holding([daemon.home], raw) == {}


def test_a_secret_cut_by_the_session_save_leaves_no_prefix_on_disk(start: Starter,
                                                                   short_tmp: Path) -> None:
    """A secret that straddles the session save's per-turn clip leaves none of its characters
    on disk: redaction sees each turn whole."""
    daemon = start()
    key = Secrets.for_channel("clipped").openai_key
    filler = "the embedding jobs authenticate with the key "
    kept = 24  # characters of the key that survive the clip
    turn = filler.rjust(LINE_CHARS - 1 - kept, ".") + key
    transcript = write_transcript(short_tmp / "session.jsonl", [("user", turn)],
                                  cwd=str(short_tmp))
    post_hook(daemon, "PreCompact", cwd=str(short_tmp), transcript_path=str(transcript))
    assert daemon.stop() == 0
    assert files_holding([daemon.home], [key[:kept].encode()]) == {}
