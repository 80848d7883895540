"""A store request loses its secrets before it reaches the writer: text, tags, idempotency key."""

from __future__ import annotations

from memlane.daemon.domain.identifiers import identifier_key
from memlane.daemon.service.memories import to_store_request
from memlane.daemon.service.requests import StoreBody

KEY = identifier_key("the installation's token")
TOKEN = "ghp_" + "Zx9LmQ7vTz4KwB8nYc2R" * 2  # a fake of the right shape


def test_text_and_tags_are_redacted_and_counted() -> None:
    """A secret in a tag becomes a marker as in the text, and both count as redactions."""
    request = to_store_request(
        StoreBody(text=f"deploy uses {TOKEN}", tags=["ci", "Pwd=Quasar4800&QjqK"]), key=KEY)
    assert TOKEN not in request.text and "Quasar4800&QjqK" not in "".join(request.tags)
    assert request.tags[0] == "ci"
    assert request.redactions == 2


def test_an_idempotency_key_with_a_secret_keeps_equality_but_not_the_secret() -> None:
    """The same key hashes the same twice; another key differs; a plain key is kept."""
    def stored_key(idempotency_key: str) -> str | None:
        body = StoreBody(text="note", idempotency_key=idempotency_key)
        return to_store_request(body, key=KEY).idempotency_key

    first, again = stored_key(f"s1:{TOKEN}"), stored_key(f"s1:{TOKEN}")
    assert first == again and first is not None and TOKEN not in first
    assert stored_key(f"s2:{TOKEN}") != first
    assert stored_key("s1:UserPromptSubmit:3") == "s1:UserPromptSubmit:3"
