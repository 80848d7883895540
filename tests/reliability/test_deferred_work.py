"""Background work whose events the disk refuses waits for the next round; it never ends the
daemon."""

from __future__ import annotations

import errno

import anyio

from memlane.daemon.runtime.scheduler import JobScheduler
from memlane.events.errors import LogWriteFailed


def test_a_round_the_disk_refuses_is_retried_at_the_next_one() -> None:
    """A lifecycle round failing with LogWriteFailed (a full disk) leaves the scheduler
    running: the next kick runs the next round."""
    rounds: list[int] = []
    done = anyio.Event()

    async def run_round() -> None:
        rounds.append(len(rounds))
        if len(rounds) == 1:
            raise LogWriteFailed("write failed") from OSError(errno.ENOSPC, "No space left")
        done.set()

    async def main() -> None:
        scheduler = JobScheduler(run_round, interval=3600)
        async with anyio.create_task_group() as tg:
            tg.start_soon(scheduler.run)
            scheduler.kick()
            while len(rounds) < 1:
                await anyio.sleep(0)
            scheduler.kick()
            await done.wait()
            tg.cancel_scope.cancel()

    anyio.run(main)
    assert rounds == [0, 1]
