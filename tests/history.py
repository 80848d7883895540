"""A realistic generated history, written straight to a log: months of stores, embeddings,
links, recalls, hooks' shown sets, uses, lifecycle events, one model switch and forgets.

Seeded, so a test and a bench can build the same history; vectors are random unit vectors of
the right size (no model runs).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from memlane.daemon.domain.forgetting import purge
from memlane.events import model as m
from memlane.events.disk import OsDisk
from memlane.events.log import EventLog

START = datetime(2025, 1, 1, tzinfo=UTC)
MODELS = (("minilm", "minilm:mean:384", 384), ("qwen3", "qwen3:last:1024", 1024))


class UnsyncedDisk(OsDisk):
    """Writes without syncing: for building a history fast (data set up, not under test)."""

    def sync(self, fd: int) -> None:
        return None

    def sync_dir(self, path: Path) -> None:
        return None


def open_unsynced(directory: Path, segment_bytes: int) -> EventLog:
    """A log to seed a history into quickly; close it before anything else opens it."""
    return EventLog.open(directory, disk=UnsyncedDisk(), segment_bytes=segment_bytes)


class History:
    """Appends a plausible year of activity to ``log``, one day at a time."""

    def __init__(self, log: EventLog, *, seed: int = 7, dims: tuple[int, int] = (384, 1024),
                 start: datetime = START,
                 models: tuple[tuple[str, str, int], ...] | None = None) -> None:
        self.log = log
        self.rng = random.Random(seed)
        self.np_rng = np.random.default_rng(seed)
        self.now = start
        self.models = list(models) if models else [
            (name, pipe, d) for (name, pipe, _), d in zip(MODELS, dims, strict=True)]
        self.model = self.models[0]
        self.live: list[int] = []
        self.expired: list[int] = []
        self.forgotten: list[int] = []
        self.projects: dict[int, str] = {}
        self.batch: list[m.Event] = []

    def _flush(self) -> list[m.Record]:
        records = self.log.append(self.batch, at=self.now)
        self.batch = []
        return records

    def _vector(self, dims: int) -> bytes:
        vec = self.np_rng.standard_normal(dims).astype("<f4")
        return (vec / np.linalg.norm(vec)).astype("<f4").tobytes()

    def _embedded(self, memory: int) -> m.Embedded:
        name, pipeline, dims = self.model
        return m.Embedded(memory=memory, vector=self._vector(dims), dims=dims, model=name,
                          pipeline=pipeline)

    def start(self) -> None:
        name, pipeline, dims = self.model
        self.batch = [m.ModelChanged(model=name, pipeline=pipeline, dims=dims),
                      m.ThresholdSet(model=name, name="link", value=0.6)]
        self._flush()

    def store(self, count: int) -> list[int]:
        """``count`` stores, each followed by its vector and a few links."""
        ids = []
        for _ in range(count):
            seq = self.log.last_seq + 1
            project = f"p{self.rng.randrange(4)}"
            text = f"memory {seq} about {self.rng.choice(WORDS)} and {self.rng.choice(WORDS)}"
            self.batch = [m.Stored(id=seq, text=text, project=project, kind="note",
                                   content_hash=f"{seq:032x}", source="cli")]
            self._flush()
            self.batch = [self._embedded(seq)]
            peers = [p for p in self.live[-50:] if self.projects[p] == project]
            self.batch += [m.Linked(a=p, b=seq, similarity=round(self.rng.uniform(0.6, 0.9), 3))
                           for p in self.rng.sample(peers, min(2, len(peers)))]
            self._flush()
            self.live.append(seq)
            self.projects[seq] = project
            ids.append(seq)
        return ids

    def use(self, prompts: int) -> None:
        """A day's prompts: each shows a few memories, some recalled, a few used."""
        for p in range(prompts):
            if not self.live:
                return
            session = f"session-{self.now:%j}-{p // 20}"
            shown = tuple(sorted(set(self.rng.sample(self.live, min(4, len(self.live))))))
            self.batch = [m.Shown(memories=shown, session=session, hook="UserPromptSubmit",
                                  prompt_hash=f"{self.rng.getrandbits(64):016x}")]
            words = self.rng.sample(WORDS, 4)
            query = (f"what about {words[0]} when we {words[1]} the {words[2]} after the "
                     f"{words[3]} change, and why did it fail last time?")
            self.batch += [m.Recalled(memory=i, query=query,
                                      rank=r, score=round(self.rng.uniform(0.3, 0.9), 3))
                           for r, i in enumerate(shown[:2])]
            if self.rng.random() < 0.2:
                self.batch.append(m.Used(memory=shown[0], evidence="reply", score=0.7,
                                         session=session))
            self._flush()

    def lifecycle(self) -> None:
        """The day's ageing, promotion, pins, reinforcement, clusters and routes."""
        rng, events = self.rng, self.batch
        if len(self.live) > 20:
            for memory in rng.sample(self.live, 3):
                action = rng.choice(("reprieve", "expire", "promote", "pin", "reinforce"))
                events.append(self._lifecycle_event(action, memory))
                if action == "expire":
                    self.live.remove(memory)
                    self.expired.append(memory)
            if self.expired and rng.random() < 0.3:
                back = self.expired.pop(rng.randrange(len(self.expired)))
                events.append(m.Restored(memory=back))
                self.live.append(back)
            self._flush()
        if len(self.live) > 30 and rng.random() < 0.2:
            self._consolidate()

    def _lifecycle_event(self, action: str, memory: int) -> m.Event:
        make: dict[str, Callable[[], m.Event]] = {
            "reprieve": lambda: m.Reprieved(memory=memory, count=1, reason="substantive"),
            "expire": lambda: m.Expired(memory=memory, reason="aged: isolated"),
            "promote": lambda: m.Promoted(memory=memory, reason="recalled often"),
            "pin": lambda: m.Pinned(memory=memory, pinned=self.rng.random() < 0.8),
            "reinforce": lambda: m.Reinforced(memory=memory, source="hook"),
        }
        return make[action]()

    def _consolidate(self) -> None:
        members = tuple(sorted(self.rng.sample(self.live, 3)))
        cluster = self.log.last_seq + 1
        self.batch = [m.Clustered(cluster=cluster, members=members, cohesion=0.8)]
        self._flush()
        seq = self.log.last_seq + 1
        project = self.projects[members[0]]
        self.batch = [m.Consolidated(id=seq, sources=members, text=f"insight {seq}",
                                     project=project, kind="proven",
                                     content_hash=f"{seq:032x}", model="gemini",
                                     prompt_version="1", cluster=cluster)]
        self._flush()
        self.batch = [self._embedded(seq),
                      m.Routed(memory=seq, target="CLAUDE.md", section="memlane",
                               action="proposed", verdict="no conflict")]
        self._flush()
        self.live.append(seq)
        self.projects[seq] = project

    def switch_model(self) -> None:
        """The user switches models: every live memory is embedded again."""
        self.model = self.models[1]
        name, pipeline, dims = self.model
        self.batch = [m.ModelChanged(model=name, pipeline=pipeline, dims=dims),
                      m.ThresholdSet(model=name, name="link", value=0.55)]
        self._flush()
        for start in range(0, len(self.live), 256):
            self.batch = [self._embedded(i) for i in self.live[start:start + 256]]
            self._flush()

    def forget(self) -> int:
        """The user forgets a live memory picked at random."""
        return self.forget_memory(self.live[self.rng.randrange(len(self.live))])

    def forget_memory(self, memory: int) -> int:
        """The user forgets ``memory``: the request, the rewrite, the record."""
        self.live.remove(memory)
        request = self.log.append([m.ForgetRequested(memories=(memory,))], at=self.now)[0]
        self.log.rewrite(purge([memory], set()))
        self.log.append([m.Forgotten(memory=memory, content_hash=f"{memory:032x}",
                                     request=request.seq)], at=self.now)
        self.forgotten.append(memory)
        return memory

    def day(self, *, stores: int, prompts: int) -> None:
        self.store(stores)
        self.use(prompts)
        self.lifecycle()
        self.now += timedelta(days=1)


WORDS = ("sqlite", "fsync", "hooks", "budget", "retry", "cache", "index", "vector", "deploy",
         "lint", "schema", "token", "socket", "backup", "release", "config")


def generate(log: EventLog, *, days: int, stores: int, prompts: int, switch_at: int,
             forgets: int = 2, seed: int = 7, dims: tuple[int, int] = (384, 1024),
             start: datetime = START,
             models: tuple[tuple[str, str, int], ...] | None = None) -> History:
    """``days`` days of activity, a model switch on day ``switch_at``, ``forgets`` forgets
    spread over the history."""
    history = History(log, seed=seed, dims=dims, start=start, models=models)
    history.start()
    forget_days = {days * (i + 1) // (forgets + 1) for i in range(forgets)}
    for day in range(days):
        if day == switch_at:
            history.switch_model()
        history.day(stores=stores, prompts=prompts)
        if day in forget_days:
            history.forget()
    return history
