"""A local file server speaking the part of the Hugging Face hub protocol that downloads use:
``HEAD``/``GET /{repo}/resolve/{revision}/{path}`` with ``X-Repo-Commit``, ``ETag`` (the
sha256 for LFS files, as the hub sends), ``Content-Length`` and ``Range`` resumes."""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

COMMIT = "0123456789abcdef0123456789abcdef01234567"
_RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)$")


@dataclass
class Hub:
    """What the server serves and what it saw."""

    repo: str
    root: Path
    lfs: tuple[str, ...] = ()  # files whose ETag is their sha256
    drop_first_get_after: int | None = None  # close the first GET of an LFS file mid-body
    corrupt: tuple[str, ...] = ()  # files served with one byte flipped (ETag stays honest)
    ranges: list[str] = field(default_factory=list)
    gets: list[str] = field(default_factory=list)
    _dropped: bool = False

    def body(self, path: str) -> bytes:
        data = (self.root / path).read_bytes()
        if path in self.corrupt:
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        return data

    def etag(self, path: str) -> str:
        data = (self.root / path).read_bytes()
        if path in self.lfs:
            return hashlib.sha256(data).hexdigest()
        return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()  # a git blob id


def _handler(hub: Hub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

        def _resolve(self) -> str | None:
            match = _RESOLVE.match(self.path.split("?")[0])
            if (match is None or match["repo"] != hub.repo or match["rev"] not in ("main", COMMIT)
                    or not (hub.root / match["path"]).is_file()):
                self.send_response(404)
                self.send_header("X-Error-Code", "EntryNotFound")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None
            return match["path"]

        def _headers(self, path: str, status: int, length: int, extra: dict[str, str]) -> None:
            self.send_response(status)
            self.send_header("X-Repo-Commit", COMMIT)
            self.send_header("ETag", f'"{hub.etag(path)}"')
            self.send_header("Content-Length", str(length))
            self.send_header("Accept-Ranges", "bytes")
            for name, value in extra.items():
                self.send_header(name, value)
            self.end_headers()

        def do_HEAD(self) -> None:  # noqa: N802
            if (path := self._resolve()) is not None:
                self._headers(path, 200, len(hub.body(path)), {})

        def do_GET(self) -> None:  # noqa: N802
            if (path := self._resolve()) is None:
                return
            hub.gets.append(path)
            data = hub.body(path)
            start = 0
            if (wanted := self.headers.get("Range")) is not None:
                hub.ranges.append(wanted)
                start = int(re.match(r"bytes=(\d+)-", wanted)[1])  # type: ignore[index]
                self._headers(path, 206, len(data) - start,
                              {"Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}"})
            else:
                self._headers(path, 200, len(data), {})
            cut = hub.drop_first_get_after
            if cut is not None and path in hub.lfs and not hub._dropped:
                hub._dropped = True
                self.wfile.write(data[start:start + cut])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(2)
                return
            self.wfile.write(data[start:])

    return Handler


@contextmanager
def serve(hub: Hub) -> Iterator[str]:
    """Serve ``hub`` on an ephemeral localhost port; yields the endpoint URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(hub))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
