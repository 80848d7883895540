"""The embedding engine's requests and how a pass takes its texts from them (pure but for
each job's completion event): a job's texts shortest first, cut into slices that passes embed,
put back in the request's order however its slices end."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import anyio
import numpy as np

from memlane.daemon.domain.pass_cost import text_cost

# A bulk pass may run this share over its budget to finish a request rather than leave the
# request's tail to a pass of its own: every pass, however small, pays the fixed part again
# (a batch of 20 short texts, ~51 ms of compute, ran as 2 passes taking ~1.3x as long as one).
# An interactive request may wait behind that much more (62.5 ms, or 25 ms when quiet).
TAIL_ALLOWANCE = 0.25
Lane = Literal["interactive", "bulk"]


@dataclass
class Job:
    """One embedding request, as the engine serves it."""

    texts: Sequence[str]  # shortest first (see :func:`new_job`)
    input_type: str
    dims: int | None
    lane: Lane = "bulk"
    done: anyio.Event = field(default_factory=anyio.Event)
    result: np.ndarray | None = None
    tokens: int = 0  # what its texts cost, counted by the passes that embedded them
    error: BaseException | None = None
    taken: int = 0  # texts handed to passes so far
    abandoned: bool = False  # its caller went away (cancelled): no pass is spent on it
    parts: dict[int, np.ndarray] = field(default_factory=dict)  # by the first text's index
    order: list[int] | None = None  # where each text stood in the request, when it moved
    read: int | None = None  # characters of each text the model reads, if not all (a query)
    suffix: list[int] | None = None  # rest_cost of each index, once asked

    @property
    def kind(self) -> tuple[str, int | None, Lane]:
        return self.input_type, self.dims, self.lane

    def cost(self, index: int) -> int:
        return text_cost(self.texts[index], self.read)

    def rest_cost(self, index: int) -> int:
        """What the texts from ``index`` to the end cost."""
        if self.suffix is None:
            costs = [self.cost(i) for i in range(len(self.texts))]
            self.suffix = [*itertools.accumulate(reversed(costs))][::-1] + [0]
        return self.suffix[index]

    def finish(self, start: int, part: np.ndarray) -> None:
        """Keep the vectors of the slice from text ``start`` (slices of a job may end in any
        order: two passes run side by side); the last slice completes the job."""
        self.parts[start] = part
        if sum(len(p) for p in self.parts.values()) == len(self.texts):
            parts = [self.parts[at] for at in sorted(self.parts)]
            result = parts[0] if len(parts) == 1 else np.concatenate(parts)
            if self.order is not None:  # back to the request's order
                moved = np.empty_like(result)
                moved[self.order] = result
                result = moved
            self.result = result
            self.done.set()

    def fail(self, error: BaseException) -> None:
        self.error = error
        self.done.set()


def new_job(texts: Sequence[str], input_type: str, dims: int | None, lane: Lane) -> Job:
    """A job with its texts shortest first: the passes that slice it then hold texts of like
    lengths, which pad less (a pass pads each text to its longest; 6-12% less compute for the
    peer benchmark's notes of mixed lengths, in process)."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    if order == list(range(len(texts))):
        return Job(texts, input_type, dims, lane)
    return Job([texts[i] for i in order], input_type, dims, lane, order=order)


Slice = tuple[Job, int, int]  # a job and the range of its texts one pass embeds


def take_batch(jobs: list[Job], max_batch: int,
               bulk_budget: float = math.inf) -> tuple[list[Slice], list[Job]]:
    """Slices for one pass: the kind of the oldest interactive job, else of the oldest job, in
    queue order, up to ``max_batch`` texts and, for a bulk pass, ``bulk_budget`` cost units
    (one text at least; up to ``TAIL_ALLOWANCE`` more to finish a request); then the jobs to
    wait, those not served first and those only partly served behind them."""
    kind = next((job for job in jobs if job.lane == "interactive"), jobs[0]).kind
    left = bulk_budget if kind[2] == "bulk" else math.inf
    over = TAIL_ALLOWANCE * left  # how far past the budget a pass may go to finish a request
    batch: list[Slice] = []
    untouched: list[Job] = []
    partial: list[Job] = []
    room = max_batch
    for job in jobs:
        start = stop = job.taken
        while job.kind == kind and stop < len(job.texts) and room > 0:
            cost = job.cost(stop)
            if cost > left and (batch or stop > start):
                rest, texts = job.rest_cost(stop), len(job.texts) - stop
                if rest <= left + over and texts <= room:  # the request's tail: finish it
                    left, room, stop = left - rest, room - texts, len(job.texts)
                else:
                    room = 0  # the pass is full
                break
            left, room, stop = left - cost, room - 1, stop + 1
        if stop == start:
            untouched.append(job)
            continue
        job.taken = stop
        batch.append((job, start, stop))
        if stop < len(job.texts):
            partial.append(job)
    return batch, untouched + partial
