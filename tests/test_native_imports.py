"""Native libraries that memlane loads together must coexist in one process, in any order."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize("first", ["memlane.projections.vector_store", "memlane.daemon.service.candidates",
                                   "memlane.projections.catchup"])
def test_projection_modules_then_onnxruntime(first: str) -> None:
    code = f"import {first}; import onnxruntime; import memlane.daemon.adapters.embedder; print('ok')"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
