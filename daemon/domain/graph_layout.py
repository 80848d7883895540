"""Where the viewer's graph draws each memory (pure and deterministic), so the browser only
places nodes (cytoscape's ``preset`` layout) instead of computing a layout.

Each connected component is laid out alone: a small one by a force layout (components of one
size run together, as one batch of arrays), a large one in rings by distance from its best
linked memory (a force layout is quadratic in its nodes). The components are then packed in
rows, in the order given (largest first), so the biggest ones sit at the top left.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence

import numpy as np

SPACING = 40.0  # px: the length a link aims at
FORCE_UP_TO = 150  # nodes: larger components are laid out in rings
ITERATIONS = 40
GAP = 2 * SPACING  # px between packed components

Position = tuple[float, float]


def layout(components: Sequence[Sequence[int]],
           edges: Sequence[tuple[int, int, float]]) -> dict[int, Position]:
    """Each node's position; ``components`` partition the nodes (largest first) and every
    edge joins two nodes of one component."""
    neighbours: dict[int, list[int]] = {i: [] for c in components for i in c}
    for a, b, _ in edges:
        neighbours[a].append(b)
        neighbours[b].append(a)
    shapes: list[np.ndarray | None] = [None] * len(components)
    by_size: dict[int, list[int]] = {}
    for index, component in enumerate(components):
        if len(component) > FORCE_UP_TO:
            shapes[index] = _rings(component, neighbours)
        else:
            by_size.setdefault(len(component), []).append(index)
    for indexes in by_size.values():
        for index, shape in zip(indexes, _forces([components[i] for i in indexes], neighbours),
                                strict=True):
            shapes[index] = shape
    return _packed(components, [s for s in shapes if s is not None])


def _forces(components: list[Sequence[int]], neighbours: dict[int, list[int]]) -> np.ndarray:
    """Fruchterman-Reingold over a batch of components of one size: (batch, size, 2)."""
    count, size = len(components), len(components[0])
    angles = np.arange(size) * (2 * math.pi / size)
    start = np.stack([np.cos(angles), np.sin(angles)], axis=1) * SPACING * math.sqrt(size) / 2
    pos = np.repeat(start[None], count, axis=0)
    adjacent = np.zeros((count, size, size))
    for k, component in enumerate(components):
        where = dict(zip(component, range(size)))
        for node in component:
            adjacent[k, where[node], [where[other] for other in neighbours[node]]] = 1.0
    if size < 3:
        return pos
    temperature = SPACING * math.sqrt(size) / 4
    for step in range(ITERATIONS):
        delta = pos[:, :, None, :] - pos[:, None, :, :]
        squared = np.maximum(np.einsum("bijk,bijk->bij", delta, delta), 1e-4)
        force = SPACING ** 2 / squared - adjacent * np.sqrt(squared) / SPACING
        move = np.einsum("bijk,bij->bik", delta, force)
        length = np.maximum(np.sqrt(np.einsum("bik,bik->bi", move, move))[..., None], 0.01)
        cap = temperature * (1 - step / ITERATIONS)
        pos = pos + move / length * np.minimum(length, cap)
    return pos


def _rings(component: Sequence[int], neighbours: dict[int, list[int]]) -> np.ndarray:
    """Rings by distance (in links) from the component's most linked memory, each node on
    its ring in the order it was reached."""
    root = min(component, key=lambda i: (-len(neighbours[i]), i))
    depth = {root: 0}
    order = [root]
    queue = deque([root])
    while queue:
        node = queue.popleft()
        for other in sorted(neighbours[node]):
            if other not in depth:
                depth[other] = depth[node] + 1
                order.append(other)
                queue.append(other)
    rings: dict[int, list[int]] = {}
    for node in order:
        rings.setdefault(depth[node], []).append(node)
    where = {node: i for i, node in enumerate(component)}
    pos = np.zeros((len(component), 2))
    radius = -SPACING
    for nodes in rings.values():  # each ring outside the last, with room for its nodes
        radius = max(radius + SPACING, len(nodes) * SPACING / (2 * math.pi))
        for i, node in enumerate(nodes):
            angle = 2 * math.pi * i / len(nodes)
            pos[where[node]] = (radius * math.cos(angle), radius * math.sin(angle))
    return pos


def _packed(components: Sequence[Sequence[int]], shapes: list[np.ndarray]
            ) -> dict[int, Position]:
    """The components side by side in rows about as wide as the whole is tall."""
    boxes = [shape - shape.min(axis=0) for shape in shapes]
    sizes = [box.max(axis=0) + GAP for box in boxes]
    width = max(math.sqrt(sum(float(w * h) for w, h in sizes)), max(float(w) for w, _ in sizes))
    x = y = row = 0.0
    placed: dict[int, Position] = {}
    for component, box, (w, h) in zip(components, boxes, sizes, strict=True):
        if x and x + w > width:
            x, y, row = 0.0, y + row, 0.0
        for node, (px, py) in zip(component, box.tolist(), strict=True):
            placed[node] = (round(x + px, 1), round(y + py, 1))
        x, row = x + float(w), max(row, float(h))
    return placed
