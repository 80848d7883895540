"""Compaction's survey and staging, in a child process of its own.

Both read the whole log and build a segment's records at a time (800k records, hundreds of MB
at 100k memories). In the daemon's interpreter they took turns with the event loop for the GIL
and set off its cycle collector, and requests waited up to 82 ms (``bench/bench_compact.py``);
a child has an interpreter of its own. The daemon relays the child's steps and reads what it
staged; the switch stays in the daemon, between two batches of appends
(:mod:`memlane.daemon.service.compaction`).

``python -m memlane.daemon.adapters.compaction_child`` reads a request (one JSON line) on
stdin, writes a JSON line per step and per segment examined, then one with what it staged. It
dies with the daemon: once its stdin closes, it exits at once (a staging directory it leaves is
dropped by the next compaction or start). It stages holding the log's staging lock, taken only
while its daemon lives: the next start waits for the lock before it drops a staging directory,
so a child outliving its daemon cannot stage after that.
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from subprocess import PIPE

import anyio
import msgspec
from anyio.abc import Process
from anyio.streams.buffered import BufferedByteReceiveStream

from memlane.daemon.domain.errors import ApiError
from memlane.events.compactor import STAGING, Progress, Step, hold_staging
from memlane.events.segments import COMPACTED
from memlane.events.retention import Prepared, prepare

MAX_LINE = 1024 * 1024
ORPHANED = 75  # the child's status when its daemon went away before it was done


class PrepareRequest(msgspec.Struct, frozen=True):
    directory: str
    last_seq: int
    cutoff: datetime
    floors: list[int]
    format: int  # the compacted segment format the daemon reads: the child must write it
    daemon: int  # the daemon's pid: a child whose parent is another process is an orphan


class Message(msgspec.Struct, frozen=True, omit_defaults=True):
    """One line from the child: a step, a segment examined, or what it staged."""

    step: str | None = None
    progress: tuple[int, int] | None = None
    prepared: Prepared | None = None


class CompactionFailed(ApiError):
    status, code = 500, "compaction_failed"


async def prepare_in_child(directory: Path, last_seq: int, *, cutoff: datetime,
                           floors: Sequence[int], step: Step, progress: Progress) -> Prepared:
    """:func:`memlane.events.retention.prepare`, run by a child process; ``step`` and
    ``progress`` are called here as the child reaches them. :class:`CompactionFailed` if the
    child fails or cannot be run (a damaged segment, say): nothing is switched, and what it
    staged is removed."""
    try:
        return await _run_child(directory, last_seq, cutoff, floors, step, progress)
    except (OSError, anyio.BrokenResourceError, anyio.DelimiterNotFound) as exc:
        shutil.rmtree(directory / STAGING, ignore_errors=True)
        raise CompactionFailed(f"compaction's child could not run or answer: "
                               f"{exc!r}") from None
    except CompactionFailed:
        shutil.rmtree(directory / STAGING, ignore_errors=True)
        raise


async def _run_child(directory: Path, last_seq: int, cutoff: datetime, floors: Sequence[int],
                     step: Step, progress: Progress) -> Prepared:
    request = msgspec.json.encode(PrepareRequest(str(directory), last_seq, cutoff, list(floors),
                                                 COMPACTED, os.getpid()))
    # -P: nothing from the daemon's working directory is imported
    process = await anyio.open_process([sys.executable, "-P", "-m", __name__],
                                       stdin=PIPE, stdout=PIPE, stderr=PIPE)
    try:
        assert process.stdin is not None
        await process.stdin.send(request + b"\n")
        prepared = await _relay(process, step, progress)
        status = await process.wait()
        if prepared is None or status != 0:
            raise CompactionFailed(f"compaction's child exited with status {status}: "
                                   f"{await _last_line(process)}")
        return prepared
    finally:
        if process.returncode is None:  # cancelled or failed: the child goes too
            process.kill()
            with anyio.CancelScope(shield=True):
                await process.wait()
        await process.aclose()


async def _relay(process: Process, step: Step, progress: Progress) -> Prepared | None:
    assert process.stdout is not None
    lines = BufferedByteReceiveStream(process.stdout)
    decoder = msgspec.json.Decoder(Message)
    prepared = None
    while True:
        try:
            line = await lines.receive_until(b"\n", MAX_LINE)
        except (anyio.EndOfStream, anyio.IncompleteRead):
            return prepared
        try:
            message = decoder.decode(line)
        except msgspec.DecodeError as exc:
            raise CompactionFailed(f"compaction's child wrote something unreadable: {exc}") \
                from None
        if message.step is not None:
            step(message.step)
        if message.progress is not None:
            progress(*message.progress)
        if message.prepared is not None:
            prepared = message.prepared


async def _last_line(process: Process) -> str:
    assert process.stderr is not None
    error = b""
    async for chunk in process.stderr:
        error = (error + chunk)[-MAX_LINE:]
    lines = error.decode(errors="replace").strip().splitlines()
    return lines[-1] if lines else "no message"


def _exit_with_parent() -> None:
    while os.read(0, 4096):  # b"" once the daemon closes the pipe or dies
        pass
    os._exit(ORPHANED)


def main() -> None:
    try:
        request = msgspec.json.decode(sys.stdin.buffer.readline(), type=PrepareRequest)
    except msgspec.ValidationError:
        request = None
    if request is None or request.format != COMPACTED:  # the package changed under the daemon
        sys.exit(f"this memlane writes compacted segments in format {COMPACTED}, which the "
                 "running daemon may not read: restart the daemon (memlane down; memlane up)")
    threading.Thread(target=_exit_with_parent, daemon=True).start()
    if hold_staging(Path(request.directory)) is None:
        sys.exit("another compaction is still staging in this log")
    if os.getppid() != request.daemon:  # the daemon died before the lock was ours
        os._exit(ORPHANED)
    encoder = msgspec.json.Encoder()

    def send(message: Message) -> None:
        sys.stdout.buffer.write(encoder.encode(message) + b"\n")
        sys.stdout.buffer.flush()

    prepared = prepare(Path(request.directory), request.last_seq, cutoff=request.cutoff,
                       floors=request.floors, step=lambda name: send(Message(step=name)),
                       progress=lambda done, todo: send(Message(progress=(done, todo))))
    send(Message(prepared=prepared))


if __name__ == "__main__":
    main()
