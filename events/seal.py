"""Digests of sealed segments, checked in the background rather than at open.

When the log moves on to a new segment, the previous one is sealed: its SHA-256 is written
beside it as ``<segment>.sha256`` (``sha256sum -c`` reads it). Recovery reads only the last
segment, so :func:`verify_sealed` is how damage to an older one is found: it rechecks every
sealed segment's digest, and scans the frames of one without a digest (written before digests,
or whose digest write failed) or whose digest differs, to say where the damage is.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from memlane.events.disk import OsDisk
from memlane.events.errors import LogCorrupted
from memlane.events.scan import scan_segment
from memlane.events.segments import list_segments

DIGEST_SUFFIX = ".sha256"


@dataclass(frozen=True)
class SealProblem:
    """A sealed segment that is damaged (``offset`` where, if known) or has no digest yet."""

    segment: Path
    kind: str  # "damaged" or "unsealed"
    detail: str
    offset: int | None = None


@dataclass
class SealReport:
    """What a verification pass checked and found."""

    checked: int = 0
    sealed: int = 0
    problems: list[SealProblem] = field(default_factory=list)

    @property
    def damaged(self) -> list[SealProblem]:
        return [p for p in self.problems if p.kind == "damaged"]


def digest_path(segment: Path) -> Path:
    return segment.with_name(segment.name + DIGEST_SUFFIX)


def write_digest(disk: OsDisk, segment: Path, hexdigest: str) -> None:
    """Seal ``segment`` with its digest, atomically and durably."""
    disk.create(digest_path(segment), f"{hexdigest}  {segment.name}\n".encode())


def remove_digest(disk: OsDisk, segment: Path) -> None:
    """Unseal ``segment`` durably (before its bytes are replaced)."""
    path = digest_path(segment)
    if path.exists():
        path.unlink()
        disk.sync_dir(segment.parent)


def sealed_segments(directory: Path) -> list[Path]:
    """Every segment but the last, which is still appended to."""
    return list_segments(directory)[:-1]


def verify_sealed(directory: Path) -> SealReport:
    """Check every sealed segment; read-only."""
    report = SealReport()
    for segment in sealed_segments(directory):
        report.checked += 1
        problem = check_segment(segment)
        if problem is not None:
            report.problems.append(problem)
    return report


def check_segment(segment: Path) -> SealProblem | None:
    """What is wrong with one sealed segment, if anything."""
    data = segment.read_bytes()
    try:
        recorded = digest_path(segment).read_text().split()[0]
    except FileNotFoundError:
        return _scan_problem(segment, data, "no digest") or SealProblem(
            segment, "unsealed", "no digest yet; its frames check out")
    except (IndexError, UnicodeDecodeError, OSError) as exc:
        return SealProblem(segment, "damaged", f"digest file unreadable: {exc}")
    if hashlib.sha256(data).hexdigest() == recorded:
        return None
    return _scan_problem(segment, data, "content differs from its digest") or SealProblem(
        segment, "damaged", "content differs from its digest, though every frame checks out "
                            "(truncated at a frame boundary, or replaced)")


def _scan_problem(segment: Path, data: bytes, why: str) -> SealProblem | None:
    """Where the frames of a sealed segment are damaged; None if they all check out."""
    try:
        scan = scan_segment(segment, data, None)
    except LogCorrupted as exc:
        return SealProblem(segment, "damaged", f"{why}: {exc.reason}", exc.offset)
    if scan.tail is not None:
        return SealProblem(segment, "damaged", f"{why}: {scan.tail.reason}", scan.tail.offset)
    return None
