"""`moltbot onboard`: flags, proposals, re-runs, the wizard (real questionary), summary."""

from __future__ import annotations

import json
import os
import socket
import stat
import sys
from pathlib import Path

import pytest
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

sys.path.insert(0, str(Path(__file__).parents[1] / "service"))

from netkit import free_block  # noqa: E402
from shimtools import Shim  # noqa: E402

from moltbot.cli import onboard_cmd  # noqa: E402
from moltbot.instance import Invocation, resolve_identity  # noqa: E402
from moltbot.instance.ports import BLOCK_SIZE  # noqa: E402


def onboard(run_moltbot, *args: str, profile: str | None = None, env=None):  # noqa: ANN001
    argv = (["--profile", profile] if profile else []) + ["onboard", *args]
    return run_moltbot(*argv, env=env)


def config(home: Path, profile: str | None = None) -> dict:
    state = home / (".clawdbot" if profile is None else f".clawdbot-{profile}")
    return json.loads((state / "moltbot.json").read_text())


def test_non_interactive_alone_accepts_every_default(run_moltbot, home: Path) -> None:
    done = onboard(run_moltbot, "--non-interactive", "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    cfg = config(home)
    token = cfg["gateway"]["auth"]["token"]
    assert cfg["gateway"]["mode"] == "local" and cfg["gateway"]["port"] == 18789
    assert len(token) >= 32
    assert summary["workspace"] == str(home / "clawd")
    assert (home / "clawd" / "AGENTS.md").is_file()
    assert summary["dashboardUrl"] == f"http://127.0.0.1:18789/#token={token}"
    assert "?token" not in summary["dashboardUrl"]
    assert summary["cdpRange"] == [18800, 18899]
    assert summary["service"]["name"] == "moltbot-gateway.service"
    assert summary["service"]["installed"] is False


def test_plain_onboard_without_a_terminal_runs_non_interactively(run_moltbot, home) -> None:
    done = run_moltbot("onboard")  # the seed's command, as written
    assert done.returncode == 0, done.stderr
    assert "not a terminal" in done.stderr
    for label in ("State dir", "Config", "Workspace", "Ports", "Service", "Dashboard"):
        assert label in done.stdout
    assert "#token=" in done.stdout


def test_named_profile_gets_a_separate_block_workspace_and_token(run_moltbot, home) -> None:
    main_port = free_block()
    assert onboard(run_moltbot, "--non-interactive", "--port", str(main_port)).returncode == 0
    done = onboard(run_moltbot, "--non-interactive", "--json", profile="rescue")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert abs(summary["port"] - main_port) >= BLOCK_SIZE
    assert summary["workspace"] == str(home / "clawd-rescue")
    assert summary["stateDir"] == str(home / ".clawdbot-rescue")
    assert summary["service"]["name"] == "moltbot-gateway-rescue.service"
    assert config(home, "rescue")["gateway"]["auth"]["token"] != \
        config(home)["gateway"]["auth"]["token"]
    main_block = set(range(main_port, main_port + BLOCK_SIZE))
    assert not main_block & set(range(summary["port"], summary["cdpRange"][1] + 1))


def test_rerun_keeps_values_and_flags_change_them(run_moltbot, home) -> None:
    port = free_block()
    assert onboard(run_moltbot, "--non-interactive", "--port", str(port),
                   profile="rescue").returncode == 0
    first = config(home, "rescue")
    again = onboard(run_moltbot, "--non-interactive", "--json", profile="rescue")
    assert again.returncode == 0
    second = config(home, "rescue")
    assert second["gateway"]["port"] == port
    assert second["gateway"]["auth"]["token"] == first["gateway"]["auth"]["token"]
    assert json.loads(again.stdout)["changed"] == []
    new_port = free_block(avoid=(port,))
    moved = onboard(run_moltbot, "--non-interactive", "--json", "--port", str(new_port),
                    "--new-token", profile="rescue")
    assert json.loads(moved.stdout)["changed"] == [f"gateway.port: {port} -> {new_port}"]
    third = config(home, "rescue")
    assert third["gateway"]["auth"]["token"] != first["gateway"]["auth"]["token"]


def test_clashing_port_is_refused_and_nothing_is_written(run_moltbot, home) -> None:
    main_port = free_block()
    assert onboard(run_moltbot, "--non-interactive", "--port", str(main_port)).returncode == 0
    done = onboard(run_moltbot, "--non-interactive", "--port", str(main_port + 5),
                   profile="rescue")
    assert done.returncode == 3
    assert "clashes with profile default" in done.stderr
    assert not (home / ".clawdbot-rescue" / "moltbot.json").exists()


def test_shared_workspace_is_refused(run_moltbot, home) -> None:
    assert onboard(run_moltbot, "--non-interactive", "--port", str(free_block())).returncode == 0
    done = onboard(run_moltbot, "--non-interactive", "--workspace", str(home / "clawd"),
                   profile="rescue")
    assert done.returncode == 3
    assert "workspace" in done.stderr and "profile default" in done.stderr


def test_password_auth_and_model_key(run_moltbot, home) -> None:
    env = {"GW_PASS": "correct horse battery", "MY_OPENAI": "sk-test-123"}
    done = onboard(run_moltbot, "--non-interactive", "--json", "--port", str(free_block()),
                   "--auth", "password", "--password-env", "GW_PASS", "--model", "openai/gpt-4o",
                   "--api-key-env", "MY_OPENAI", "--install-daemon", env=env)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    cfg = config(home)
    assert cfg["gateway"]["auth"] == {"mode": "password", "password": "correct horse battery"}
    assert cfg["agents"]["defaults"]["model"] == "openai/gpt-4o"
    assert "sk-test-123" not in json.dumps(cfg)
    creds = Path(summary["credentials"])
    assert json.loads(creds.read_text()) == {"openai": {"apiKey": "sk-test-123"}}
    assert stat.S_IMODE(creds.stat().st_mode) == 0o600
    assert summary["dashboardUrl"].endswith(f":{summary['port']}/")  # no token to show
    unit = Path(summary["service"]["file"])
    assert unit.is_file()
    text = unit.read_text()
    assert "correct horse" not in text and "sk-test" not in text


def test_missing_key_variable_is_a_usage_error(run_moltbot) -> None:
    done = run_moltbot("onboard", "--non-interactive", "--model", "openai/gpt-4o",
                       "--api-key-env", "NOT_SET_ANYWHERE")
    assert done.returncode == 2
    assert "NOT_SET_ANYWHERE" in done.stderr


def test_install_daemon_and_rerun_with_new_port_reinstalls(run_moltbot, home, tmp_path) -> None:
    shim = Shim(tmp_path / "shim")
    env = {"PATH": shim.path_env()}
    port = free_block()
    done = onboard(run_moltbot, "--non-interactive", "--port", str(port), "--install-daemon",
                   profile="rescue", env=env)
    assert done.returncode == 0, done.stderr
    unit = home / ".config" / "systemd" / "user" / "moltbot-gateway-rescue.service"
    assert f"--port {port}" in unit.read_text()
    assert shim.state["units"]["moltbot-gateway-rescue.service"]["active"] is True
    new_port = free_block(avoid=(port,))
    done = onboard(run_moltbot, "--non-interactive", "--port", str(new_port), "--install-daemon",
                   profile="rescue", env=env)
    assert done.returncode == 0, done.stderr
    assert f"--port {new_port}" in unit.read_text()
    assert "Reinstalled" in done.stdout
    assert f"changed port: {port} -> {new_port}" in done.stdout


# the wizard, driven through a pipe: the real questionary prompts --------------------------

KEEP = "\r"
CLEAR = "\x15"  # Ctrl-U: discard the proposed text


def wizard(keys: str, profile: str | None, home: Path):
    env = dict(os.environ)
    identity = resolve_identity(Invocation(profile=profile), env, home)
    proposal = onboard_cmd.propose(identity, env)
    flags = onboard_cmd.Answers(port=proposal.port, workspace=proposal.workspace,
                                auth=proposal.auth, model=proposal.model)
    with create_pipe_input() as pipe:
        pipe.send_text(keys)
        prompter = onboard_cmd.Prompter(input=pipe, output=DummyOutput())
        return onboard_cmd.interview(prompter, identity, env, proposal, flags), proposal, identity


def test_wizard_first_run_accepts_proposals(home: Path) -> None:
    # port, workspace, auth (token), model (none), install service: no
    answers, proposal, _ = wizard(KEEP + KEEP + KEEP + KEEP + "n", "rescue", home)
    assert answers.port == proposal.port
    assert answers.workspace == home / "clawd-rescue"
    assert answers.auth == "token" and answers.model is None
    assert answers.install_daemon is False


def test_wizard_rerun_offers_to_keep_or_change_each_value(home: Path, run_moltbot) -> None:
    port = free_block()
    assert onboard(run_moltbot, "--non-interactive", "--port", str(port),
                   profile="rescue").returncode == 0
    other = free_block(avoid=(port,))
    keys = (CLEAR + str(other) + "\r"      # change the port
            + KEEP                          # keep the workspace
            + KEEP                          # auth stays token
            + "n"                           # do not keep the token: rotate it
            + "openai/gpt-4o\r"             # model
            + "sk-from-wizard\r"            # API key
            + "y")                          # install the service
    answers, proposal, identity = wizard(keys, "rescue", home)
    assert proposal.existing and proposal.port == port
    assert answers.port == other and answers.new_token
    assert answers.model == "openai/gpt-4o" and answers.api_key == "sk-from-wizard"
    assert answers.install_daemon is True
    report, extra = onboard_cmd.apply(identity, dict(os.environ), answers)
    assert report.changed == [f"gateway.port: {port} -> {other}"]
    assert extra["credentials"].is_file()


def test_wizard_rejects_a_clashing_port_and_asks_again(home: Path, run_moltbot) -> None:
    main_port = free_block()
    assert onboard(run_moltbot, "--non-interactive", "--port", str(main_port)).returncode == 0
    good = free_block(avoid=(main_port,))
    keys = (CLEAR + str(main_port + 3) + "\r"   # refused by the validator: stays on the prompt
            + CLEAR + str(good) + "\r" + KEEP + KEEP + KEEP + "n")
    answers, _, _ = wizard(keys, "rescue", home)
    assert answers.port == good


@pytest.mark.parametrize("token", ["abc", "a/b+c=="])
def test_dashboard_url_keeps_token_in_fragment(home: Path, token: str) -> None:
    from moltbot.config.schema import Config
    from moltbot.instance.resolve import resolve_instance

    env = dict(os.environ)
    identity = resolve_identity(Invocation(profile="rescue"), env, home)
    inst = resolve_instance(identity, Config(), env)
    url = onboard_cmd.dashboard_url(inst, token)
    assert url.startswith(f"http://127.0.0.1:{inst.port}/#token=")
    assert "?" not in url and "/" not in url.split("#token=")[1]


def test_a_port_held_by_another_process_is_warned(run_moltbot, home) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        busy = sock.getsockname()[1]
        done = onboard(run_moltbot, "--non-interactive", "--json", "--port", str(busy))
        assert done.returncode == 0
        assert any(f"port {busy} is held by pid {os.getpid()}" in w
                   for w in json.loads(done.stdout)["warnings"])
