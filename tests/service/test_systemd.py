from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest
from systemd_tools import can_dump, exec_time, systemd_parse, verify

from moltbot.config.schema import Config
from moltbot.instance import Invocation, resolve_identity, resolve_instance
from moltbot.instance.setup import setup_instance
from moltbot.service.spec import build_spec
from moltbot.service.systemd import quote_exec_arg, read_unit, render_unit, split_words

needs_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None,
    reason="systemd-analyze not installed (.ci/run installs it)",
)


def make_instance(home: Path, profile: str | None, env: dict[str, str] | None = None):
    env = env or {"HOME": str(home)}
    identity = resolve_identity(Invocation(profile=profile), env, home)
    return setup_instance(identity, env).instance


def odd_interpreter(tmp_path: Path) -> str:
    """A working interpreter whose path has spaces, quotes, % and $."""
    directory = tmp_path / "py dir 'q' 100% $HOME"
    directory.mkdir()
    link = directory / "python x"
    link.symlink_to(sys.executable)
    return str(link)


def write_unit(home: Path, spec) -> Path:  # noqa: ANN001
    unit_dir = home / ".config" / "systemd" / "user"
    unit_dir.mkdir(parents=True, exist_ok=True)
    path = unit_dir / spec.names.systemd_file
    path.write_text(render_unit(spec))
    return path


@needs_analyze
@pytest.mark.parametrize("profile", [None, "rescue", "dev"])
def test_generated_unit_passes_systemd_analyze_verify(
    home: Path, tmp_path: Path, profile: str | None
) -> None:
    instance = make_instance(home, profile)
    spec = build_spec(instance, platform="linux", python=odd_interpreter(tmp_path))
    unit = write_unit(home, spec)
    result = verify(unit, home)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr
    suffix = "" if profile is None else f"-{profile}"
    expected = f"moltbot-gateway{suffix}.service"
    assert unit.name == expected


@needs_analyze
def test_verify_really_checks_our_units(home: Path) -> None:
    """Guard against a verify helper that passes everything."""
    instance = make_instance(home, "rescue")
    spec = build_spec(instance, platform="linux", python="/nonexistent dir/python")
    unit = write_unit(home, spec)
    result = verify(unit, home)
    assert result.returncode != 0
    assert "/nonexistent dir/python" in result.stderr


def test_unit_restart_policy_and_install_section(home: Path) -> None:
    text = render_unit(build_spec(make_instance(home, "rescue"), platform="linux"))
    lines = text.splitlines()
    assert "Restart=on-failure" in lines
    assert "RestartPreventExitStatus=78 4" in lines
    assert "StartLimitIntervalSec=300" in lines and "StartLimitBurst=5" in lines
    assert "RestartSec=5" in lines
    assert "KillMode=mixed" in lines
    assert "WantedBy=default.target" in lines
    # the rate limit belongs to [Unit]; systemd ignores it in [Service] on newer versions
    unit_section = text.split("[Service]")[0]
    assert "StartLimitBurst" in unit_section


def test_unit_embeds_identity_and_no_secret(home: Path) -> None:
    instance = make_instance(home, "rescue")
    token = Config.model_validate(
        __import__("json").loads(instance.config_path.read_text())
    ).gateway.auth.token
    assert token
    spec = build_spec(instance, platform="linux")
    text = render_unit(spec)
    assert token not in text
    assert "TOKEN=" not in text and "PASSWORD=" not in text
    parsed = read_unit(write_unit(home, spec))
    assert parsed is not None
    assert parsed.program == (
        spec.interpreter,
        "-m",
        "moltbot",
        "gateway",
        "--port",
        str(instance.port),
    )
    env = parsed.environment
    assert env["CLAWDBOT_PROFILE"] == "rescue"
    assert env["CLAWDBOT_STATE_DIR"] == str(instance.state_dir)
    assert env["CLAWDBOT_CONFIG_PATH"] == str(instance.config_path)
    assert env["CLAWDBOT_GATEWAY_PORT"] == str(instance.port)
    assert env["CLAWDBOT_SERVICE_MARKER"] == "moltbot"
    assert env["CLAWDBOT_SERVICE_KIND"] == "gateway"
    assert env["CLAWDBOT_SERVICE_VERSION"]
    assert os.path.isabs(parsed.program[0])


@pytest.mark.parametrize(
    "value",
    [
        "plain",
        "with space",
        'dq"uote',
        "back\\slash",
        "100%",
        "$HOME",
        "${X}",
        "tab\there",
        "semi;colon",
        ";",
        "",
        "ünïcødé",
        "new\nline",
        "'single'",
    ],
)
def test_exec_arg_quoting_round_trips(value: str) -> None:
    quoted = quote_exec_arg(value)
    words = [w.replace("$$", "$") for w in split_words(quoted)]
    assert words == [value]


@pytest.mark.skipif(not can_dump(), reason="cannot run systemd --test here")
def test_systemd_itself_parses_exec_start_and_environment(home: Path, tmp_path: Path) -> None:
    """The unit as systemd parses it: argv and environment are exactly the plan."""
    instance = make_instance(home, "rescue")
    python = odd_interpreter(tmp_path)
    spec = build_spec(instance, platform="linux", python=python)
    unit = write_unit(home, spec)
    argv, environment = systemd_parse(unit)
    assert exec_time(argv, environment) == list(spec.program)
    for key, value in spec.environment:
        assert environment[key] == value, key
    assert set(environment) == {k for k, _ in spec.environment}
    # our own reader agrees with systemd
    ours = read_unit(unit)
    assert ours is not None and list(ours.program) == list(spec.program)
    assert ours.environment == dict(spec.environment)


def test_env_only_instance_keeps_its_state_dir(home: Path) -> None:
    """An instance given by CLAWDBOT_STATE_DIR (no profile) embeds exactly that state dir."""
    state = home / "custom state"
    env = {"HOME": str(home), "CLAWDBOT_STATE_DIR": str(state)}
    identity = resolve_identity(Invocation(), env, home)
    instance = resolve_instance(identity, Config(), env)
    spec = build_spec(instance, platform="linux")
    assert spec.env["CLAWDBOT_STATE_DIR"] == str(state)
    assert "CLAWDBOT_STATE_DIR=" in spec.cli and spec.cli.endswith("moltbot")
