"""Model files on disk: pull from the Hugging Face hub, record checksums, verify, list.

A pulled model lives in ``<models_dir>/<name>/`` with a ``manifest.json`` naming the hub
repository, the commit its files came from, and each file's size and sha256. Downloads go
through ``huggingface_hub`` (resumable, with a progress bar; ``HF_ENDPOINT`` selects a mirror).
"""

from __future__ import annotations

import importlib.util
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from memlane.daemon.adapters.files import write_atomic
from memlane.daemon.domain.models import BUILT_IN, MINILM, QWEN3, ModelSpec, ModelUnavailable

MANIFEST = "manifest.json"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
# Hashing a large file at every start would cost a second; the start checks its size against
# the manifest and `memlane model verify` hashes it.
HASH_AT_LOAD_LIMIT = 100 * 1024 * 1024


class FileRecord(msgspec.Struct, frozen=True):
    size: int
    sha256: str


class Manifest(msgspec.Struct, frozen=True, kw_only=True):
    model: str
    repo: str
    revision: str
    pulled_at: str
    files: dict[str, FileRecord]


def spec_files(spec: ModelSpec) -> list[str]:
    """The files a model needs, relative to its directory (or package)."""
    return [spec.onnx_file, spec.tokenizer_file]


def manifest_path(spec: ModelSpec, models_dir: Path) -> Path:
    return models_dir / spec.name / MANIFEST


def read_manifest(spec: ModelSpec, models_dir: Path) -> Manifest | None:
    try:
        return msgspec.json.decode(manifest_path(spec, models_dir).read_bytes(), type=Manifest)
    except FileNotFoundError:
        return None
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ModelUnavailable(f"{manifest_path(spec, models_dir)} is damaged ({exc}); run "
                               f"`memlane model pull {spec.name}` again") from None


def sha256_of(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def expected_digest(spec: ModelSpec, manifest: Manifest | None, relative: str) -> FileRecord | None:
    """What a file must be: the spec's pinned sha256, else what the pull recorded."""
    name = Path(relative).name
    if name in spec.sha256:
        return FileRecord(size=-1, sha256=spec.sha256[name])
    if manifest is not None:
        return manifest.files.get(relative)
    return None


def check_files(spec: ModelSpec, models_dir: Path, *, full: bool) -> list[dict[str, Any]]:
    """One row per file: path, status (ok, missing, mismatch, unrecorded) and a detail.

    ``full`` hashes every file; otherwise large pulled files are checked by size only.
    """
    manifest = None if spec.packaged else read_manifest(spec, models_dir)
    rows = []
    for relative, path in zip(spec_files(spec), model_files(spec, models_dir), strict=True):
        rows.append({"file": str(path), **_check_one(path, expected_digest(spec, manifest, relative),
                                                      full=full)})
    return rows


def _check_one(path: Path, expected: FileRecord | None, *, full: bool) -> dict[str, str]:
    if not path.is_file():
        return {"status": "missing", "detail": "file not found"}
    if expected is None:
        return {"status": "unrecorded", "detail": "no checksum recorded; pull the model again"}
    size = path.stat().st_size
    if expected.size >= 0 and size != expected.size:
        return {"status": "mismatch", "detail": f"size {size}, expected {expected.size}"}
    if full or size <= HASH_AT_LOAD_LIMIT:
        actual = sha256_of(path)
        if actual != expected.sha256:
            return {"status": "mismatch", "detail": f"sha256 {actual}, expected {expected.sha256}"}
    return {"status": "ok", "detail": f"sha256 {expected.sha256}"}


def require_intact(spec: ModelSpec, models_dir: Path) -> tuple[Path, Path]:
    """The model's (onnx, tokenizer) paths, or :class:`ModelUnavailable` saying what is wrong."""
    for row in check_files(spec, models_dir, full=False):
        if row["status"] == "missing":
            hint = ("reinstall memlane" if spec.packaged
                    else f"run `memlane model pull {spec.name}`")
            raise ModelUnavailable(f"model file missing: {row['file']}; {hint}")
        if row["status"] != "ok":
            raise ModelUnavailable(f"{row['file']}: {row['detail']}; run `memlane model pull "
                                   f"{spec.name}` again")
    return model_files(spec, models_dir)


def pull(spec: ModelSpec, models_dir: Path, *, revision: str = "main",
         progress: bool = True) -> Manifest:
    """Download the model's files from the hub (resuming partial downloads) and record them.

    Every file comes from the same commit; a file whose sha256 differs from the hub's LFS
    checksum or the spec's pinned one is deleted and the pull fails.
    """
    if spec.packaged or spec.hub_repo is None:
        raise ModelUnavailable(f"{spec.name} ships with memlane; there is nothing to pull")
    from huggingface_hub import get_hf_file_metadata, hf_hub_download, hf_hub_url
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError
    from huggingface_hub.utils import disable_progress_bars, enable_progress_bars

    root = models_dir / spec.name
    root.mkdir(parents=True, exist_ok=True)
    files: dict[str, FileRecord] = {}
    commit = revision
    (enable_progress_bars if progress else disable_progress_bars)()
    try:
        for relative in spec_files(spec):
            meta = get_hf_file_metadata(hf_hub_url(spec.hub_repo, relative, revision=commit))
            commit = meta.commit_hash or commit
            path = Path(hf_hub_download(spec.hub_repo, relative, revision=commit, local_dir=root))
            files[relative] = _record(spec, path, meta.etag)
    except (HfHubHTTPError, LocalEntryNotFoundError, OSError) as exc:
        raise ModelUnavailable(f"could not download {spec.name} from {spec.hub_repo}: {exc}") from exc
    manifest = Manifest(model=spec.name, repo=spec.hub_repo, revision=commit,
                        pulled_at=datetime.now(UTC).isoformat(timespec="seconds"), files=files)
    write_atomic(manifest_path(spec, models_dir), msgspec.json.format(msgspec.json.encode(manifest)))
    return manifest


def _record(spec: ModelSpec, path: Path, etag: str | None) -> FileRecord:
    digest = sha256_of(path)
    hub_sha = (etag or "").strip('"').removeprefix("W/").strip('"').lower()
    pinned = spec.sha256.get(path.name)
    for source, expected in (("the hub's checksum", hub_sha if _SHA256.match(hub_sha) else None),
                             ("memlane's pinned checksum", pinned)):
        if expected is not None and digest != expected:
            path.unlink(missing_ok=True)
            raise ModelUnavailable(f"{path.name}: sha256 {digest} differs from {source} "
                                   f"{expected}; the download was deleted, pull again")
    return FileRecord(size=path.stat().st_size, sha256=digest)


def describe(models_dir: Path, in_use: str) -> list[dict[str, Any]]:
    """A row per built-in model for `memlane model list`."""
    rows = []
    for spec in BUILT_IN.values():
        try:
            present = all(p.is_file() for p in model_files(spec, models_dir))
            size = sum(p.stat().st_size for p in model_files(spec, models_dir)) if present else 0
        except ModelUnavailable:
            present, size = False, 0
        rows.append({"name": spec.name, "dims": spec.dims, "pooling": spec.pooling,
                     "source": "package" if spec.packaged else spec.hub_repo,
                     "present": present, "size_bytes": size, "in_use": spec.name == in_use})
    return rows


def model_files(spec: ModelSpec, models_dir: Path) -> tuple[Path, Path]:
    """(onnx, tokenizer) paths: inside installed packages, or under ``models_dir/<name>``."""
    if spec.packaged:
        return _package_file(spec.onnx_file), _package_file(spec.tokenizer_file)
    root = models_dir / spec.name
    return root / spec.onnx_file, root / spec.tokenizer_file


def files_present(spec: ModelSpec, models_dir: Path) -> bool:
    try:
        return all(path.is_file() for path in model_files(spec, models_dir))
    except ModelUnavailable:
        return False


def default_model_name(models_dir: Path) -> str:
    """The production model where its files are present, else the offline default."""
    return QWEN3.name if files_present(QWEN3, models_dir) else MINILM.name


def _package_file(relative: str) -> Path:
    """A data file inside an installed package, located without importing the package."""
    package, _, rest = relative.partition("/")
    found = importlib.util.find_spec(package)
    if found is None or not found.submodule_search_locations:
        raise ModelUnavailable(f"package {package!r} is not installed; `pip install memlane` "
                               "installs it with the offline model")
    return Path(next(iter(found.submodule_search_locations))) / rest
