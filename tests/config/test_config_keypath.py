"""Dotted key paths, ${VAR} substitution and secret redaction."""

from __future__ import annotations

from typing import Any

import pytest

from moltbot.config import keypath
from moltbot.config.envsubst import substitute
from moltbot.config.secrets import REDACTED, is_secret_key, redact
from moltbot.errors import ConfigError, NotFoundError, UsageError


@pytest.mark.parametrize(
    ("path", "keys"),
    [
        ("gateway", ["gateway"]),
        ("gateway.auth.token", ["gateway", "auth", "token"]),
        ("agents.list[0].id", ["agents", "list", 0, "id"]),
        ("a[1][2]", ["a", 1, 2]),
        ("browser.profiles.my-work", ["browser", "profiles", "my-work"]),
    ],
)
def test_parse_and_format(path: str, keys: list[Any]) -> None:
    assert keypath.parse(path) == keys
    assert keypath.format_path(keys) == path


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("", "invalid key path '' (use dotted keys like gateway.port)"),
        (".a", "invalid key path '.a' (use dotted keys like gateway.port)"),
        ("a.", "invalid key path 'a.' (use dotted keys like gateway.port)"),
        ("a..b", "invalid key path 'a..b' (use dotted keys like gateway.port)"),
        ("a[x]", "invalid key path 'a[x]' near '['"),
        ("a[1", "invalid key path 'a[1' near '['"),
    ],
)
def test_invalid_paths(path: str, message: str) -> None:
    with pytest.raises(UsageError) as err:
        keypath.parse(path)
    assert err.value.message == message


def test_get() -> None:
    data = {"a": {"b": [10, {"c": None}]}}
    assert keypath.get(data, ["a", "b", 1, "c"]) is None
    assert keypath.get(data, ["a", "b", 0]) == 10
    with pytest.raises(NotFoundError, match=r"^a\.b\[5\] is not set$"):
        keypath.get(data, ["a", "b", 5, "x"])
    with pytest.raises(NotFoundError, match=r"^a\.x is not set$"):
        keypath.get(data, ["a", "x"])


def test_set_creates_parents() -> None:
    data: dict[str, Any] = {}
    keypath.set_(data, keypath.parse("browser.profiles.work.cdpPort"), 18850)
    keypath.set_(data, keypath.parse("agents.list[0].id"), "main")
    keypath.set_(data, keypath.parse("agents.list[1]"), {"id": "ops"})
    keypath.set_(data, keypath.parse("agents.list[0].id"), "home")
    assert data == {
        "browser": {"profiles": {"work": {"cdpPort": 18850}}},
        "agents": {"list": [{"id": "home"}, {"id": "ops"}]},
    }


@pytest.mark.parametrize(
    ("data", "path", "message"),
    [
        ({"a": [1]}, "a[3]", "cannot set a[3]: a has 1 item(s); use an index up to 1 (to append)"),
        (
            {"a": [1]},
            "a[3].b",
            "cannot set a[3].b: a has 1 item(s); use an index up to 1 (to append)",
        ),
        ({"a": [1]}, "a.b", "cannot set a.b: a is an array; use an index like a[0]"),
        ({"a": {}}, "a[0]", "cannot set a[0]: a is an object; use a key like a.name, not [0]"),
    ],
)
def test_set_errors(data: dict[str, Any], path: str, message: str) -> None:
    with pytest.raises(UsageError) as err:
        keypath.set_(data, keypath.parse(path), 1)
    assert err.value.message == message


def test_unset() -> None:
    data = {"a": {"b": 1, "c": [1, 2]}}
    keypath.unset(data, ["a", "c", 0])
    keypath.unset(data, ["a", "b"])
    assert data == {"a": {"c": [2]}}
    with pytest.raises(NotFoundError, match=r"^a\.b is not set$"):
        keypath.unset(data, ["a", "b"])
    with pytest.raises(NotFoundError, match=r"^x is not set$"):
        keypath.unset(data, ["x", "y"])


def test_substitute_everywhere_and_escapes() -> None:
    data = {"a": ["${X}", {"b": "pre-${X}-${Y}"}], "c": "$${X}", "d": "${lower}", "e": 5}
    assert substitute(data, {"X": "1", "Y": "2"}, "f") == {
        "a": ["1", {"b": "pre-1-2"}],
        "c": "${X}",
        "d": "${lower}",
        "e": 5,
    }


def test_substitute_missing() -> None:
    with pytest.raises(ConfigError) as err:
        substitute({"a": [{"b": "${NOPE}"}]}, {}, "/f.json")
    assert err.value.message == '/f.json: missing environment variable "NOPE" referenced at a[0].b'
    assert substitute({"a": "${NOPE}"}, {}, "f", missing="keep") == {"a": "${NOPE}"}


@pytest.mark.parametrize(
    ("key", "secret"),
    [
        ("token", True),
        ("botToken", True),
        ("password", True),
        ("apiKey", True),
        ("api_key", True),
        ("signingSecret", True),
        ("privateKey", True),
        ("credentials", True),
        ("bot-token", True),
        ("maxTokens", False),
        ("tokenFile", False),
        ("port", False),
        ("key", False),
    ],
)
def test_secret_keys(key: str, secret: bool) -> None:
    assert is_secret_key(key) is secret


def test_redact() -> None:
    data = {
        "gateway": {"port": 1, "auth": {"token": "abc", "password": ""}},
        "channels": {"telegram": {"botToken": "${TG_TOKEN}", "accounts": [{"apiKey": "k"}]}},
    }
    assert redact(data) == {
        "gateway": {"port": 1, "auth": {"token": REDACTED, "password": ""}},
        "channels": {"telegram": {"botToken": "${TG_TOKEN}", "accounts": [{"apiKey": REDACTED}]}},
    }
    assert data["gateway"]["auth"]["token"] == "abc"
