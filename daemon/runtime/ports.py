"""What the runtime and the services need from the embedding model (an adapter)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol

import numpy as np

from memlane.daemon.domain.models import ModelSpec


class LoadedModel(Protocol):
    @property
    def spec(self) -> ModelSpec: ...

    @property
    def pipeline(self) -> str: ...

    @property
    def dims(self) -> int: ...

    def count_tokens(self, texts: Sequence[str]) -> int: ...


class Embeds(Protocol):
    """The warm embedding engine: embeds texts once its model is loaded."""

    @property
    def embedder(self) -> LoadedModel | None: ...

    @property
    def load_error(self) -> str | None: ...

    @property
    def ready(self) -> bool: ...

    @property
    def passes(self) -> int: ...

    async def embed(self, texts: Sequence[str], *, input_type: str = "document",
                    dims: int | None = None, timeout: float = 30.0,
                    lane: Literal["interactive", "bulk"] = "bulk",
                    shed: bool = False) -> np.ndarray: ...

    async def embed_counted(self, texts: Sequence[str], *, input_type: str = "document",
                            dims: int | None = None, timeout: float = 30.0,
                            lane: Literal["interactive", "bulk"] = "bulk",
                            shed: bool = False) -> tuple[np.ndarray, int]: ...
