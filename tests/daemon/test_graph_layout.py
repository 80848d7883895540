"""The graph's layout: deterministic positions, linked memories near each other, components
apart, the largest first."""

from __future__ import annotations

import math
import random

from memlane.daemon.domain.graph_layout import FORCE_UP_TO, SPACING, layout


def chains(sizes: list[int]) -> tuple[list[list[int]], list[tuple[int, int, float]]]:
    """Components of the given sizes, each a chain with a few random chords."""
    rng = random.Random(7)
    components, edges, first = [], [], 0
    for size in sizes:
        nodes = list(range(first, first + size))
        components.append(nodes)
        edges += [(a, b, 0.8) for a, b in zip(nodes, nodes[1:])]
        edges += [(rng.choice(nodes), rng.choice(nodes), 0.8) for _ in range(size // 4)]
        first += size
    return components, [(a, b, s) for a, b, s in edges if a != b]


def test_the_same_graph_gets_the_same_positions() -> None:
    """Twice the same input, twice the same answer (a cache may keep it)."""
    components, edges = chains([FORCE_UP_TO + 50, 40, 10, 10, 3, 2, 1])
    assert layout(components, edges) == layout(components, edges)


def test_linked_memories_are_near_and_components_do_not_overlap() -> None:
    """A link is drawn short (about the spacing); no two components' boxes overlap; the
    largest component starts at the top left."""
    components, edges = chains([FORCE_UP_TO + 50, 60, 12, 12, 12, 5, 2, 1])
    placed = layout(components, edges)
    assert set(placed) == {i for c in components for i in c}
    lengths = [math.dist(placed[a], placed[b]) for a, b, _ in edges]
    assert sorted(lengths)[len(lengths) // 2] < 3 * SPACING
    boxes = [(min(placed[i][0] for i in c), min(placed[i][1] for i in c),
              max(placed[i][0] for i in c), max(placed[i][1] for i in c)) for c in components]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert a[2] < b[0] or b[2] < a[0] or a[3] < b[1] or b[3] < a[1], (a, b)
    assert boxes[0][:2] == (0.0, 0.0)
    assert min(len({placed[i] for i in c}) / len(c) for c in components) == 1.0  # no overlap
