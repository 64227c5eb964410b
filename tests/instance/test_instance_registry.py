"""The host registry: instances found from state dirs and installed service files."""

from __future__ import annotations

import json
import plistlib
from pathlib import Path
from typing import Any

from moltbot.config.schema import Config
from moltbot.instance import ports
from moltbot.instance.registry import discover, others, read_service_environment
from moltbot.instance.resolve import Invocation, resolve_identity, resolve_instance


def make_instance(home: Path, name: str, config: dict[str, Any] | str | None = None) -> Path:
    state = home / name
    state.mkdir(parents=True)
    if config is not None:
        text = config if isinstance(config, str) else json.dumps(config)
        (state / "moltbot.json").write_text(text)
    return state


def write_unit(home: Path, name: str, environment: list[str]) -> Path:
    unit_dir = home / ".config" / "systemd" / "user"
    unit_dir.mkdir(parents=True, exist_ok=True)
    lines = ["[Unit]", "Description=x", "[Service]", "ExecStart=/usr/bin/python -m moltbot gateway"]
    lines += [f"Environment={assignment}" for assignment in environment]
    unit = unit_dir / name
    unit.write_text("\n".join(lines) + "\n")
    return unit


def by_state(known: list[Any]) -> dict[str, Any]:
    return {k.instance.state_dir.name: k for k in known}


def test_empty_home(home: Path) -> None:
    assert discover(home) == []


def test_state_dirs_are_instances(home: Path) -> None:
    make_instance(home, ".clawdbot", {"gateway": {"port": 18789}})
    make_instance(home, ".clawdbot-rescue", {"gateway": {"port": 19789}})
    make_instance(home, ".moltbot-work", {"gateway": {"port": 21000}})
    known = discover(home)
    assert [(k.instance.profile, k.instance.port) for k in known] == [
        ("default", 18789),
        ("rescue", 19789),
        ("work", 21000),
    ]
    assert all(k.sources == ("state-dir",) for k in known)
    assert known[1].instance.workspace == home / "clawd-rescue"


def test_a_state_dir_without_config_uses_profile_defaults(home: Path) -> None:
    (make_instance(home, ".clawdbot-rescue") / "agents").mkdir()
    [known] = discover(home)
    assert known.instance.port == ports.profile_default_port("rescue")
    assert known.config_error is None


def test_a_directory_holding_nothing_of_an_instance_is_not_one(home: Path) -> None:
    # The seed's manual example keeps configs in ~/.clawdbot/main.json: that makes
    # ~/.clawdbot exist without being the default instance.
    (make_instance(home, ".clawdbot") / "main.json").write_text("{}")
    make_instance(home, ".clawdbot-empty")
    assert discover(home) == []


def test_backups_and_other_dot_names_are_ignored(home: Path) -> None:
    make_instance(home, ".clawdbot.bak", {})
    make_instance(home, ".clawdbot-old.1", {})
    (home / ".clawdbot-file").write_text("not a dir")
    assert discover(home) == []


def test_broken_config_is_listed_with_its_error(home: Path) -> None:
    make_instance(home, ".clawdbot-broken", "{gateway: {port: ")
    [known] = discover(home)
    assert known.instance.port == ports.profile_default_port("broken")
    assert known.config_error is not None
    assert "config syntax error at" in known.config_error


def test_invalid_config_is_listed_with_its_error(home: Path) -> None:
    make_instance(home, ".clawdbot-bad", {"gateway": {"port": "high"}})
    [known] = discover(home)
    assert "gateway.port: expected an integer" in (known.config_error or "")


def test_unset_variables_in_another_config_do_not_hide_its_port(home: Path) -> None:
    make_instance(
        home, ".clawdbot-rescue", {"gateway": {"port": 19789, "auth": {"token": "${RESCUE_TOKEN}"}}}
    )
    [known] = discover(home, {})
    assert known.instance.port == 19789
    assert known.config_error is None


def test_variables_are_substituted_from_the_given_env(home: Path) -> None:
    make_instance(home, ".clawdbot-rescue", {"gateway": {"port": "${RESCUE_PORT}"}})
    [known] = discover(home, {"RESCUE_PORT": "19999"})
    assert known.instance.port == 19999


def test_unknown_keys_in_another_config_are_tolerated(home: Path) -> None:
    make_instance(home, ".clawdbot-x", {"strict": True, "gateway": {"port": 20000}, "future": 1})
    [known] = discover(home)
    assert (known.instance.port, known.config_error) == (20000, None)


def test_systemd_unit_with_an_explicit_state_dir(home: Path, tmp_path: Path) -> None:
    state = tmp_path / "srv" / "bot-state"
    state.mkdir(parents=True)
    unit = write_unit(
        home,
        "moltbot-gateway-ops.service",
        [
            f'"CLAWDBOT_STATE_DIR={state}" CLAWDBOT_PROFILE=ops',
            f"CLAWDBOT_CONFIG_PATH={tmp_path / 'ops.json'}",
            "CLAWDBOT_GATEWAY_PORT=24000",
            "CLAWDBOT_GATEWAY_TOKEN=secret",
        ],
    )
    [known] = discover(home)
    assert known.instance.state_dir == state
    assert known.instance.profile == "ops"
    assert known.instance.config_path == tmp_path / "ops.json"
    assert known.instance.port == 24000
    assert known.sources == ("service:moltbot-gateway-ops.service",)
    assert known.service_files == (unit,)


def test_unit_with_other_prefixes_and_profile_only(home: Path) -> None:
    write_unit(home, "moltbot-gateway-rescue.service", ["OPENCLAW_PROFILE=rescue"])
    write_unit(home, "clawdbot-gateway-old.service", ["MOLTBOT_STATE_DIR=" + str(home / "old")])
    known = by_state(discover(home))
    assert set(known) == {".clawdbot-rescue", "old"}
    assert known[".clawdbot-rescue"].instance.profile == "rescue"


def test_a_state_dir_and_its_unit_are_one_instance(home: Path) -> None:
    make_instance(home, ".clawdbot-rescue", {"gateway": {"port": 19789}})
    write_unit(
        home,
        "moltbot-gateway-rescue.service",
        [f"CLAWDBOT_STATE_DIR={home / '.clawdbot-rescue'}", "CLAWDBOT_PROFILE=rescue"],
    )
    [known] = discover(home)
    assert known.sources == ("state-dir", "service:moltbot-gateway-rescue.service")
    assert known.instance.port == 19789


def test_unit_with_a_bad_port_is_still_listed(home: Path) -> None:
    write_unit(
        home,
        "moltbot-gateway-x.service",
        [f"CLAWDBOT_STATE_DIR={home / '.clawdbot-x'}", "CLAWDBOT_GATEWAY_PORT=lots"],
    )
    [known] = discover(home)
    assert known.instance.state_dir == home / ".clawdbot-x"
    assert known.config_error == "CLAWDBOT_GATEWAY_PORT='lots' is not a port number"


def test_launchd_plist(home: Path) -> None:
    agents = home / "Library" / "LaunchAgents"
    agents.mkdir(parents=True)
    plist = agents / "bot.molt.rescue.plist"
    plist.write_bytes(
        plistlib.dumps(
            {
                "Label": "bot.molt.rescue",
                "EnvironmentVariables": {
                    "CLAWDBOT_STATE_DIR": str(home / ".clawdbot-rescue"),
                    "CLAWDBOT_GATEWAY_PORT": "19789",
                },
            }
        )
    )
    [known] = discover(home)
    assert (known.instance.profile, known.instance.port) == ("rescue", 19789)
    assert known.service_files == (plist,)


def test_read_service_environment(home: Path) -> None:
    unit = write_unit(
        home, "moltbot-gateway.service", ['"A=with space" B=plain', "C='quoted value'"]
    )
    assert read_service_environment(unit) == {"A": "with space", "B": "plain", "C": "quoted value"}
    broken = home / "broken.plist"
    broken.write_bytes(b"not a plist")
    assert read_service_environment(broken) == {}
    assert read_service_environment(home / "missing.service") == {}


def test_runtime_file_gives_the_live_port_only_while_the_lock_is_held(home: Path) -> None:
    import os

    from moltbot.fsutil import acquire_lock

    state = make_instance(home, ".clawdbot-rescue", {"gateway": {"port": 19789}})
    [known] = discover(home)
    assert known.running is None and known.live_port == 19789
    runtime = {"pid": 1, "port": 19800, "controlPort": 19802, "canvasPort": 19804}
    (state / "gateway.json").write_text(json.dumps(runtime))
    [known] = discover(home)
    assert known.running is None and known.live_port == 19789  # left behind by a crash
    fd = acquire_lock(state / "gateway.lock", 1.0)
    try:
        [known] = discover(home)
        assert known.live_port == 19800
        assert known.effective.control_port == 19802
        assert {19789, 19800, 19802, 19804} <= known.claimed_ports
        assert known.drift == "running on 19800, configured 19789 (restart to apply)"
    finally:
        os.close(fd)


def test_sorted_by_port_and_others_excludes_me(home: Path) -> None:
    make_instance(home, ".clawdbot-b", {"gateway": {"port": 30000}})
    make_instance(home, ".clawdbot-a", {"gateway": {"port": 20000}})
    known = discover(home)
    assert [k.instance.profile for k in known] == ["a", "b"]
    me = resolve_instance(resolve_identity(Invocation(profile="a"), {}, home), Config(), {})
    assert [k.instance.profile for k in others(known, me)] == ["b"]


def test_symlinked_state_dir_is_listed_once(home: Path) -> None:
    target = make_instance(home, ".openclaw", {"gateway": {"port": 18789}})
    (home / ".clawdbot").symlink_to(target)
    assert len(discover(home)) == 1
