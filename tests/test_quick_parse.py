"""`memlane recall` / `remember` arguments as people type them in Claude Code (`!memlane …`)."""

from __future__ import annotations

import pytest

from memlane.cli.quick import parse


@pytest.mark.parametrize(("argv", "parsed"), [
    (["recall", "-k", "3", "query"], ("recall", "query", None, 3)),
    (["recall", "query", "-k", "3"], ("recall", "query", None, 3)),
    (["recall", "-k", "3", "how", "do", "we", "deploy"], ("recall", "how do we deploy", None, 3)),
    (["recall", "-p", "/repo", "cache", "bust"], ("recall", "cache bust", "/repo", 5)),
    (["remember", "#decision", "use", "uv"], ("remember", "#decision use uv", None, 5)),
    (["recall", "--", "-k", "flag"], ("recall", "-k flag", None, 5)),
    (["recall", "-k", "30", "q"], None),  # out of range: the full CLI explains
    (["recall", "--help"], None),
    (["remember", "-k", "3", "x"], None),  # remember has no -k
])
def test_plain_arguments(argv: list[str], parsed: object) -> None:
    assert parse(argv) == parsed


@pytest.mark.parametrize("argv", [["recall", ""], ["recall", " ", "  "], ["remember", ""]])
def test_a_blank_text_is_refused_with_a_clear_message(argv: list[str],
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        parse(argv)
    assert exit_.value.code == 2 and "needs some words" in capsys.readouterr().err
