"""The lifecycle's view of the LLM: merge a cluster, judge substance, spot a conflict.

Wraps :class:`memlane.daemon.adapters.gemini.GeminiClient` in the shapes the jobs use; the jobs fall back
to their offline checks when a call fails or the daily budget is spent.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from memlane.daemon.domain.consolidation import Merge, Source
from memlane.daemon.adapters.gemini import DailyBudget, GeminiClient, SourceMemory, api_key_from_env


class GeminiConsolidator:
    def __init__(self, client: GeminiClient, budget: DailyBudget) -> None:
        self.client = client
        self.budget = budget

    async def merge(self, sources: list[Source]) -> Merge:
        reply = await self.client.consolidate(
            [SourceMemory(id=s.id, text=s.text, kind=s.kind, tags=s.tags) for s in sources])
        return Merge(text=reply.text, kind=reply.kind, tags=tuple(reply.tags),
                     model=self.client.model, prompt_version=self.client.prompt_version)

    async def has_substance(self, text: str) -> bool:
        return (await self.client.judge_substance(text)).keep

    async def conflicts(self, new_text: str, existing: str) -> bool:
        return (await self.client.check_conflict(new_text, existing)).verdict == "conflicts"


def consolidator_from(env: Mapping[str, str], *, model: str, base_url: str | None,
                      daily_budget: int, budget_file: Path) -> GeminiConsolidator | None:
    """The LLM when a key is in the environment, else None (clusters wait)."""
    key = api_key_from_env(env)
    if key is None:
        return None
    budget = DailyBudget(budget_file, daily_budget)
    return GeminiConsolidator(GeminiClient(key, model=model, base_url=base_url, budget=budget),
                              budget)
