"""The CLI's fallback when no daemon answers: load the model in this process.

Slow (a model load per call) but it works with the daemon down; the CLI says so on stderr.
"""

from __future__ import annotations

from typing import Any

from memlane.daemon.adapters.paths import Paths


def load_embedder(paths: Paths) -> Any:
    """The model the daemon would load, with the daemon's settings."""
    from memlane.daemon.adapters.embedder import Embedder
    from memlane.daemon.adapters.model_store import default_model_name
    from memlane.daemon.domain.models import resolve_spec
    from memlane.daemon.adapters.settings import Settings

    settings = Settings.load(paths.config)
    name = settings.model or default_model_name(paths.models_dir)
    return Embedder.load(resolve_spec(name), paths.models_dir, threads=settings.threads)


def embed(paths: Paths, texts: list[str], *, input_type: str,
          dims: int | None) -> tuple[str, list[list[float]]]:
    """(model name, vectors) computed in-process."""
    embedder = load_embedder(paths)
    vectors = embedder.embed(texts, input_type=input_type, dims=dims)
    return embedder.spec.name, vectors.tolist()


def search(paths: Paths, query: str, *, project: str | None, k: int) -> list[dict[str, Any]]:
    """Search the projections directly, after catching them up with the log (holding the
    writer lock, as the daemon would)."""
    from memlane.daemon.service.candidates import dense_candidates, hybrid_hits
    from memlane.events.log import EventLog
    from memlane.projections.catchup import Projections, committed_seq

    embedder = load_embedder(paths)
    log = EventLog.open(paths.log_dir, acknowledged_at_least=committed_seq(
        paths.sqlite, paths.vectors))
    try:
        projections = Projections(paths.sqlite, paths.vectors)
        try:
            projections.catch_up(paths.log_dir, log.last_seq)
            vectors = projections.vectors
            dense = []
            if vectors.pipeline == embedder.pipeline:
                vector = embedder.embed([query], input_type="query")[0]
                dense = dense_candidates(vectors, projections.sqlite.conn, vector, project)
            return hybrid_hits(projections.sqlite.conn, dense, query, project, k)
        finally:
            projections.close()
    finally:
        log.close()
