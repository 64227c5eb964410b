"""The resolver: profile, paths, ports and names from flags × environment × config."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

from moltbot.config.schema import Config
from moltbot.errors import UsageError
from moltbot.instance import ports
from moltbot.instance.resolve import (
    Invocation,
    profile_from_state_dir,
    resolve_identity,
    resolve_instance,
    validate_profile,
)


def resolve(
    home: Path,
    invocation: Invocation | None = None,
    env: dict[str, str] | None = None,
    config: dict[str, Any] | None = None,
):
    invocation = invocation or Invocation()
    identity = resolve_identity(invocation, env or {}, home)
    return resolve_instance(identity, Config.model_validate(config or {}), env or {}, invocation)


# -- the matrix ----------------------------------------------------------------------------

FLAGS = {
    "none": Invocation(),
    "--profile rescue": Invocation(profile="rescue"),
    "--dev": Invocation(dev=True),
    "--port 30000": Invocation(port=30000),
    "--profile rescue --port 30000": Invocation(profile="rescue", port=30000),
}
ENVS = {
    "none": {},
    "PROFILE=work": {"CLAWDBOT_PROFILE": "work"},
    "STATE_DIR=~/.clawdbot-main": {"CLAWDBOT_STATE_DIR": "~/.clawdbot-main"},
    "GATEWAY_PORT=25000": {"CLAWDBOT_GATEWAY_PORT": "25000"},
    "all": {
        "CLAWDBOT_PROFILE": "work",
        "CLAWDBOT_STATE_DIR": "~/.clawdbot-main",
        "CLAWDBOT_CONFIG_PATH": "~/.clawdbot/main.json",
        "CLAWDBOT_GATEWAY_PORT": "25000",
    },
}
CONFIGS = {
    "none": {},
    "port 21000": {"gateway": {"port": 21000}},
    "port + workspace": {"gateway": {"port": 21000}, "agents": {"defaults": {"workspace": "~/ws"}}},
}


def expected(home: Path, invocation: Invocation, env: dict[str, str], config: dict[str, Any]):
    """The rules of DESIGN §2-3, written out independently of the resolver."""
    flag_profile = "dev" if invocation.dev else invocation.profile
    if flag_profile:
        profile, state = flag_profile, home / f".clawdbot-{flag_profile}"
        config_path, env_port = state / "moltbot.json", None
    else:
        state_env = env.get("CLAWDBOT_STATE_DIR", "").replace("~", str(home))
        profile = env.get("CLAWDBOT_PROFILE") or (
            Path(state_env).name.removeprefix(".clawdbot-") if state_env else "default"
        )
        if state_env:
            state = Path(state_env)
        else:
            state = home / ".clawdbot" if profile == "default" else home / f".clawdbot-{profile}"
        config_env = env.get("CLAWDBOT_CONFIG_PATH", "").replace("~", str(home))
        config_path = Path(config_env) if config_env else state / "moltbot.json"
        env_port = int(env["CLAWDBOT_GATEWAY_PORT"]) if "CLAWDBOT_GATEWAY_PORT" in env else None
    config_port = config.get("gateway", {}).get("port")
    port = invocation.port or env_port or config_port or ports.profile_default_port(profile)
    workspace_value = config.get("agents", {}).get("defaults", {}).get("workspace")
    if workspace_value:
        workspace = Path(workspace_value.replace("~", str(home)))
    else:
        workspace = home / "clawd" if profile == "default" else home / f"clawd-{profile}"
    return profile, state, config_path, port, workspace


@pytest.mark.parametrize(
    ("flag", "env_name", "config_name"), list(itertools.product(FLAGS, ENVS, CONFIGS))
)
def test_resolver_matrix(home: Path, flag: str, env_name: str, config_name: str) -> None:
    invocation, env, config = FLAGS[flag], ENVS[env_name], CONFIGS[config_name]
    instance = resolve(home, invocation, env, config)
    profile, state, config_path, port, workspace = expected(home, invocation, env, config)
    assert instance.profile == profile
    assert instance.state_dir == state
    assert instance.config_path == config_path
    assert instance.port == port
    assert instance.workspace == workspace
    # Everything else follows from these, always the same way.
    assert instance.control_port == port + 2
    assert instance.canvas_port == port + 4
    assert instance.cdp_ports == range(port + 2 + 9, port + 2 + 108 + 1)
    assert instance.sessions_dir() == state / "agents" / "main" / "sessions"
    assert instance.credentials_dir == state / "credentials"
    assert instance.logs_dir == state / "logs"
    assert instance.browser_root == state / "browser"
    assert instance.canvas_root == workspace / "canvas"
    assert instance.lock_file == state / "gateway.lock"
    assert instance.runtime_file == state / "gateway.json"
    suffix = "" if profile == "default" else f"-{profile}"
    assert instance.service.systemd_unit == f"moltbot-gateway{suffix}"


def test_matrix_sources(home: Path) -> None:
    flag = resolve(home, Invocation(profile="rescue", port=30000), ENVS["all"], CONFIGS["none"])
    assert (flag.identity.profile_source, flag.identity.state_dir_source, flag.port_source) == (
        "flag",
        "flag",
        "flag",
    )
    env = resolve(home, Invocation(), ENVS["all"], CONFIGS["port + workspace"])
    assert (env.identity.profile_source, env.identity.config_source, env.port_source) == (
        "env",
        "env",
        "env",
    )
    assert env.workspace_source == "config"
    inferred = resolve(home, Invocation(), ENVS["STATE_DIR=~/.clawdbot-main"], {})
    assert inferred.identity.profile_source == "state-dir"
    assert inferred.port_source == "default"
    configured = resolve(home, Invocation(), {}, CONFIGS["port 21000"])
    assert configured.port_source == "config"


# -- the seed's examples ---------------------------------------------------------------------


def test_seed_manual_env_example(home: Path) -> None:
    """CLAWDBOT_CONFIG_PATH=~/.clawdbot/main.json CLAWDBOT_STATE_DIR=~/.clawdbot-main
    moltbot gateway --port 18789 — no profile given."""
    env = {
        "CLAWDBOT_CONFIG_PATH": "~/.clawdbot/main.json",
        "CLAWDBOT_STATE_DIR": "~/.clawdbot-main",
    }
    main = resolve(home, Invocation(port=18789), env)
    assert main.profile == "main"
    assert main.config_path == home / ".clawdbot" / "main.json"
    assert main.state_dir == home / ".clawdbot-main"
    assert main.workspace == home / "clawd-main"
    assert (main.port, main.control_port, main.canvas_port) == (18789, 18791, 18793)
    assert main.service.systemd_unit == "moltbot-gateway-main"
    assert main.identity.warnings == ()

    env = {
        "CLAWDBOT_CONFIG_PATH": "~/.clawdbot/rescue.json",
        "CLAWDBOT_STATE_DIR": "~/.clawdbot-rescue",
    }
    rescue = resolve(home, Invocation(port=19001), env)
    assert (rescue.profile, rescue.workspace) == ("rescue", home / "clawd-rescue")
    assert rescue.sessions_dir() != main.sessions_dir()
    assert rescue.canvas_root != main.canvas_root
    assert rescue.port - main.port >= ports.MIN_BASE_SPACING


def test_seed_profiles_are_isolated(home: Path) -> None:
    main = resolve(home, Invocation(profile="main"))
    rescue = resolve(home, Invocation(profile="rescue"))
    mine = {
        main.state_dir,
        main.config_path,
        main.workspace,
        main.canvas_root,
        main.lock_file,
        main.logs_dir,
        main.browser_root,
        main.sessions_dir(),
        main.credentials_dir,
    }
    theirs = {
        rescue.state_dir,
        rescue.config_path,
        rescue.workspace,
        rescue.canvas_root,
        rescue.lock_file,
        rescue.logs_dir,
        rescue.browser_root,
        rescue.sessions_dir(),
        rescue.credentials_dir,
    }
    assert not mine & theirs
    assert main.service != rescue.service


# -- profile rules ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "result"),
    [
        ("rescue", "rescue"),
        ("Main_2", "Main_2"),
        ("a-b", "a-b"),
        ("9", "9"),
        ("default", "default"),
        ("Default", "default"),
        ("DEFAULT", "default"),
        ("x" * 64, "x" * 64),
    ],
)
def test_valid_profiles(name: str, result: str) -> None:
    assert validate_profile(name) == result


@pytest.mark.parametrize("name", ["-x", "_x", "a b", "a/b", "../x", "x" * 65, "é", "a.b"])
def test_invalid_profile_names_the_source(name: str) -> None:
    with pytest.raises(UsageError) as err:
        validate_profile(name, source="CLAWDBOT_PROFILE")
    assert err.value.message == (
        f"invalid profile {name!r} from CLAWDBOT_PROFILE: use letters, digits, '_' and '-' only "
        "(at most 64 characters, starting with a letter or digit)"
    )
    assert err.value.exit_code == 2


def test_empty_profile_flag() -> None:
    with pytest.raises(UsageError, match="^--profile requires a value$"):
        validate_profile("")


def test_default_profile_in_any_case_is_the_default_instance(home: Path) -> None:
    instance = resolve(home, Invocation(profile="Default"))
    assert instance.profile == "default"
    assert instance.state_dir == home / ".clawdbot"
    assert instance.port == 18789
    assert instance.workspace == home / "clawd"


def test_dev(home: Path) -> None:
    dev = resolve(home, Invocation(dev=True))
    assert (dev.profile, dev.port, dev.state_dir) == ("dev", 19001, home / ".clawdbot-dev")
    assert resolve(home, Invocation(dev=True, profile="dev")).profile == "dev"
    with pytest.raises(UsageError, match="--dev cannot be combined with --profile other than dev"):
        resolve_identity(Invocation(dev=True, profile="rescue"), {}, home)


@pytest.mark.parametrize(
    ("state_dir", "profile"),
    [
        (".clawdbot", "default"),
        (".moltbot", "default"),
        (".openclaw", "default"),
        (".clawdbot-main", "main"),
        (".moltbot-rescue", "rescue"),
        (".openclaw-x", "x"),
        ("bots/rescue-state", "rescue-state"),
        ("bots/my bot", "my-bot"),
        ("...", None),
        (".clawdbot-moltbot", "moltbot"),  # only the first stem is taken off
    ],
)
def test_profile_from_state_dir(home: Path, state_dir: str, profile: str | None) -> None:
    assert profile_from_state_dir(home / state_dir) == profile


def test_uninferable_state_dir_means_default(home: Path) -> None:
    instance = resolve(home, env={"CLAWDBOT_STATE_DIR": str(home / "...")})
    assert instance.profile == "default"
    assert instance.state_dir == (home / "...").resolve()


# -- environment precedence ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "profile"),
    [
        ({"MOLTBOT_PROFILE": "m", "CLAWDBOT_PROFILE": "c", "OPENCLAW_PROFILE": "o"}, "m"),
        ({"CLAWDBOT_PROFILE": "c", "OPENCLAW_PROFILE": "o"}, "c"),
        ({"OPENCLAW_PROFILE": "o"}, "o"),
        ({"MOLTBOT_PROFILE": "", "CLAWDBOT_PROFILE": "c"}, "c"),
        ({"MOLTBOT_PROFILE": "  ", "OPENCLAW_PROFILE": "o"}, "o"),
    ],
)
def test_profile_env_precedence(home: Path, env: dict[str, str], profile: str) -> None:
    assert resolve(home, env=env).profile == profile


def test_each_variable_has_its_own_precedence(home: Path) -> None:
    env = {
        "OPENCLAW_STATE_DIR": str(home / "o-state"),
        "CLAWDBOT_STATE_DIR": str(home / "c-state"),
        "OPENCLAW_GATEWAY_PORT": "25000",
        "MOLTBOT_CONFIG_PATH": str(home / "m.json"),
        "CLAWDBOT_CONFIG_PATH": str(home / "c.json"),
    }
    instance = resolve(home, env=env)
    assert instance.state_dir == home / "c-state"
    assert instance.config_path == home / "m.json"
    assert instance.port == 25000


def test_profile_env_without_state_dir(home: Path) -> None:
    instance = resolve(home, env={"CLAWDBOT_PROFILE": "rescue"})
    assert instance.state_dir == home / ".clawdbot-rescue"
    assert instance.config_path == home / ".clawdbot-rescue" / "moltbot.json"


def test_profile_env_with_state_dir(home: Path) -> None:
    env = {"CLAWDBOT_PROFILE": "rescue", "CLAWDBOT_STATE_DIR": str(home / "elsewhere")}
    instance = resolve(home, env=env)
    assert (instance.profile, instance.state_dir) == ("rescue", home / "elsewhere")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("abc", "CLAWDBOT_GATEWAY_PORT='abc' is not a port number"),
        ("0", "CLAWDBOT_GATEWAY_PORT=0 is outside 1..65535"),
        ("70000", "CLAWDBOT_GATEWAY_PORT=70000 is outside 1..65535"),
    ],
)
def test_bad_port_env(home: Path, value: str, message: str) -> None:
    with pytest.raises(UsageError) as err:
        resolve_identity(Invocation(), {"CLAWDBOT_GATEWAY_PORT": value}, home)
    assert err.value.message == message


def test_bad_profile_env(home: Path) -> None:
    with pytest.raises(UsageError, match="from OPENCLAW_PROFILE"):
        resolve_identity(Invocation(), {"OPENCLAW_PROFILE": "no good"}, home)


# -- --profile overrides inherited identity ------------------------------------------------


def test_profile_flag_overrides_inherited_identity_with_one_warning(home: Path) -> None:
    env = {
        "CLAWDBOT_STATE_DIR": str(home / ".clawdbot-main"),
        "CLAWDBOT_CONFIG_PATH": str(home / ".clawdbot-main" / "moltbot.json"),
        "CLAWDBOT_GATEWAY_PORT": "18789",
        "CLAWDBOT_PROFILE": "main",
    }
    instance = resolve(home, Invocation(profile="rescue"), env)
    assert instance.state_dir == home / ".clawdbot-rescue"
    assert instance.config_path == home / ".clawdbot-rescue" / "moltbot.json"
    assert instance.port == ports.profile_default_port("rescue")
    assert instance.identity.warnings == (
        f"--profile rescue overrides inherited CLAWDBOT_PROFILE=main, "
        f"CLAWDBOT_STATE_DIR={home}/.clawdbot-main, "
        f"CLAWDBOT_CONFIG_PATH={home}/.clawdbot-main/moltbot.json, CLAWDBOT_GATEWAY_PORT=18789",
    )


def test_profile_flag_agreeing_with_env_is_silent(home: Path) -> None:
    env = {
        "CLAWDBOT_PROFILE": "main",
        "MOLTBOT_STATE_DIR": "~/.clawdbot-main",
        "CLAWDBOT_CONFIG_PATH": str(home / ".clawdbot-main" / "moltbot.json"),
    }
    assert resolve(home, Invocation(profile="main"), env).identity.warnings == ()


def test_profile_flag_port_flag_still_wins(home: Path) -> None:
    instance = resolve(home, Invocation(profile="x", port=31000), {"CLAWDBOT_GATEWAY_PORT": "1"})
    assert instance.port == 31000


# -- default locations ---------------------------------------------------------------------


def test_moltbot_dir_used_when_only_it_exists(home: Path) -> None:
    (home / ".moltbot").mkdir()
    assert resolve(home).state_dir == home / ".moltbot"
    (home / ".clawdbot").mkdir()
    assert resolve(home).state_dir == home / ".clawdbot"


def test_legacy_config_name_read_as_fallback(home: Path) -> None:
    state = home / ".clawdbot-x"
    state.mkdir()
    (state / "clawdbot.json").write_text("{}")
    assert resolve(home, Invocation(profile="x")).config_path == state / "clawdbot.json"
    (state / "moltbot.json").write_text("{}")
    assert resolve(home, Invocation(profile="x")).config_path == state / "moltbot.json"


def test_relative_and_tilde_paths(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    instance = resolve(
        home,
        env={"CLAWDBOT_STATE_DIR": "rel-state"},
        config={"agents": {"defaults": {"workspace": "~"}}},
    )
    assert instance.state_dir == tmp_path / "rel-state"
    assert instance.workspace == home


# -- ports and derived values --------------------------------------------------------------


def test_named_profile_default_port(home: Path) -> None:
    instance = resolve(home, Invocation(profile="rescue"))
    assert instance.port == ports.profile_default_port("rescue")
    last = ports.NAMED_FIRST + ports.NAMED_STEP * (ports.NAMED_SLOTS - 1)
    assert ports.NAMED_FIRST <= instance.port <= last


def test_overrides_of_derived_ports(home: Path) -> None:
    config = {
        "gateway": {"port": 20000},
        "browser": {"controlPort": 20500},
        "canvasHost": {"port": 20600, "root": "~/site"},
    }
    instance = resolve(home, config=config)
    assert (instance.port, instance.control_port, instance.canvas_port) == (20000, 20500, 20600)
    assert instance.cdp_ports == range(20509, 20609)
    assert instance.canvas_root == home / "site"
    env = {"CLAWDBOT_CANVAS_HOST_PORT": "20700"}
    assert resolve(home, env=env, config=config).canvas_port == 20700


def test_explicit_cdp_ports_are_used_ports(home: Path) -> None:
    config = {
        "gateway": {"port": 20000},
        "browser": {"profiles": {"work": {"cdpPort": 20050}, "remote": {"cdpUrl": "http://x"}}},
    }
    instance = resolve(home, config=config)
    assert instance.explicit_cdp_ports == (("work", 20050),)
    assert instance.used_ports == (20000, 20002, 20004, 20050)
    assert instance.port_block == range(20000, 20000 + ports.BLOCK_SIZE)


def test_browser_user_data_is_per_instance(home: Path) -> None:
    a = resolve(home, Invocation(profile="a")).browser_user_data("openclaw")
    b = resolve(home, Invocation(profile="b")).browser_user_data("openclaw")
    assert a == home / ".clawdbot-a" / "browser" / "openclaw" / "user-data"
    assert a != b


@pytest.mark.parametrize("value", ["1", "65535"])
def test_port_env_range_is_inclusive(home: Path, value: str) -> None:
    identity = resolve_identity(Invocation(), {"CLAWDBOT_GATEWAY_PORT": value}, home)
    assert resolve_instance(identity, Config(), {}).port == int(value)


def test_instance_paths_live_under_its_state_dir(home: Path) -> None:
    instance = resolve(home, Invocation(profile="rescue"))
    state = home / ".clawdbot-rescue"
    assert instance.log_file == state / "logs" / "gateway.jsonl"
    assert instance.credentials_dir == state / "credentials"
    assert instance.devices_dir == state / "devices"
    assert instance.identity_dir == state / "identity"


def test_profile_flag_warns_about_each_inherited_variable(home: Path) -> None:
    env = {"OPENCLAW_GATEWAY_PORT": "18789"}  # the earlier names are not set
    warnings = resolve(home, Invocation(profile="rescue"), env).identity.warnings
    assert warnings == ("--profile rescue overrides inherited OPENCLAW_GATEWAY_PORT=18789",)


def test_facts_name_the_whole_cdp_range(home: Path) -> None:
    instance = resolve(home, Invocation(profile="rescue"))
    facts = instance.facts()
    assert facts["cdpRange"] == [instance.cdp_ports[0], instance.cdp_ports[-1]]
    assert facts["port"] == instance.port and facts["profile"] == "rescue"


def test_identity_file_is_written_once_and_repaired(home: Path) -> None:
    import json

    from moltbot.instance.resolve import identity_file, write_identity_file

    identity = resolve_identity(Invocation(profile="rescue"), {}, home)
    path = identity_file(identity.state_dir)
    write_identity_file(identity)  # no file yet
    record = {"profile": "rescue", "configPath": str(identity.config_path)}
    assert json.loads(path.read_text()) == record
    before = path.stat().st_ino
    write_identity_file(identity)  # the same record: left alone
    assert path.stat().st_ino == before
    path.write_text("{torn")
    write_identity_file(identity)
    assert json.loads(path.read_text()) == record
    path.write_text(json.dumps({"profile": "other", "configPath": "/x"}))
    write_identity_file(identity)
    assert json.loads(path.read_text()) == record


def test_resolving_does_not_import_the_schema() -> None:
    """The resolver runs for `moltbot --help` and `status`: no model is imported."""
    import subprocess
    import sys

    code = (
        "import sys, moltbot.instance.resolve; "
        "print('moltbot.config.schema' in sys.modules, 'moltbot.validation' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
