"""Fixed benchmark corpora: generated on first use, checked against MANIFEST.json.

``load("zipf-100k")`` returns the directory holding that corpus's JSONL files (see
``bench.corpora.generate`` for the corpora and their formats). The files are generated once
into bench/.cache/ (git-ignored) and their sha256 checked against the committed manifest at
every load, so a corpus is fixed by the commit: ``CorpusMismatch`` is raised rather than a
benchmark run on different data.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from pathlib import Path

MANIFEST = Path(__file__).with_name("MANIFEST.json")
CACHE = Path(__file__).resolve().parent.parent / ".cache"


class CorpusMismatch(RuntimeError):
    """A corpus file differs from MANIFEST.json."""


def manifest() -> dict[str, dict[str, dict[str, object]]]:
    return json.loads(MANIFEST.read_text())


def verify(directory: Path, expected: dict[str, dict[str, object]]) -> None:
    """Raise ``CorpusMismatch`` unless ``directory`` holds exactly the expected files."""
    for filename, facts in expected.items():
        path = directory / filename
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else "missing"
        if digest != facts["sha256"]:
            raise CorpusMismatch(f"{path}: sha256 {digest}, MANIFEST.json says {facts['sha256']}")


def load(name: str, cache: Path = CACHE) -> Path:
    """The verified directory of corpus ``name``, generated into ``cache`` on first use."""
    # Imported here so that `python -m bench.corpora.generate` does not import itself twice.
    from bench.corpora.generate import write

    expected = manifest().get(name)
    if expected is None:
        raise KeyError(f"unknown corpus {name!r}; known: {', '.join(manifest())}")
    version = hashlib.sha256(json.dumps(expected, sort_keys=True).encode()).hexdigest()[:12]
    target = cache / f"{name}-{version}"
    if not target.exists():
        cache.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=cache))
        try:
            write(name, staging)
            verify(staging, expected)
            staging.rename(target)
        except OSError:
            if not target.exists():  # not another process finishing first: a real failure
                raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    verify(target, expected)
    return target
