"""Memories built from templates whose slots are filled with Zipf-distributed terms.

Only integer arithmetic and ``random.Random.randrange``/``shuffle`` (both built on
``getrandbits``, stable across CPython versions and platforms) decide what is drawn.
"""

from __future__ import annotations

import random
import re
from bisect import bisect_right
from dataclasses import dataclass
from datetime import date, timedelta
from itertools import accumulate
from typing import Generic, TypeVar

from bench.corpora.vocab import ALT_WORDS, CONDITIONS, FIXES, PRACTICES, REASONS, SYMPTOMS, Project

_SCALE = 720_720  # divisible by 1..16, so the frequent ranks get exact integer weights
_SPACE = re.compile(r"\s+")
_TRAILING = ".!?;:,…"
T = TypeVar("T")
Slots = tuple[tuple[str, str], ...]


def canonical(term: str) -> str:
    return term.split("|")[0]


def surface(rng: random.Random, term: str) -> str:
    """The term as a query writes it: any of its forms (the canonical one included)."""
    forms = term.split("|")
    return forms[rng.randrange(len(forms))]


def slug(term: str) -> str:
    return canonical(term).replace(" ", "-")


def dedup_key(text: str) -> str:
    """The text as memlane compares stored texts: case, spacing and trailing punctuation aside."""
    return _SPACE.sub(" ", text).strip().casefold().rstrip(_TRAILING).rstrip()


class Zipf(Generic[T]):
    """Draws from a ranked list with weight 1/rank."""

    def __init__(self, terms: tuple[T, ...]) -> None:
        self.terms = terms
        self.cumulative = list(accumulate(_SCALE // rank for rank in range(1, len(terms) + 1)))

    def draw(self, rng: random.Random) -> T:
        return self.terms[bisect_right(self.cumulative, rng.randrange(self.cumulative[-1]))]


@dataclass(frozen=True)
class Draft:
    """A memory and the (slot, term) pairs it states: queries are judged on these."""

    kind: str
    text: str
    tags: tuple[str, ...]
    slots: Slots


class Vocab:
    """One project's samplers, and what a memory of it may mention."""

    def __init__(self, project: Project, size: int) -> None:
        self.project = project
        self.component, self.tool = Zipf(project.components), Zipf(project.tools)
        self.purpose, self.file = Zipf(project.purposes), Zipf(project.files)
        self.command = Zipf(project.commands)
        self.reason, self.symptom = Zipf(REASONS), Zipf(SYMPTOMS)
        self.condition, self.fix = Zipf(CONDITIONS), Zipf(FIXES)
        self.practice, self.alt = Zipf(PRACTICES), Zipf(ALT_WORDS)
        self.tickets = max(50, size // 4)

    def ticket(self, rng: random.Random) -> str:
        return f"{self.project.ticket}-{rng.randrange(1, self.tickets) + 100}"

    def task(self, rng: random.Random) -> tuple[str, str]:
        """A command with its placeholders filled, and what it does."""
        command, task = self.command.draw(rng)
        values = {"module": slug(self.component.draw(rng)).split("-")[0], "date": day(rng),
                  "slug": slug(self.purpose.draw(rng)).replace("-", "_")}
        return command.format(**values), task.format(**values)


def day(rng: random.Random) -> str:
    return (date(2025, 1, 6) + timedelta(days=rng.randrange(300))).isoformat()


def decision(rng: random.Random, v: Vocab) -> Draft:
    tool, purpose, reason, ticket = (v.tool.draw(rng), v.purpose.draw(rng),
                                     v.reason.draw(rng), v.ticket(rng))
    c = canonical
    if rng.randrange(2):
        text = f"We decided to use {c(tool)} for {c(purpose)} because {c(reason)} ({ticket})."
    else:
        text = (f"#decision {c(tool)} over {v.alt.draw(rng)} for {c(purpose)}: {c(reason)}. "
                f"See {ticket}.")
    return Draft("decision", text, ("decision", slug(purpose)),
                 (("tool", tool), ("purpose", purpose), ("reason", reason), ("ticket", ticket)))


def bug(rng: random.Random, v: Vocab) -> Draft:
    component, symptom = v.component.draw(rng), v.symptom.draw(rng)
    condition, fix, file = v.condition.draw(rng), v.fix.draw(rng), v.file.draw(rng)
    ticket, line = v.ticket(rng), rng.randrange(12, 900)
    c = canonical
    if rng.randrange(2):
        text = (f"Bug {ticket}: the {c(component)} {c(symptom)} {c(condition)}. "
                f"Fixed in {file}:{line} by {c(fix)}.")
    else:
        text = (f"The {c(component)} {c(symptom)} {c(condition)}; the fix was {c(fix)} "
                f"({file}, line {line}, {ticket}).")
    return Draft("note", text, ("bug", slug(component)),
                 (("component", component), ("symptom", symptom), ("condition", condition),
                  ("fix", fix), ("file", file), ("ticket", ticket)))


def command(rng: random.Random, v: Vocab) -> Draft:
    (cmd, task), ticket = v.task(rng), v.ticket(rng)
    if rng.randrange(2):
        file = v.file.draw(rng)
        text = f"Run `{cmd}` to {task} (needed since {ticket} touched {file})."
        slots: Slots = (("task", task), ("ticket", ticket), ("file", file))
    else:
        text = f"To {task} after {ticket}, run `{cmd}`."
        slots = (("task", task), ("ticket", ticket))
    return Draft("note", text, ("command",), slots)


def insight(rng: random.Random, v: Vocab) -> Draft:
    component, condition, fix = v.component.draw(rng), v.condition.draw(rng), v.fix.draw(rng)
    ticket, c = v.ticket(rng), canonical
    if rng.randrange(2):
        before = rng.randrange(40, 400)
        after = before + rng.randrange(50, 3000)
        text = (f"The {c(component)} gets slow {c(condition)}: p95 went from {before} ms to "
                f"{after} ms until {c(fix)} ({ticket}).")
        slots: Slots = (("component", component), ("condition", condition), ("fix", fix),
                        ("ticket", ticket))
    else:
        tool, symptom = v.tool.draw(rng), v.symptom.draw(rng)
        text = (f"TIL {c(tool)} in the {c(component)} {c(symptom)} {c(condition)} unless "
                f"{c(fix)} ({ticket}).")
        slots = (("tool", tool), ("component", component), ("symptom", symptom),
                 ("condition", condition), ("fix", fix), ("ticket", ticket))
    return Draft("insight", text, ("insight", slug(component)), slots)


def user_note(rng: random.Random, v: Vocab) -> Draft:
    component, ticket = v.component.draw(rng), v.ticket(rng)
    c = canonical
    if rng.randrange(2):
        practice = v.practice.draw(rng)
        text = f"Always {c(practice)} before touching the {c(component)} ({ticket})."
        slots: Slots = (("practice", practice), ("component", component), ("ticket", ticket))
    else:
        tool, purpose = v.tool.draw(rng), v.purpose.draw(rng)
        text = (f"Prefer {c(tool)} over {v.alt.draw(rng)} for {c(purpose)} in the "
                f"{c(component)}, per {ticket}.")
        slots = (("tool", tool), ("purpose", purpose), ("component", component),
                 ("ticket", ticket))
    return Draft("user-note", text, (slug(component),), slots)


def session_save(rng: random.Random, v: Vocab) -> Draft:
    component, ticket, fix = v.component.draw(rng), v.ticket(rng), v.fix.draw(rng)
    _, task = v.task(rng)
    text = (f"Session {day(rng)}: worked on the {canonical(component)} ({ticket}), tried "
            f"{canonical(fix)}; next: {task}.")
    return Draft("session-save", text, (),
                 (("component", component), ("ticket", ticket), ("fix", fix), ("task", task)))


TEMPLATES = ((bug, 30), (session_save, 18), (decision, 15), (insight, 13), (command, 12),
             (user_note, 12))
_TEMPLATE_CUMULATIVE = list(accumulate(weight for _, weight in TEMPLATES))


def draft(rng: random.Random, v: Vocab) -> Draft:
    index = bisect_right(_TEMPLATE_CUMULATIVE, rng.randrange(_TEMPLATE_CUMULATIVE[-1]))
    return TEMPLATES[index][0](rng, v)


def layout(rng: random.Random, projects: tuple[Project, ...], total: int) -> list[Project]:
    """Which project each memory belongs to, in a shuffled arrival order; sizes by share."""
    sizes = [total * p.share // 100 for p in projects]
    sizes[0] += total - sum(sizes)
    order = [p for p, size in zip(projects, sizes) for _ in range(size)]
    rng.shuffle(order)
    return order


def generate(rng: random.Random, projects: tuple[Project, ...],
             total: int) -> list[tuple[str, Draft]]:
    """``total`` (project path, memory) pairs whose texts are pairwise distinct as memlane
    compares them (a text that repeats an earlier one is drawn again)."""
    order = layout(rng, projects, total)
    vocabs = {p.path: Vocab(p, order.count(p)) for p in projects}
    seen: set[str] = set()
    memories = []
    for project in order:
        memory = draft(rng, vocabs[project.path])
        while dedup_key(memory.text) in seen:
            memory = draft(rng, vocabs[project.path])
        seen.add(dedup_key(memory.text))
        memories.append((project.path, memory))
    return memories
