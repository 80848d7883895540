"""The peer's own bulk path, run by the peer's interpreter: ``SqliteVecMemoryStorage.store_batch``.

Run (by bench.bench_peer, with the peer venv's python and its environment):
    PEER_PYTHON bench/peer_loader.py DB_PATH MEMORIES_JSONL BATCH

mcp-memory-service's HTTP API stores one memory per request; its bulk path is the storage
layer's ``store_batch`` (one embedding call and one transaction per batch; what its
consolidator uses). This script opens the sqlite-vec storage on DB_PATH, stores the lines of
MEMORIES_JSONL (``{"text", "store", "tags"}``; a project becomes a store partition) in
batches of BATCH per store, and prints one JSON line: model load and load seconds, counts, and
its own RSS (VmRSS and peak VmHWM). It imports nothing from memlane: it runs in the peer's venv.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import defaultdict
from pathlib import Path


def proc_status_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def by_store(path: Path) -> dict[str, list[dict]]:
    groups: dict[str, list[dict]] = defaultdict(list)
    for line in path.read_text().splitlines():
        item = json.loads(line)
        groups[item["store"]].append(item)
    return groups


async def load(db_path: str, groups: dict[str, list[dict]], batch: int) -> dict[str, float]:
    from mcp_memory_service.models.memory import Memory
    from mcp_memory_service.storage.sqlite_vec import SqliteVecMemoryStorage
    from mcp_memory_service.utils.hashing import generate_content_hash

    started = time.perf_counter()
    storage = SqliteVecMemoryStorage(db_path)
    await storage.initialize()
    ready = time.perf_counter()
    stored = failed = 0
    for store, items in groups.items():
        for start in range(0, len(items), batch):
            memories = [Memory(content=i["text"], content_hash=generate_content_hash(i["text"]),
                               tags=i["tags"], memory_type="note")
                        for i in items[start:start + batch]]
            for ok, _ in await storage.store_batch(memories, store=store):
                stored += ok
                failed += not ok
    done = time.perf_counter()
    await storage.close()
    return {"init_s": ready - started, "load_s": done - ready, "stored": stored,
            "failed": failed}


def main() -> None:
    db_path, memories, batch = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
    result = asyncio.run(load(db_path, by_store(memories), batch))
    result.update(rss_mib=proc_status_mib("VmRSS"), hwm_mib=proc_status_mib("VmHWM"))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
