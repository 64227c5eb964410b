"""Global options (--profile, --dev, --help, --version) and identity from the environment."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from moltbot import __version__


def path_of(run_moltbot: Any, *args: str, env: dict[str, str] | None = None) -> str:
    result = run_moltbot(*args, "config", "path", env=env)
    assert result.returncode == 0, result.stderr
    return str(result.stdout.strip())


def test_help_lists_commands_with_examples(run_moltbot: Any) -> None:
    result = run_moltbot("--help")
    assert result.returncode == 0
    for word in (
        "--profile NAME",
        "--dev",
        "setup",
        "config",
        "Examples:",
        "moltbot --profile main setup",
    ):
        assert word in result.stdout
    assert run_moltbot("-h").stdout == result.stdout


def test_help_imports_no_command_and_no_model(home: Path) -> None:
    code = (
        "import sys\nfrom moltbot.cli.main import main\ntry:\n    main()\n"
        "except SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pydantic', 'aiohttp') "
        "or m.startswith('moltbot.validation') "
        "or m.startswith('moltbot.cli.') and m not in ('moltbot.cli.main', 'moltbot.cli.lazy')"
        "), file=sys.stderr)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, "--help"], capture_output=True, text=True, check=False
    )
    assert result.stderr.strip() == "[]"


def test_version(run_moltbot: Any) -> None:
    for flag in ("--version", "-V"):
        assert run_moltbot(flag).stdout == f"moltbot, version {__version__}\n"


def test_both_command_names_are_installed() -> None:
    scripts = {
        ep.name: ep.value
        for ep in metadata.entry_points(group="console_scripts")
        if ep.value.startswith("moltbot.")
    }
    assert scripts["moltbot"] == scripts["clawdbot"] == "moltbot.cli.main:main"


def test_profile_selects_the_instance(run_moltbot: Any, home: Path) -> None:
    assert path_of(run_moltbot) == str(home / ".clawdbot" / "moltbot.json")
    assert path_of(run_moltbot, "--profile", "rescue") == str(
        home / ".clawdbot-rescue" / "moltbot.json"
    )
    assert path_of(run_moltbot, "--profile=work") == str(home / ".clawdbot-work" / "moltbot.json")
    assert path_of(run_moltbot, "--profile", "DEFAULT") == str(home / ".clawdbot" / "moltbot.json")
    assert path_of(run_moltbot, "--dev") == str(home / ".clawdbot-dev" / "moltbot.json")
    assert path_of(run_moltbot, "--dev", "--profile", "dev") == str(
        home / ".clawdbot-dev" / "moltbot.json"
    )


@pytest.mark.parametrize("name", ["a b", "-x", "a/b", "x" * 65])
def test_invalid_profile_exits_2(run_moltbot: Any, home: Path, name: str) -> None:
    result = run_moltbot("--profile", name, "config", "path")
    assert result.returncode == 2
    assert result.stdout == ""
    assert (
        f"Invalid value for '--profile': invalid profile {name!r} from --profile: use "
        "letters, digits, '_' and '-' only"
    ) in result.stderr
    assert list(home.iterdir()) == []


def test_dev_with_another_profile_exits_2(run_moltbot: Any) -> None:
    result = run_moltbot("--dev", "--profile", "rescue", "config", "path")
    assert result.returncode == 2
    assert "--dev cannot be combined with --profile other than dev" in result.stderr


def test_unknown_command_exits_2(run_moltbot: Any) -> None:
    result = run_moltbot("frobnicate")
    assert result.returncode == 2
    assert "No such command 'frobnicate'" in result.stderr


# -- identity from the environment ---------------------------------------------------------


def test_env_prefix_precedence(run_moltbot: Any, home: Path) -> None:
    env = {"MOLTBOT_PROFILE": "m", "CLAWDBOT_PROFILE": "c", "OPENCLAW_PROFILE": "o"}
    assert path_of(run_moltbot, env=env) == str(home / ".clawdbot-m" / "moltbot.json")
    env = {"CLAWDBOT_PROFILE": "c", "OPENCLAW_PROFILE": "o"}
    assert path_of(run_moltbot, env=env) == str(home / ".clawdbot-c" / "moltbot.json")
    env = {"OPENCLAW_STATE_DIR": str(home / "o"), "OPENCLAW_CONFIG_PATH": str(home / "o.json")}
    assert path_of(run_moltbot, env=env) == str(home / "o.json")


def test_seed_manual_env_example(run_moltbot: Any, home: Path) -> None:
    env = {
        "CLAWDBOT_CONFIG_PATH": "~/.clawdbot/main.json",
        "CLAWDBOT_STATE_DIR": "~/.clawdbot-main",
    }
    result = run_moltbot("config", "path", "--json", env=env)
    assert result.returncode == 0 and result.stderr == ""
    assert json.loads(result.stdout) == {
        "path": str(home / ".clawdbot" / "main.json"),
        "exists": False,
        "source": "env",
    }


def test_profile_overrides_inherited_identity_with_one_warning_line(
    run_moltbot: Any, home: Path
) -> None:
    env = {
        "CLAWDBOT_STATE_DIR": str(home / ".clawdbot-main"),
        "CLAWDBOT_GATEWAY_PORT": "18789",
        "CLAWDBOT_PROFILE": "main",
    }
    result = run_moltbot("--profile", "rescue", "config", "path", env=env)
    assert result.returncode == 0
    assert result.stdout == f"{home}/.clawdbot-rescue/moltbot.json\n"
    assert result.stderr == (
        f"warning: --profile rescue overrides inherited CLAWDBOT_PROFILE=main, "
        f"CLAWDBOT_STATE_DIR={home}/.clawdbot-main, CLAWDBOT_GATEWAY_PORT=18789\n"
    )
    # once per command, even when the command resolves the instance twice
    result = run_moltbot("--profile", "rescue", "setup", "--json", env=env)
    assert result.returncode == 0, result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert json.loads(result.stdout)["stateDir"] == str(home / ".clawdbot-rescue")


def test_agreeing_env_gives_no_warning(run_moltbot: Any, home: Path) -> None:
    env = {"CLAWDBOT_STATE_DIR": str(home / ".clawdbot-rescue"), "CLAWDBOT_PROFILE": "rescue"}
    result = run_moltbot("--profile", "rescue", "config", "path", env=env)
    assert (result.returncode, result.stderr) == (0, "")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"CLAWDBOT_PROFILE": "no good"},
            "error: invalid profile 'no good' from CLAWDBOT_PROFILE: use letters, digits, "
            "'_' and '-' only (at most 64 characters, starting with a letter or digit)\n",
        ),
        (
            {"MOLTBOT_GATEWAY_PORT": "high"},
            "error: MOLTBOT_GATEWAY_PORT='high' is not a port number\n",
        ),
        (
            {"CLAWDBOT_GATEWAY_PORT": "65536"},
            "error: CLAWDBOT_GATEWAY_PORT=65536 is outside 1..65535\n",
        ),
    ],
)
def test_bad_identity_env_exits_2(run_moltbot: Any, env: dict[str, str], message: str) -> None:
    result = run_moltbot("config", "path", env=env)
    assert (result.returncode, result.stdout, result.stderr) == (2, "", message)


def test_profile_flag_ignores_a_bad_inherited_port(run_moltbot: Any, home: Path) -> None:
    result = run_moltbot("--profile", "x", "config", "path", env={"CLAWDBOT_GATEWAY_PORT": "high"})
    assert result.returncode == 0
    assert "overrides inherited CLAWDBOT_GATEWAY_PORT=high" in result.stderr


def test_no_color_is_accepted(run_moltbot: Any, home: Path) -> None:
    assert path_of(run_moltbot, "--no-color") == str(home / ".clawdbot" / "moltbot.json")
