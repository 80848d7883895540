"""The proof scan's byte search, in a child process of its own.

Forget proves itself by reading every byte of the state directory and the routed files
(hundreds of MB at 100k memories) for the forgotten texts' forms. In the daemon's interpreter
that search takes turns with the event loop for the GIL, and the loop waited up to 70 ms for
it (bench/bench_forget.py); a child has an interpreter of its own, and the daemon only waits
for its answer.

``python -m memlane.daemon.adapters.byte_scan`` reads the patterns and paths (msgpack) on
stdin and writes the paths holding any pattern (msgpack) on stdout.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import anyio
import msgspec

CHUNK = 1024 * 1024


class ScanRequest(msgspec.Struct, frozen=True):
    patterns: list[bytes]
    paths: list[str]


class ScanFailed(Exception):
    """The child did not answer (it failed or was killed)."""


def files_holding(patterns: Sequence[bytes], paths: Sequence[str]) -> list[str]:
    """The paths whose bytes hold any of ``patterns`` (a file that vanished holds none; one
    that cannot be read fails the scan: it is never passed as clean)."""
    return [path for path in paths if _holds(path, patterns)]


def _holds(path: str, patterns: Sequence[bytes]) -> bool:
    """Read in chunks overlapping by the longest pattern, so a match across a boundary counts."""
    overlap = max(map(len, patterns), default=1) - 1
    try:
        with open(path, "rb") as handle:
            tail = b""
            while chunk := handle.read(CHUNK):
                window = tail + chunk
                if any(p in window for p in patterns):
                    return True
                tail = window[-overlap:] if overlap else b""
    except FileNotFoundError:
        return False  # vanished between listing and reading (a rotated temp file)
    return False


async def scan_in_child(patterns: list[bytes], paths: list[str], *,
                        timeout: float = 600.0) -> list[str]:
    """:func:`files_holding`, run by a child process; :class:`ScanFailed` if it fails or has
    not answered within ``timeout`` seconds (it is killed)."""
    if not paths or not patterns:
        return []
    request = msgspec.msgpack.encode(ScanRequest(patterns, paths))
    try:
        with anyio.fail_after(timeout):
            # -P: nothing from the daemon's working directory is imported
            done = await anyio.run_process([sys.executable, "-P", "-m", __name__],
                                           input=request, check=False)
    except TimeoutError:
        raise ScanFailed(f"the byte scan did not answer within {timeout:g} s") from None
    except BaseExceptionGroup as group:
        if group.subgroup(anyio.BrokenResourceError) is None:
            raise
        raise ScanFailed("the byte scan exited before it read what to look for") from None
    if done.returncode != 0:
        reason = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
        raise ScanFailed(f"the byte scan exited with status {done.returncode}: {reason[0]}")
    try:
        return msgspec.msgpack.decode(done.stdout, type=list[str])
    except msgspec.DecodeError as exc:
        raise ScanFailed(f"the byte scan answered something unreadable: {exc}") from None


def main() -> None:
    request = msgspec.msgpack.decode(sys.stdin.buffer.read(), type=ScanRequest)
    sys.stdout.buffer.write(msgspec.msgpack.encode(files_holding(request.patterns,
                                                                 request.paths)))


if __name__ == "__main__":
    main()
