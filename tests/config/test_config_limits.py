"""Limits on config text: depth and size are checked before the slow JSON5 parser runs."""

from __future__ import annotations

import pytest

from moltbot.config.store import MAX_DEPTH, json5_depth, parse_text
from moltbot.errors import ConfigError


def test_depth_scan_ignores_strings_and_comments() -> None:
    text = "{a: '[[[[', // {{{{\n b: \"]]]\", /* [[[ */ c: [[1]]}" + " " * 10
    assert json5_depth("{" * 70 + "}" * 70) == MAX_DEPTH + 1  # stops counting past the limit
    assert parse_text(text, "t") == {"a": "[[[[", "b": "]]]", "c": [[1]]}


@pytest.mark.parametrize(
    "text",
    [
        "{a:" * 100 + "1" + "}" * 100,
        '{"a":' * 100 + "1" + "}" * 100,
        "{a: " + "[" * 5000 + "]" * 5000 + "}",
    ],
)
def test_too_deep_is_refused(text: str) -> None:
    with pytest.raises(ConfigError, match="nested more than 64 levels"):
        parse_text(text, "t")


def test_identifier_keys_are_plain_strings() -> None:
    data = parse_text("{abc: {def: 1}}", "t")
    assert [type(k) for k in data] == [str] and [type(k) for k in data["abc"]] == [str]


def test_size_limits() -> None:
    with pytest.raises(ConfigError, match="JSON5 text over"):
        parse_text("{a: '" + "x" * (1024 * 1024 + 10) + "'}", "t")
    with pytest.raises(ConfigError, match="the limit is"):
        parse_text('{"a": "' + "x" * (2 * 1024 * 1024 + 10) + '"}', "t")
    assert parse_text('{"a": "' + "x" * (1024 * 1024 + 10) + '"}', "t")  # plain JSON: fine
