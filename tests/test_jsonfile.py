"""Claude Code's settings files keep their look when memlane edits them."""

from __future__ import annotations

import pytest

from memlane.cli.jsonfile import parse, render


@pytest.mark.parametrize("original", [
    b'{\n  "model": "opus",\n  "env": {\n    "A": "1"\n  }\n}\n',
    b'{\n\t"model": "opus",\n\t"env": {\n\t\t"A": "1"\n\t}\n}',
    b'{\r\n    "model": "opus",\r\n    "env": {\r\n        "A": "1"\r\n    }\r\n}\r\n',
    b'{"model":"opus","env":{"A":"1"}}',
    b'{"model": "opus", "env": {"A": "1"}}\n',
    b'{\n  "statusLine": "caf\\u00e9"\n}\n',
    '{\n  "statusLine": "café"\n}\n'.encode(),
])
def test_an_unchanged_document_renders_byte_for_byte(original: bytes) -> None:
    document, layout = parse(original)
    assert render(document, layout) == original
