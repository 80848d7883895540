"""``memlane calibrate``: the similarity distribution of live memories, the relevance floor
judged on the user's own recorded queries (:mod:`probes`), suggested thresholds with why each
has its value, recorded as ``ThresholdSet`` events when applied."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import numpy as np

from memlane.daemon.domain.calibration import (
    choose_relevance, distribution, explain, pair_scores, probe_report, suggest)
from memlane.daemon.domain.errors import Unavailable
from memlane.daemon.domain.ranking import Floor
from memlane.daemon.runtime.ports import Embeds
from memlane.daemon.runtime.reader import Reader
from memlane.daemon.runtime.thresholds import Thresholds, threshold_for
from memlane.daemon.runtime.writer import Writer
from memlane.daemon.service.probes import Prober
from memlane.events.model import ThresholdSet
from memlane.projections import queries

SAMPLE = 3000  # memories per project: pairs grow with the square


class Calibration:
    def __init__(self, *, reader: Reader, writer: Writer, engine: Embeds,
                 thresholds: Thresholds, log_dir: Path) -> None:
        self._reader = reader
        self._writer = writer
        self._engine = engine
        self._thresholds = thresholds
        self._prober = Prober(reader=reader.bulk(), engine=engine, log_dir=log_dir)

    async def calibrate(self, *, apply: bool) -> dict[str, Any]:
        embedder = self._engine.embedder
        if embedder is None:
            raise Unavailable("the embedding model is not loaded", code="model_not_ready")
        spec = embedder.spec
        by_project = await self._reader.read(queries.live_ids_by_project)
        groups = await anyio.to_thread.run_sync(self._sample, list(by_project.values()))
        scores = [pair_scores(v) for v in groups if len(v) > 1]
        nearest = np.concatenate([n for n, _ in scores]) if scores else np.zeros(0)
        pairs = np.concatenate([p for _, p in scores]) if scores else np.zeros(0)
        current = await self._reader.read(lambda conn: {name: threshold_for(conn, spec, name)
                                                        for name in spec.thresholds})
        probes = await self._prober.probes(Floor.of(current),
                                           {p: len(ids) for p, ids in by_project.items()})
        relevance = choose_relevance(probes, current["relevance"])
        suggested = {**suggest(pairs, current), "relevance": relevance.value}
        if apply:
            await self._writer.append([ThresholdSet(model=spec.name, name=name, value=value)
                                       for name, value in suggested.items()
                                       if value != current.get(name)])
            self._thresholds.clear()
        return {"model": spec.name, "memories": int(sum(len(v) for v in groups)),
                "nearest_neighbour": distribution(nearest.tolist()),
                "pairs": distribution(pairs.tolist()),
                "suspected_duplicates": int((nearest >= current["duplicate"]).sum()),
                "relevance_probes": probe_report(probes, current=current["relevance"],
                                                 suggested=relevance.value),
                "current": current, "suggested": suggested,
                "why": explain(pairs, suggested, spec.thresholds_source,
                               relevance=relevance.why),
                "applied": apply}

    def _sample(self, projects: list[list[int]]) -> list[np.ndarray]:
        """Up to :data:`SAMPLE` vectors of each project."""
        projections = self._reader.projections
        with projections.lock:
            return [projections.vectors.vectors(ids[:SAMPLE])[1] for ids in projects]
