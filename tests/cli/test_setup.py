"""`moltbot setup` through the real CLI (subprocesses in a fresh HOME)."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

from moltbot.instance import ports
from moltbot.instance.workspace import BOOTSTRAP_FILES, FIRST_RUN_FILE


def setup_json(run_moltbot: Any, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    if "setup" not in args:
        args = (*args, "setup")
    result = run_moltbot(*args, "--json", env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def test_done_when_main_and_rescue_are_two_separate_instances(run_moltbot: Any, home: Path) -> None:
    main = setup_json(run_moltbot, "--profile", "main")
    rescue = setup_json(run_moltbot, "--profile", "rescue")

    main_config = json.loads((home / ".clawdbot-main" / "moltbot.json").read_text())
    rescue_config = json.loads((home / ".clawdbot-rescue" / "moltbot.json").read_text())
    assert main["configPath"] == str(home / ".clawdbot-main" / "moltbot.json")
    assert rescue["configPath"] == str(home / ".clawdbot-rescue" / "moltbot.json")
    assert (main["workspace"], rescue["workspace"]) == (
        str(home / "clawd-main"),
        str(home / "clawd-rescue"),
    )
    assert main_config["agents"]["defaults"]["workspace"] == str(home / "clawd-main")
    assert rescue_config["agents"]["defaults"]["workspace"] == str(home / "clawd-rescue")
    # base ports persisted, at least 20 apart (in fact whole port blocks apart)
    assert (main_config["gateway"]["port"], rescue_config["gateway"]["port"]) == (
        main["port"],
        rescue["port"],
    )
    assert abs(main["port"] - rescue["port"]) >= ports.BLOCK_SIZE >= 20
    assert main["cdpRange"][1] < rescue["port"] or rescue["cdpRange"][1] < main["port"]
    for config in (main_config, rescue_config):
        assert config["gateway"]["mode"] == "local"
        assert len(config["gateway"]["auth"]["token"]) >= 40
    assert main_config["gateway"]["auth"]["token"] != rescue_config["gateway"]["auth"]["token"]
    assert sorted(p.name for p in home.iterdir()) == [
        ".clawdbot-main",
        ".clawdbot-rescue",
        "clawd-main",
        "clawd-rescue",
    ]


def test_files_written(run_moltbot: Any, home: Path) -> None:
    report = setup_json(run_moltbot, "--profile", "main")
    state, workspace = home / ".clawdbot-main", home / "clawd-main"
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    assert stat.S_IMODE((state / "moltbot.json").stat().st_mode) == 0o600
    assert tree(state) == {
        "moltbot.json",
        "moltbot.json.lock",
        "instance.json",
        "agents",
        "agents/main",
        "agents/main/sessions",
        "credentials",
        "logs",
        "config-history",  # who wrote the config (see README, Config history)
        "config-history/.lock",
        "config-history/writes.jsonl",
    }
    for directory in ("agents/main/sessions", "credentials", "logs", "config-history"):
        assert stat.S_IMODE((state / directory).stat().st_mode) == 0o700
    assert tree(workspace) == {*BOOTSTRAP_FILES, FIRST_RUN_FILE, "canvas"}
    assert report["created"] == [
        "config gateway.mode",
        "config gateway.port",
        "config gateway.auth.token",
        "config agents.defaults.workspace",
        str(state),
        str(state / "agents/main/sessions"),
        str(state / "credentials"),
        str(state / "logs"),
        *(f"workspace {name}" for name in (*BOOTSTRAP_FILES, FIRST_RUN_FILE)),
        "workspace canvas/",
    ]
    assert (report["kept"], report["changed"]) == ([], [])
    assert report["controlPort"] == report["port"] + 2
    assert report["canvasPort"] == report["port"] + 4
    assert report["cdpRange"] == [report["port"] + 11, report["port"] + 110]


def test_setup_is_idempotent(run_moltbot: Any, home: Path) -> None:
    first = setup_json(run_moltbot, "--profile", "main")
    config = home / ".clawdbot-main" / "moltbot.json"
    before = json.loads(config.read_text())
    (home / "clawd-main" / FIRST_RUN_FILE).unlink()  # the first-run ritual is done
    (home / "clawd-main" / "SOUL.md").write_text("my own soul")
    second = setup_json(run_moltbot, "--profile", "main")
    after = json.loads(config.read_text())
    assert before == after  # nothing rewritten, token kept
    assert second["created"] == [] and second["changed"] == []
    assert len(second["kept"]) == len(first["created"]) - 1  # all but BOOTSTRAP.md
    assert (home / "clawd-main" / "SOUL.md").read_text() == "my own soul"
    assert not (home / "clawd-main" / FIRST_RUN_FILE).exists()


def test_text_output(run_moltbot: Any, home: Path) -> None:
    first = run_moltbot("--profile", "rescue", "setup")
    assert first.returncode == 0, first.stderr
    port = ports.profile_default_port("rescue")
    assert first.stdout.startswith(
        "Instance   rescue\nState dir  ~/.clawdbot-rescue\n"
        "Config     ~/.clawdbot-rescue/moltbot.json\nWorkspace  ~/clawd-rescue\n"
        f"Ports      gateway {port}, browser control {port + 2}, canvas {port + 4}, "
        f"CDP {port + 11}-{port + 110}\n  created  config gateway.mode\n"
    )
    assert first.stdout.endswith("Next: moltbot --profile rescue gateway\n")
    second = run_moltbot("--profile", "rescue", "setup")
    assert "  kept     " in second.stdout and "created" not in second.stdout


def test_port_and_workspace_flags_are_persisted_and_reported_as_changed(
    run_moltbot: Any, home: Path
) -> None:
    setup_json(run_moltbot, "--profile", "main")
    report = setup_json(run_moltbot, "--profile", "main", "setup", "--port", "18789")
    assert report["port"] == 18789
    old = ports.profile_default_port("main")
    assert report["changed"] == [f"gateway.port: {old} -> 18789"]
    config = json.loads((home / ".clawdbot-main" / "moltbot.json").read_text())
    assert config["gateway"]["port"] == 18789
    workspace = home / "bots" / "main-ws"
    result = run_moltbot("--profile", "main", "setup", "--workspace", str(workspace), "--json")
    assert json.loads(result.stdout)["changed"] == [
        f"agents.defaults.workspace: {home / 'clawd-main'} -> {workspace}"
    ]
    assert (workspace / "AGENTS.md").is_file()


def test_default_instance_and_dev(run_moltbot: Any, home: Path) -> None:
    default = setup_json(run_moltbot)
    assert (default["profile"], default["port"], default["stateDir"], default["workspace"]) == (
        "default",
        18789,
        str(home / ".clawdbot"),
        str(home / "clawd"),
    )
    dev = setup_json(run_moltbot, "--dev")
    assert (dev["profile"], dev["port"], dev["workspace"]) == (
        "dev",
        19001,
        str(home / "clawd-dev"),
    )


def test_named_profile_moves_away_from_a_known_instance(run_moltbot: Any, home: Path) -> None:
    own = ports.profile_default_port("rescue")
    setup_json(run_moltbot, "--profile", "other", "setup", "--port", str(own + 30))
    rescue = setup_json(run_moltbot, "--profile", "rescue")
    assert rescue["port"] != own
    assert abs(rescue["port"] - (own + 30)) >= ports.BLOCK_SIZE


def assert_nothing_written(home: Path, before: set[str]) -> None:
    assert tree(home) == before


def test_refuses_a_port_within_20_of_another_instance(run_moltbot: Any, home: Path) -> None:
    setup_json(run_moltbot, "--profile", "main", "setup", "--port", "18789")
    before = tree(home)
    result = run_moltbot("--profile", "rescue", "setup", "--port", "18800")
    assert result.returncode == 3
    assert result.stdout == ""
    assert result.stderr.splitlines()[0] == (
        f"error: port 18800 clashes with profile main ({home}/.clawdbot-main, port 18789): "
        "base ports 18800 and 18789 are closer than 20"
    )
    assert result.stderr.splitlines()[1].startswith(
        "hint: choose a base port at least 20 (better 111) away from other instances' "
        "base ports, e.g. "
    )
    assert_nothing_written(home, before)


def test_refuses_a_port_another_instance_uses(run_moltbot: Any, home: Path) -> None:
    setup_json(run_moltbot, "--profile", "main", "setup", "--port", "18789")
    before = tree(home)
    result = run_moltbot("--profile", "rescue", "setup", "--port", "18789")
    assert result.returncode == 3
    assert result.stderr.startswith(
        f"error: port 18789 clashes with profile main ({home}/.clawdbot-main, port 18789): "
        "port 18789 would be used by both\n"
    )
    assert_nothing_written(home, before)


def test_refuses_when_a_derived_port_is_an_explicit_cdp_port(run_moltbot: Any, home: Path) -> None:
    setup_json(run_moltbot, "--profile", "main", "setup", "--port", "20000")
    result = run_moltbot(
        "--profile", "main", "config", "set", "browser.profiles.work.cdpPort", "20502"
    )
    assert result.returncode == 0, result.stderr
    result = run_moltbot("--profile", "rescue", "setup", "--port", "20500")
    assert result.returncode == 3
    assert "port 20502 would be used by both" in result.stderr


def test_refuses_a_workspace_another_instance_uses(run_moltbot: Any, home: Path) -> None:
    setup_json(run_moltbot, "--profile", "main")
    before = tree(home)
    result = run_moltbot("--profile", "rescue", "setup", "--workspace", str(home / "clawd-main"))
    assert result.returncode == 3
    assert result.stderr == (
        f"error: workspace {home}/clawd-main is the workspace of profile main "
        f"({home}/.clawdbot-main, port {ports.profile_default_port('main')})\n"
        f"hint: use a workspace of its own, e.g. {home}/clawd-rescue\n"
    )
    assert_nothing_written(home, before)


def test_refuses_a_workspace_inside_another_state_dir(run_moltbot: Any, home: Path) -> None:
    setup_json(run_moltbot, "--profile", "main")
    before = tree(home)
    inside = home / ".clawdbot-main" / "ws"
    result = run_moltbot("--profile", "rescue", "setup", "--workspace", str(inside))
    assert result.returncode == 3
    assert result.stderr.startswith(
        f"error: workspace {inside} overlaps the state dir of profile main"
    )
    assert_nothing_written(home, before)


def test_refuses_a_state_dir_inside_another_workspace(run_moltbot: Any, home: Path) -> None:
    setup_json(run_moltbot, "--profile", "main")
    before = tree(home)
    env = {"CLAWDBOT_STATE_DIR": str(home / "clawd-main" / ".clawdbot-inner")}
    result = run_moltbot("setup", env=env)
    assert result.returncode == 3
    assert result.stderr.startswith(
        f"error: state dir {home}/clawd-main/.clawdbot-inner overlaps the workspace of profile main"
    )
    assert "hint: use another --profile" in result.stderr
    assert_nothing_written(home, before)


def test_refuses_an_invalid_existing_config(run_moltbot: Any, home: Path) -> None:
    state = home / ".clawdbot-main"
    state.mkdir()
    (state / "moltbot.json").write_text("{gateway: {port: 'x'}}")
    before = tree(home)
    result = run_moltbot("--profile", "main", "setup")
    assert result.returncode == 78
    assert result.stderr == (
        f"error: invalid config at {state}/moltbot.json:\n"
        '  - gateway.port: expected an integer, unable to parse string as an integer (got "x")\n'
        "hint: fix the file, then run `moltbot config validate`\n"
    )
    assert_nothing_written(home, before)


def test_setup_keeps_comments_of_a_hand_written_config(run_moltbot: Any, home: Path) -> None:
    state = home / ".clawdbot-main"
    state.mkdir()
    (state / "moltbot.json").write_text(
        "// my main bot\n{\n  gateway: {\n    bind: 'loopback', // only here\n  },\n}\n"
    )
    setup_json(run_moltbot, "--profile", "main")
    text = (state / "moltbot.json").read_text()
    assert text.startswith(
        "// my main bot\n{\n  gateway: {\n    bind: 'loopback', // only here\n"
        '    mode: "local",\n    port: '
    )
    assert (state / "moltbot.json.bak").read_text().startswith("// my main bot")


def test_existing_password_auth_is_kept(run_moltbot: Any, home: Path) -> None:
    state = home / ".clawdbot-main"
    state.mkdir()
    (state / "moltbot.json").write_text(
        '{"gateway": {"auth": {"mode": "password", "password": "${PW}"}}}'
    )
    report = setup_json(run_moltbot, "--profile", "main", env={"PW": "hunter2"})
    assert "config gateway.auth.password" in report["kept"]
    config = json.loads((state / "moltbot.json").read_text())
    assert config["gateway"]["auth"] == {"mode": "password", "password": "${PW}"}


def test_seed_manual_env_example(run_moltbot: Any, home: Path) -> None:
    """The seed's manual env example, no --profile: the profile comes from the state dir."""
    main_env = {
        "CLAWDBOT_CONFIG_PATH": str(home / ".clawdbot" / "main.json"),
        "CLAWDBOT_STATE_DIR": str(home / ".clawdbot-main"),
    }
    rescue_env = {
        "CLAWDBOT_CONFIG_PATH": str(home / ".clawdbot" / "rescue.json"),
        "CLAWDBOT_STATE_DIR": str(home / ".clawdbot-rescue"),
    }
    main = setup_json(run_moltbot, "setup", "--port", "18789", env=main_env)
    rescue = setup_json(run_moltbot, "setup", "--port", "19001", env=rescue_env)
    assert (main["profile"], main["stateDir"], main["configPath"], main["workspace"]) == (
        "main",
        str(home / ".clawdbot-main"),
        str(home / ".clawdbot" / "main.json"),
        str(home / "clawd-main"),
    )
    assert (rescue["profile"], rescue["workspace"], rescue["port"]) == (
        "rescue",
        str(home / "clawd-rescue"),
        19001,
    )
    assert json.loads((home / ".clawdbot" / "main.json").read_text())["gateway"]["port"] == 18789
    # again: idempotent, and ~/.clawdbot (holding only the two files) is no instance to clash with
    again = setup_json(run_moltbot, "setup", "--port", "18789", env=main_env)
    assert again["changed"] == [] and again["created"] == []


def test_env_port_is_persisted(run_moltbot: Any, home: Path) -> None:
    report = setup_json(
        run_moltbot,
        env={"CLAWDBOT_STATE_DIR": str(home / ".clawdbot-x"), "CLAWDBOT_GATEWAY_PORT": "24000"},
    )
    assert report["port"] == 24000
    assert json.loads((home / ".clawdbot-x" / "moltbot.json").read_text())["gateway"]["port"] == (
        24000
    )


def test_help_has_an_example(run_moltbot: Any) -> None:
    result = run_moltbot("setup", "--help")
    assert result.returncode == 0
    assert "moltbot --profile rescue setup" in result.stdout
    assert "exit 3" in result.stdout
