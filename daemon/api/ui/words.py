"""A memory's history in words: one sentence per event from the log (``domain/history.py``
rows), other memories named as links to their pages. Every value is escaped."""

from __future__ import annotations

from typing import Any

from markupsafe import Markup, escape


def memory_link(memory_id: int) -> Markup:
    return Markup('<a href="/ui/memories/{0}">#{0}</a>').format(memory_id)


def _links(ids: Any) -> Markup:
    return Markup(", ").join(memory_link(int(i)) for i in ids)


def describe(event: dict[str, Any], memory_id: int) -> Markup:
    """What ``event`` did to memory ``memory_id``, in a sentence."""
    kind = event.get("type")
    if kind == "stored":
        return Markup("stored from {} as {} in {}").format(
            event.get("source"), event.get("kind"), event.get("project"))
    if kind == "embedded":
        return Markup("embedded by {} ({} dimensions)").format(event["model"], event["dims"])
    if kind == "linked":
        other = event["b"] if event["a"] == memory_id else event["a"]
        return Markup("linked to {} (similarity {:.3f})").format(memory_link(other),
                                                                 event["similarity"])
    if kind == "clustered":
        others = [m for m in event["members"] if m != memory_id]
        return Markup("clustered with {} (cohesion {:.3f})").format(_links(others),
                                                                    event["cohesion"])
    if kind == "consolidated":
        if event["id"] == memory_id:
            return Markup("consolidated from {} by {}").format(_links(event["sources"]),
                                                             event["model"])
        return Markup("consolidated into {}").format(memory_link(event["id"]))
    if kind == "consolidation_rejected":
        others = [m for m in event["members"] if m != memory_id]
        return Markup("merge with {} rejected by the user").format(_links(others))
    if kind == "pinned":
        return Markup("pinned: it never expires" if event["pinned"] else "unpinned: it ages again")
    return _state_change(kind, event)


def _state_change(kind: Any, event: dict[str, Any]) -> Markup:
    sentences = {
        "routed": "routed to {target}:{section} ({action}: {verdict})",
        "recalled": "recalled/shown for “{query}” (rank {rank})",
        "reprieved": "reprieved ({count}): {reason}",
        "promoted": "promoted to proven: {reason}",
        "expired": "expired because {reason}",
        "restored": "restored by the user",
        "forgotten": "forgotten: its text was purged",
        "reinforced": "stored again (from {source})",
    }
    template = sentences.get(str(kind))
    if template is None:
        return escape(f"{kind}")
    return escape(template.format_map({k: v for k, v in event.items()}))
