"""`moltbot config path|get|set|unset|validate` through the real CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from moltbot.config import keypath

REDACTED = "__MOLTBOT_REDACTED__"


@pytest.fixture
def config(home: Path) -> Path:
    """The default instance's config path (the file does not exist yet)."""
    return home / ".clawdbot" / "moltbot.json"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def ok(result: Any) -> str:
    assert result.returncode == 0, result.stderr
    return str(result.stdout)


# -- path --------------------------------------------------------------------------------


def test_path(run_moltbot: Any, home: Path, config: Path) -> None:
    assert ok(run_moltbot("config", "path")) == f"{config}\n"
    assert json.loads(ok(run_moltbot("--profile", "rescue", "config", "path", "--json"))) == {
        "path": str(home / ".clawdbot-rescue" / "moltbot.json"),
        "exists": False,
        "source": "flag",
    }
    env = {
        "CLAWDBOT_CONFIG_PATH": "~/.clawdbot/main.json",
        "CLAWDBOT_STATE_DIR": "~/.clawdbot-main",
    }
    data = json.loads(ok(run_moltbot("config", "path", "--json", env=env)))
    assert (data["path"], data["source"]) == (str(home / ".clawdbot" / "main.json"), "env")


# -- get -----------------------------------------------------------------------------------

HAND = """// the main bot
{
  gateway: {
    port: 18789, // base
    auth: { token: "s3cret-token" },
    remote: { password: "${REMOTE_PW}" },
    bind: "loopback",
  },
  channels: { telegram: { botToken: "123:abc", enabled: true } },
  agents: { list: [{ id: "main", default: true }] },
}
"""


def test_get_values(run_moltbot: Any, config: Path) -> None:
    write(config, HAND)
    assert ok(run_moltbot("config", "get", "gateway.port")) == "18789\n"
    assert ok(run_moltbot("config", "get", "gateway.bind")) == "loopback\n"
    assert ok(run_moltbot("config", "get", "agents.list[0].default")) == "true\n"
    assert ok(run_moltbot("config", "get", "agents.list[0].id")) == "main\n"
    assert json.loads(ok(run_moltbot("config", "get", "agents.list"))) == [
        {"id": "main", "default": True}
    ]
    assert json.loads(ok(run_moltbot("config", "get", "gateway.port", "--json"))) == {
        "key": "gateway.port",
        "value": 18789,
    }


def test_get_redacts_secrets_unless_asked(run_moltbot: Any, config: Path) -> None:
    write(config, HAND)
    assert ok(run_moltbot("config", "get", "gateway.auth.token")) == f"{REDACTED}\n"
    assert ok(run_moltbot("config", "get", "gateway.auth.token", "--show-secrets")) == (
        "s3cret-token\n"
    )
    whole = json.loads(ok(run_moltbot("config", "get")))
    assert whole["gateway"]["auth"]["token"] == REDACTED
    assert whole["channels"]["telegram"] == {"botToken": REDACTED, "enabled": True}
    assert whole["gateway"]["remote"]["password"] == "${REMOTE_PW}"  # a reference, not a secret
    assert "s3cret" not in ok(run_moltbot("config", "get", "gateway", "--json"))
    shown = json.loads(ok(run_moltbot("config", "get", "--show-secrets")))
    assert shown["channels"]["telegram"]["botToken"] == "123:abc"


def test_get_resolved(run_moltbot: Any, config: Path) -> None:
    write(config, HAND)
    env = {"REMOTE_PW": "pw-from-env"}
    assert ok(run_moltbot("config", "get", "gateway.remote.password", env=env)) == (
        "${REMOTE_PW}\n"
    )
    assert ok(run_moltbot("config", "get", "gateway.remote.password", "--resolved", env=env)) == (
        f"{REDACTED}\n"
    )
    assert (
        ok(
            run_moltbot(
                "config", "get", "gateway.remote.password", "--resolved", "--show-secrets", env=env
            )
        )
        == "pw-from-env\n"
    )
    missing = run_moltbot("config", "get", "gateway.port", "--resolved")
    assert missing.returncode == 78
    assert missing.stderr.startswith(
        f'error: {config}: missing environment variable "REMOTE_PW" referenced at '
        "gateway.remote.password\n"
    )


def test_get_unset_key_exits_9(run_moltbot: Any, config: Path) -> None:
    write(config, HAND)
    result = run_moltbot("config", "get", "gateway.mode")
    assert (result.returncode, result.stdout, result.stderr) == (
        9,
        "",
        "error: gateway.mode is not set\n",
    )
    assert run_moltbot("config", "get", "nothing.here").stderr == "error: nothing is not set\n"


def test_get_on_a_missing_file(run_moltbot: Any) -> None:
    assert ok(run_moltbot("config", "get")) == "{}\n"
    assert run_moltbot("config", "get", "gateway.port").returncode == 9


def test_get_works_on_an_invalid_config_but_not_a_broken_one(
    run_moltbot: Any, config: Path
) -> None:
    write(config, '{gateway: {port: "high"}}')
    assert ok(run_moltbot("config", "get", "gateway.port")) == "high\n"
    write(config, "{gateway: {port: 1,,}}")
    result = run_moltbot("config", "get", "gateway.port")
    assert result.returncode == 78
    assert result.stderr.startswith(
        f"error: config syntax error at {config}:1:19: unexpected ',' (two commas in a row)\n"
    )


# -- set -----------------------------------------------------------------------------------


def test_set_values_of_every_type(run_moltbot: Any, config: Path) -> None:
    cases = [
        ("gateway.port", "19789", 19789),
        ("gateway.bind", "lan", "lan"),
        ("browser.headless", "true", True),
        ("browser.profiles.work", "{cdpPort: 18850}", {"cdpPort": 18850}),
        ("agents.list[0]", '{id: "main"}', {"id": "main", "name": "Main bot"}),
        ("agents.list[0].name", "Main bot", "Main bot"),
        ("gateway.customBindHost", '"10.0.0.1"', "10.0.0.1"),
        ("gateway.auth.token", "${GATEWAY_TOKEN}", "${GATEWAY_TOKEN}"),
    ]
    for key, text, _ in cases:
        ok(run_moltbot("config", "set", key, text))
    data = json.loads(config.read_text())
    for key, _, value in cases:
        assert keypath.get(data, keypath.parse(key)) == value
    assert data["agents"]["list"] == [{"id": "main", "name": "Main bot"}]
    assert set(data["meta"]) == {"lastTouchedVersion", "lastTouchedAt"}


def test_set_output(run_moltbot: Any, config: Path) -> None:
    assert ok(run_moltbot("config", "set", "gateway.port", "19789")) == (
        f"Updated gateway.port in {config}\n"
    )
    out = json.loads(ok(run_moltbot("config", "set", "gateway.auth.token", "abc", "--json")))
    assert (out["ok"], out["key"], out["value"], out["path"]) == (
        True,
        "gateway.auth.token",
        REDACTED,
        str(config),
    )
    assert len(out["hash"]) == 64
    out = json.loads(ok(run_moltbot("config", "set", "gateway.auth.token", "${T}", "--json")))
    assert out["value"] == "${T}"


def test_set_keeps_the_previous_file_as_bak(run_moltbot: Any, config: Path) -> None:
    ok(run_moltbot("config", "set", "gateway.port", "19789"))
    first = config.read_text()
    ok(run_moltbot("config", "set", "gateway.port", "19790"))
    assert config.with_name("moltbot.json.bak").read_text() == first


def test_set_invalid_value_is_refused_and_nothing_changes(run_moltbot: Any, config: Path) -> None:
    write(config, HAND)
    result = run_moltbot("config", "set", "gateway.port", "99999")
    assert result.returncode == 78
    assert result.stderr == (
        f"error: refused: the result would be invalid at {config}:\n"
        "  - gateway.port: expected a value less than or equal to 65535 (got 99999)\n"
        f"{config} is unchanged.\n"
    )
    assert config.read_text() == HAND
    assert not config.with_name("moltbot.json.bak").exists()
    result = run_moltbot("config", "set", "gateway.bind", "everywhere")
    assert result.returncode == 78
    assert "gateway.bind: expected 'loopback', 'lan', 'tailnet', 'auto' or 'custom'" in (
        result.stderr
    )


def test_set_unknown_key_is_refused_unless_forced(run_moltbot: Any, config: Path) -> None:
    write(config, HAND)
    result = run_moltbot("config", "set", "gateway.prot", "1")
    assert result.returncode == 2
    assert result.stderr.startswith(
        "error: unknown key gateway.prot (did you mean 'port' or 'remote'?); "
        f"{config} is unchanged\n"
    )
    assert config.read_text() == HAND
    result = run_moltbot("config", "set", "gatway.port", "1")
    assert "unknown key gatway (did you mean 'gateway'?)" in result.stderr
    # forced, it is written and later reads warn about it
    result = run_moltbot("config", "set", "gateway.prot", "1", "--force")
    assert result.returncode == 0
    assert result.stderr == f"warning: {config}: unknown key gateway.prot (ignored)\n"
    result = run_moltbot("config", "set", "gateway.prto", "1", "--strict", "--force")
    assert result.returncode == 78
    assert result.stderr.startswith(
        f"error: refused: the result would be invalid at {config} (strict: unknown keys are "
        "errors):\n  - gateway.prot: unknown key\n  - gateway.prto: unknown key\n"
    )
    assert "prto" not in config.read_text()


def test_set_refuses_what_fails_later(run_moltbot: Any, config: Path, tmp_path: Path) -> None:
    """A model reference the agent cannot resolve, and documented keys that must be known."""
    write(config, HAND)
    result = run_moltbot("config", "set", "agents.defaults.model", "gpt4")
    assert result.returncode == 78
    assert 'model "gpt4" is not a "provider/model" reference' in result.stderr
    assert f"{config} is unchanged." in result.stderr
    assert config.read_text() == HAND
    for key, value in (
        ("agents.defaults.model", "openai/gpt-4o"),
        ("messages.groupChat.mentionPatterns", '["@molty"]'),
        ("agents.defaults.models", '{"openai/gpt-4o": {alias: "fast"}}'),
        ("agents.defaults.model", "fast"),
    ):
        result = run_moltbot("config", "set", key, value)
        assert (result.returncode, result.stderr) == (0, ""), (key, result.stderr)


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("gateway..port", "invalid key path 'gateway..port' (use dotted keys like gateway.port)"),
        (
            "agents.list[3].id",
            "cannot set agents.list[3].id: agents.list has 0 item(s); "
            "use an index up to 0 (to append)",
        ),
    ],
)
def test_set_bad_key_path_exits_2(run_moltbot: Any, config: Path, key: str, message: str) -> None:
    result = run_moltbot("config", "set", key, "1")
    assert (result.returncode, result.stderr) == (2, f"error: {message}\n")
    assert not config.exists()


def test_set_and_unset_keep_comments_order_and_references(run_moltbot: Any, config: Path) -> None:
    write(config, HAND)
    ok(run_moltbot("config", "set", "gateway.port", "19789"))
    ok(run_moltbot("config", "set", "gateway.mode", "local"))
    ok(run_moltbot("config", "set", "channels.telegram.enabled", "false"))
    ok(run_moltbot("config", "unset", "gateway.bind"))
    text = config.read_text()
    assert text.startswith(
        "// the main bot\n{\n  gateway: {\n    port: 19789, // base\n"
        '    auth: { token: "s3cret-token" },\n'
        '    remote: { password: "${REMOTE_PW}" },\n'
        '    mode: "local",\n  },\n'
        '  channels: { telegram: { botToken: "123:abc", enabled: false } },\n'
        '  agents: { list: [{ id: "main", default: true }] },\n  meta: {\n'
    )


# -- unset ---------------------------------------------------------------------------------


def test_unset(run_moltbot: Any, config: Path) -> None:
    write(config, HAND)
    assert ok(run_moltbot("config", "unset", "channels.telegram")) == (
        f"Removed channels.telegram from {config}\n"
    )
    assert json.loads(ok(run_moltbot("config", "get", "channels"))) == {}
    out = json.loads(ok(run_moltbot("config", "unset", "agents.list[0]", "--json")))
    assert (out["ok"], out["key"]) == (True, "agents.list[0]")
    result = run_moltbot("config", "unset", "channels.telegram")
    assert (result.returncode, result.stderr) == (9, "error: channels.telegram is not set\n")


# -- validate ------------------------------------------------------------------------------


def test_validate(run_moltbot: Any, config: Path) -> None:
    assert ok(run_moltbot("config", "validate")) == f"{config}: missing (defaults apply)\n"
    write(config, HAND)
    env = {"REMOTE_PW": "pw"}
    assert ok(run_moltbot("config", "validate", env=env)) == f"{config}: valid\n"
    out = json.loads(ok(run_moltbot("config", "validate", "--json", env=env)))
    assert (out["valid"], out["exists"], out["warnings"]) == (True, True, [])


def test_validate_errors(run_moltbot: Any, config: Path) -> None:
    write(config, "{\n  gateway: {\n    port: 18789\n    bind: 'lan'\n  }\n}\n")
    result = run_moltbot("config", "validate")
    assert (result.returncode, result.stdout) == (78, "")
    assert result.stderr == (
        f"error: config syntax error at {config}:4:5: unexpected 'bind', expected ',' or '}}'\n"
        "hint: fix the file, then run `moltbot config validate`\n"
    )
    result = run_moltbot("config", "validate", "--json")
    assert result.returncode == 78
    assert json.loads(result.stdout) == {
        "valid": False,
        "path": str(config),
        "error": f"config syntax error at {config}:4:5: unexpected 'bind', expected ',' or '}}'",
    }


def test_validate_missing_variable(run_moltbot: Any, config: Path) -> None:
    write(config, HAND)
    result = run_moltbot("config", "validate", env={"REMOTE_PW": None})
    assert result.returncode == 78
    assert result.stderr == (
        f'error: {config}: missing environment variable "REMOTE_PW" referenced at '
        "gateway.remote.password\n"
        "hint: export REMOTE_PW=... or replace the reference in the config file\n"
    )


def test_validate_unknown_keys(run_moltbot: Any, config: Path) -> None:
    write(config, '{"gatewy": {}}')
    result = run_moltbot("config", "validate")
    assert (result.returncode, result.stdout) == (0, f"{config}: valid\n")
    assert result.stderr == f"warning: {config}: unknown key gatewy (ignored)\n"
    out = json.loads(ok(run_moltbot("config", "validate", "--json")))
    assert out["warnings"] == [f"{config}: unknown key gatewy (ignored)"]
    strict = run_moltbot("config", "validate", "--strict")
    assert strict.returncode == 78
    assert "  - gatewy: unknown key" in strict.stderr
    write(config, '{"strict": true, "gatewy": {}}')
    assert run_moltbot("config", "validate").returncode == 78


def test_profiles_have_separate_configs(run_moltbot: Any, home: Path) -> None:
    ok(run_moltbot("--profile", "main", "config", "set", "gateway.port", "18789"))
    ok(run_moltbot("--profile", "rescue", "config", "set", "gateway.port", "19789"))
    assert ok(run_moltbot("--profile", "main", "config", "get", "gateway.port")) == "18789\n"
    assert ok(run_moltbot("--profile", "rescue", "config", "get", "gateway.port")) == "19789\n"
    assert json.loads((home / ".clawdbot-rescue" / "moltbot.json").read_text())["gateway"] == {
        "port": 19789
    }


def test_help_has_examples(run_moltbot: Any) -> None:
    for command in ("path", "get", "set", "unset", "validate"):
        result = run_moltbot("config", command, "--help")
        assert result.returncode == 0
        assert "moltbot" in result.stdout.split("Example")[1]
