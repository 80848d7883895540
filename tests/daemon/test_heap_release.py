"""After a spell of requests, once none has come for a quiet interval, freed heap memory is
given back once (malloc_trim on glibc); never while requests keep coming, never again while
the daemon stays idle."""

from __future__ import annotations

import os
from pathlib import Path

import anyio
import pytest

from memlane.daemon.adapters.heap import heap_trimmer
from memlane.daemon.api.drain import Gate, after_each_busy_spell
from memlane.daemon.api.server import Request, Response, json_response

QUIET = 0.05


async def answer(request: Request) -> Response:
    return json_response({})


async def until_released(released: list[int], count: int) -> None:
    """Poll until ``count`` releases happened (a generous deadline: the action runs in a worker
    thread, late on a loaded machine)."""
    with anyio.fail_after(30):
        while len(released) < count:
            await anyio.sleep(QUIET / 5)


@pytest.mark.anyio
async def test_memory_is_released_once_after_each_busy_spell() -> None:
    gate = Gate()
    handler = gate.wrap(answer)
    request = Request(method="GET", path="/", query={}, headers={}, body=b"",
                      transport="unix")
    released: list[int] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: after_each_busy_spell(gate, lambda: released.append(gate.served),
                                                    quiet=QUIET))
        await anyio.sleep(4 * QUIET)
        assert released == []  # idle from the start: nothing to give back
        for _ in range(40):  # a spell of requests, closer together than the quiet interval
            await handler(request)
            await anyio.sleep(QUIET / 5)
        assert released == []
        await until_released(released, 1)
        assert released == [40]
        await anyio.sleep(6 * QUIET)
        assert released == [40]  # still idle: once per spell
        await handler(request)
        await until_released(released, 2)
        assert released == [40, 41]
        tg.cancel_scope.cancel()


def resident_bytes() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_the_c_library_gives_freed_memory_back() -> None:
    """On glibc (Debian, CI) the trimmer exists and returns what a burst freed: the last block
    stays allocated, so free() alone cannot shrink the heap from its top."""
    trim = heap_trimmer()
    assert trim is not None
    burst = [bytearray(100_000) for _ in range(2_000)]  # ~200 MB below the mmap threshold
    kept = burst[-1]
    del burst
    before = resident_bytes()
    assert trim() is True
    assert resident_bytes() < before - 100_000_000
    assert len(kept) == 100_000
