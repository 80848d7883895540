"""The project a memory belongs to: the git root of a directory (worktrees share their main
repository's root), found without running git."""

from __future__ import annotations

from pathlib import Path

GLOBAL = "global"


def detect_project(cwd: Path) -> str:
    """The repository root for ``cwd``, or ``global`` outside any repository."""
    for directory in (cwd, *cwd.parents):
        dot_git = directory / ".git"
        if dot_git.is_dir():
            return str(directory)
        if dot_git.is_file():
            return str(_worktree_root(dot_git) or directory)
    return GLOBAL


def _worktree_root(dot_git: Path) -> Path | None:
    """For a worktree's ``.git`` file: the main repository's working directory."""
    text = dot_git.read_text(errors="replace").strip()
    if not text.startswith("gitdir:"):
        return None
    gitdir = (dot_git.parent / text.removeprefix("gitdir:").strip()).resolve()
    commondir_file = gitdir / "commondir"
    if not commondir_file.is_file():
        return None
    common = (gitdir / commondir_file.read_text().strip()).resolve()
    return common.parent if common.name == ".git" else None
