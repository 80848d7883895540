"""Queries with known relevant memories, and hook prompts of nominal sizes.

A query restates some of a target memory's slots (slot drop-out, shuffled order, paraphrased
terms). Its relevant memories are exactly those of the same project that state every slot the
query keeps; slots are added until at most ``MAX_RELEVANT`` memories qualify.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterator

from bench.corpora.memories import Draft, Vocab, canonical, day, slug, surface
from bench.corpora.vocab import Project

MAX_RELEVANT = 5
_LAST = ("file", "ticket")  # kept only when the other slots cannot narrow the answer
_TASK_STEMS = ("how do I", "command to")
_STEMS = {"decision": ("why did we choose", "what did we decide about", "reason for"),
          "note": ("what was the fix for", "have we seen", "bug:", ""),
          "insight": ("why is it slow:", "what did we learn about", ""),
          "user-note": ("conventions for", "what should I do about", ""),
          "session-save": ("where did I leave", "status of", "")}


class SlotIndex:
    """Memory indices by (project, slot, term)."""

    def __init__(self, memories: list[tuple[str, Draft]]) -> None:
        self.holders: dict[tuple[str, str, str], set[int]] = defaultdict(set)
        for index, (project, memory) in enumerate(memories):
            for slot, term in memory.slots:
                self.holders[project, slot, term].add(index)

    def matching(self, project: str, slots: list[tuple[str, str]]) -> set[int]:
        return set.intersection(*(self.holders[project, slot, term] for slot, term in slots))


def narrowed(rng: random.Random, index: SlotIndex, project: str,
             memory: Draft) -> tuple[list[tuple[str, str]], set[int]]:
    """Slots a query keeps (at least two when there are) and the memories stating them all."""
    content = [s for s in memory.slots if s[0] not in _LAST]
    rng.shuffle(content)
    order = content + [s for s in memory.slots if s[0] in _LAST]
    kept = order[:2]
    relevant = index.matching(project, kept)
    for slot in order[2:]:
        if len(relevant) <= MAX_RELEVANT:
            break
        kept.append(slot)
        relevant = index.matching(project, kept)
    return kept, relevant


def phrase(rng: random.Random, kind: str, kept: list[tuple[str, str]]) -> str:
    stems = _TASK_STEMS if kept[0][0] == "task" else _STEMS[kind]
    words = [stems[rng.randrange(len(stems))]] + [surface(rng, term) for _, term in kept]
    return " ".join(w for w in words if w) + ("?" if rng.randrange(2) else "")


def queries(rng: random.Random, memories: list[tuple[str, Draft]], projects: tuple[Project, ...],
            per_project: int) -> list[dict[str, object]]:
    """``per_project`` distinct queries for each project, each with its relevant indices."""
    index = SlotIndex(memories)
    members = defaultdict(list)
    for i, (project, _) in enumerate(memories):
        members[project].append(i)
    result: list[dict[str, object]] = []
    seen: set[str] = set()
    for project in (p.path for p in projects):
        made = 0
        while made < per_project:
            project_memories = members[project]
            memory = memories[project_memories[rng.randrange(len(project_memories))]][1]
            kept, relevant = narrowed(rng, index, project, memory)
            text = phrase(rng, memory.kind, kept)
            if text.casefold() in seen:
                continue
            seen.add(text.casefold())
            result.append({"query": text, "project": project, "relevant": sorted(relevant)})
            made += 1
    return result


def _sentences(rng: random.Random, v: Vocab, pasted: bool) -> Iterator[str]:
    """Endless prompt material: requests, context, and pasted log and traceback lines."""
    c = canonical
    while True:
        component, file = v.component.draw(rng), v.file.draw(rng)
        match rng.randrange(6 if pasted else 4):
            case 0:
                yield (f"The {surface(rng, component)} {surface(rng, v.symptom.draw(rng))} "
                       f"{surface(rng, v.condition.draw(rng))}, why?")
            case 1:
                yield (f"Can you add {c(v.purpose.draw(rng))} to the {c(component)} "
                       f"using {c(v.tool.draw(rng))}?")
            case 2:
                yield f"I already tried {c(v.fix.draw(rng))}, see {v.ticket(rng)}."
            case 3:
                yield f"Please look at {file} and keep {c(v.purpose.draw(rng))} working."
            case 4:
                yield (f"{day(rng)}T{rng.randrange(24):02}:{rng.randrange(60):02}:00Z ERROR "
                       f"{slug(component)} request_id={rng.getrandbits(32):08x} "
                       f"at {file}:{rng.randrange(12, 900)}")
            case _:
                yield f'  File "{file}", line {rng.randrange(12, 900)}, in {slug(component)}'


def prompt(rng: random.Random, v: Vocab, size: int) -> str:
    """Distinct sentences of ``v``'s project, at most ``size`` and more than ``size - 80``
    characters; a long prompt has pasted lines too, and is one sentence or line a line."""
    sentences = _sentences(rng, v, pasted=size >= 1000)
    parts: list[str] = []
    length = -1  # of the parts joined by one character
    while length <= size - 80:
        sentence = next(sentences)
        if length + 1 + len(sentence) <= size and sentence not in parts:
            parts.append(sentence)
            length += 1 + len(sentence)
    return ("\n" if size >= 1000 else " ").join(parts)


def prompts(rng: random.Random, projects: tuple[Project, ...], sizes: tuple[int, ...],
            count: int) -> list[dict[str, object]]:
    """``count`` distinct prompts of each size for each project."""
    result, seen = [], set()
    for project in projects:
        vocab = Vocab(project, 4000)
        for size in sizes:
            made = 0
            while made < count:
                text = prompt(rng, vocab, size)
                if text not in seen:
                    seen.add(text)
                    result.append({"prompt": text, "project": project.path, "size": size})
                    made += 1
    return result
