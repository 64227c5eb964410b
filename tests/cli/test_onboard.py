"""`moltbot onboard`: flags, proposals, re-runs, the wizard (real questionary), summary,
channels (Telegram, Slack) down to a gateway that answers them."""

from __future__ import annotations

import asyncio
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
sys.path.insert(0, str(Path(__file__).parents[2]))

from netkit import free_block  # noqa: E402
from shimtools import Shim  # noqa: E402
from tests.fakes.llm_openai import FakeOpenAI  # noqa: E402
from tests.fakes.slack import FakeSlack  # noqa: E402
from tests.fakes.telegram import FakeTelegram  # noqa: E402

from moltbot import onboard as onboarding  # noqa: E402
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
    assert (
        config(home, "rescue")["gateway"]["auth"]["token"]
        != config(home)["gateway"]["auth"]["token"]
    )
    main_block = set(range(main_port, main_port + BLOCK_SIZE))
    assert not main_block & set(range(summary["port"], summary["cdpRange"][1] + 1))


def test_rerun_keeps_values_and_flags_change_them(run_moltbot, home) -> None:
    port = free_block()
    assert (
        onboard(run_moltbot, "--non-interactive", "--port", str(port), profile="rescue").returncode
        == 0
    )
    first = config(home, "rescue")
    again = onboard(run_moltbot, "--non-interactive", "--json", profile="rescue")
    assert again.returncode == 0
    second = config(home, "rescue")
    assert second["gateway"]["port"] == port
    assert second["gateway"]["auth"]["token"] == first["gateway"]["auth"]["token"]
    assert json.loads(again.stdout)["changed"] == []
    new_port = free_block(avoid=(port,))
    moved = onboard(
        run_moltbot,
        "--non-interactive",
        "--json",
        "--port",
        str(new_port),
        "--new-token",
        profile="rescue",
    )
    assert json.loads(moved.stdout)["changed"] == [f"gateway.port: {port} -> {new_port}"]
    third = config(home, "rescue")
    assert third["gateway"]["auth"]["token"] != first["gateway"]["auth"]["token"]


def test_clashing_port_is_refused_and_nothing_is_written(run_moltbot, home) -> None:
    main_port = free_block()
    assert onboard(run_moltbot, "--non-interactive", "--port", str(main_port)).returncode == 0
    done = onboard(run_moltbot, "--non-interactive", "--port", str(main_port + 5), profile="rescue")
    assert done.returncode == 3
    assert "clashes with profile default" in done.stderr
    assert not (home / ".clawdbot-rescue" / "moltbot.json").exists()


def test_shared_workspace_is_refused(run_moltbot, home) -> None:
    assert onboard(run_moltbot, "--non-interactive", "--port", str(free_block())).returncode == 0
    done = onboard(
        run_moltbot, "--non-interactive", "--workspace", str(home / "clawd"), profile="rescue"
    )
    assert done.returncode == 3
    assert "workspace" in done.stderr and "profile default" in done.stderr


def test_password_auth_and_model_key(run_moltbot, home) -> None:
    env = {"GW_PASS": "correct horse battery", "MY_OPENAI": "sk-test-123"}
    done = onboard(
        run_moltbot,
        "--non-interactive",
        "--json",
        "--port",
        str(free_block()),
        "--auth",
        "password",
        "--password-env",
        "GW_PASS",
        "--model",
        "openai/gpt-4o",
        "--api-key-env",
        "MY_OPENAI",
        "--install-daemon",
        env=env,
    )
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
    done = run_moltbot(
        "onboard",
        "--non-interactive",
        "--model",
        "openai/gpt-4o",
        "--api-key-env",
        "NOT_SET_ANYWHERE",
    )
    assert done.returncode == 2
    assert "NOT_SET_ANYWHERE" in done.stderr


def test_install_daemon_and_rerun_with_new_port_reinstalls(run_moltbot, home, tmp_path) -> None:
    shim = Shim(tmp_path / "shim")
    env = {"PATH": shim.path_env()}
    port = free_block()
    done = onboard(
        run_moltbot,
        "--non-interactive",
        "--port",
        str(port),
        "--install-daemon",
        profile="rescue",
        env=env,
    )
    assert done.returncode == 0, done.stderr
    unit = home / ".config" / "systemd" / "user" / "moltbot-gateway-rescue.service"
    assert f"--port {port}" in unit.read_text()
    assert shim.state["units"]["moltbot-gateway-rescue.service"]["active"] is True
    new_port = free_block(avoid=(port,))
    done = onboard(
        run_moltbot,
        "--non-interactive",
        "--port",
        str(new_port),
        "--install-daemon",
        profile="rescue",
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert f"--port {new_port}" in unit.read_text()
    assert "Reinstalled" in done.stdout
    assert f"changed port: {port} -> {new_port}" in done.stdout


# the wizard, driven through a pipe: the real questionary prompts --------------------------

KEEP = "\r"
CLEAR = "\x15"  # Ctrl-U: discard the proposed text
LATER_CHANNELS = "nn"  # no Discord, no Matrix (asked after Telegram and Slack)


def wizard(keys: str, profile: str | None, home: Path):
    env = dict(os.environ)
    identity = resolve_identity(Invocation(profile=profile), env, home)
    proposal = onboarding.propose(identity, env)
    flags = onboarding.Plan(
        port=proposal.port, workspace=proposal.workspace, auth=proposal.auth, model=proposal.model
    )
    with create_pipe_input() as pipe:
        pipe.send_text(keys)
        pipe.close()  # keys run out: EOF (the wizard aborts) instead of waiting for more
        prompter = onboarding.QuestionaryPrompter(input=pipe, output=DummyOutput())
        return onboarding.interview(prompter, identity, env, proposal, flags), proposal, identity


def test_wizard_first_run_accepts_proposals(home: Path) -> None:
    # port, workspace, auth (token), model (none), install service: no; no Telegram, no Slack
    answers, proposal, _ = wizard(
        KEEP + KEEP + KEEP + KEEP + "n" + "nn" + LATER_CHANNELS, "rescue", home
    )
    assert answers.port == proposal.port
    assert answers.workspace == home / "clawd-rescue"
    assert answers.auth == "token" and answers.model is None
    assert answers.install_daemon is False
    assert answers.channels == [] and answers.remove_channels == []


def test_wizard_rerun_offers_to_keep_or_change_each_value(home: Path, run_moltbot) -> None:
    port = free_block()
    assert (
        onboard(run_moltbot, "--non-interactive", "--port", str(port), profile="rescue").returncode
        == 0
    )
    other = free_block(avoid=(port,))
    keys = (
        CLEAR
        + str(other)
        + "\r"  # change the port
        + KEEP  # keep the workspace
        + KEEP  # auth stays token
        + "n"  # do not keep the token: rotate it
        + "openai/gpt-4o\r"  # model
        + "sk-from-wizard\r"  # API key
        + "y"  # install the service
        + "nn"
    )  # no Telegram, no Slack
    answers, proposal, identity = wizard(keys + LATER_CHANNELS, "rescue", home)
    assert proposal.existing and proposal.port == port
    assert answers.port == other and answers.new_token
    assert answers.model == "openai/gpt-4o" and answers.api_key == "sk-from-wizard"
    assert answers.install_daemon is True
    applied = onboarding.apply(identity, dict(os.environ), answers)
    assert applied.report.changed == [f"gateway.port: {port} -> {other}"]
    assert applied.credentials is not None and applied.credentials.is_file()


def test_wizard_end_of_input_aborts_and_writes_nothing(home: Path) -> None:
    with pytest.raises(onboarding.WizardAborted):
        wizard(KEEP * 4 + "n" + "y", "rescue", home)  # Ctrl-D at the Telegram token
    assert not (home / ".clawdbot-rescue").exists()


def test_wizard_rejects_a_clashing_port_and_asks_again(home: Path, run_moltbot) -> None:
    main_port = free_block()
    assert onboard(run_moltbot, "--non-interactive", "--port", str(main_port)).returncode == 0
    good = free_block(avoid=(main_port,))
    keys = (
        CLEAR
        + str(main_port + 3)
        + "\r"  # refused by the validator: stays on the prompt
        + CLEAR
        + str(good)
        + "\r"
        + KEEP
        + KEEP
        + KEEP
        + "n"
        + "nn"
    )
    answers, _, _ = wizard(keys + LATER_CHANNELS, "rescue", home)
    assert answers.port == good


@pytest.mark.parametrize("token", ["abc", "a/b+c=="])
def test_dashboard_url_keeps_token_in_fragment(home: Path, token: str) -> None:
    from moltbot.config.schema import Config
    from moltbot.instance.resolve import resolve_instance

    env = dict(os.environ)
    identity = resolve_identity(Invocation(profile="rescue"), env, home)
    inst = resolve_instance(identity, Config(), env)
    url = onboarding.dashboard_url(inst, token)
    assert url.startswith(f"http://127.0.0.1:{inst.port}/#token=")
    assert "?" not in url and "/" not in url.split("#token=")[1]


def test_a_port_held_by_another_process_is_warned(run_moltbot, home) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        busy = sock.getsockname()[1]
        done = onboard(run_moltbot, "--non-interactive", "--json", "--port", str(busy))
        assert done.returncode == 0
        assert any(
            f"port {busy} is held by pid {os.getpid()}" in w
            for w in json.loads(done.stdout)["warnings"]
        )


# channels: Telegram and Slack through channels.setup.add_channel ----------------------------

TG_TOKEN = "123456:secret-telegram-token"
SLACK_BOT = "xoxb-secret-bot-token"
SLACK_APP = "xapp-secret-app-token"


def test_channel_flags_write_the_config_and_the_summary_hides_tokens(run_moltbot, home) -> None:
    done = onboard(
        run_moltbot,
        "--non-interactive",
        "--json",
        "--port",
        str(free_block()),
        "--telegram-token",
        TG_TOKEN,
        "--slack-bot-token",
        SLACK_BOT,
        "--slack-app-token",
        SLACK_APP,
        "--dm-policy",
        "allowlist",
        "--allow-from",
        "4242",
        "--no-channel-check",
        profile="rescue",
    )
    assert done.returncode == 0, done.stderr
    channels = config(home, "rescue")["channels"]
    assert channels == {
        "telegram": {"botToken": TG_TOKEN, "dmPolicy": "allowlist", "allowFrom": ["4242"]},
        "slack": {
            "botToken": SLACK_BOT,
            "appToken": SLACK_APP,
            "mode": "socket",
            "dmPolicy": "allowlist",
            "allowFrom": ["4242"],
        },
    }
    rows = {row["channel"]: row for row in json.loads(done.stdout)["channels"]}
    assert rows["telegram"]["action"] == "added" and rows["telegram"]["mode"] == "polling"
    assert rows["telegram"]["secrets"] == {"botToken": "(hidden)"}
    assert rows["slack"]["dmPolicy"] == "allowlist" and rows["slack"]["mode"] == "socket"
    assert rows["slack"]["secrets"] == {"botToken": "(hidden)", "appToken": "(hidden)"}
    text = onboard(run_moltbot, "--non-interactive", profile="rescue")
    assert text.returncode == 0, text.stderr
    assert "telegram default: kept, polling, dm allowlist, bot token (hidden)" in text.stdout
    assert "slack default: kept, socket, dm allowlist" in text.stdout
    for output in (done.stdout, done.stderr, text.stdout, text.stderr):
        for secret in (TG_TOKEN, SLACK_BOT, SLACK_APP, "secret-"):
            assert secret not in output


def test_env_flags_store_references_and_a_rerun_keeps_the_channels(run_moltbot, home) -> None:
    env = {"TG_TOKEN": TG_TOKEN, "SLACK_BOT": SLACK_BOT, "SLACK_SECRET": "s1gning"}
    done = onboard(
        run_moltbot,
        "--non-interactive",
        "--json",
        "--port",
        str(free_block()),
        "--telegram-token-env",
        "TG_TOKEN",
        "--slack-bot-token-env",
        "SLACK_BOT",
        "--slack-signing-secret-env",
        "SLACK_SECRET",
        "--no-channel-check",
        profile="rescue",
        env=env,
    )
    assert done.returncode == 0, done.stderr
    first = config(home, "rescue")
    assert first["channels"] == {
        "telegram": {"botToken": "${TG_TOKEN}"},
        "slack": {"botToken": "${SLACK_BOT}", "signingSecret": "${SLACK_SECRET}", "mode": "http"},
    }
    rows = {row["channel"]: row for row in json.loads(done.stdout)["channels"]}
    assert rows["slack"]["secrets"] == {
        "botToken": "${SLACK_BOT}",
        "signingSecret": "${SLACK_SECRET}",
    }
    assert TG_TOKEN not in done.stdout and "s1gning" not in done.stdout

    again = onboard(run_moltbot, "--non-interactive", "--json", profile="rescue", env=env)
    assert again.returncode == 0, again.stderr
    second = config(home, "rescue")
    assert second["channels"] == first["channels"]
    assert second["gateway"] == first["gateway"]
    assert [row["action"] for row in json.loads(again.stdout)["channels"]] == ["kept", "kept"]

    unset = onboard(
        run_moltbot,
        "--non-interactive",
        "--telegram-token-env",
        "NOT_SET_X",
        profile="rescue",
        env=env,
    )
    assert unset.returncode == 2 and "NOT_SET_X" in unset.stderr


def test_dm_policy_and_remove_flags(run_moltbot, home) -> None:
    port = str(free_block())
    assert (
        onboard(
            run_moltbot,
            "--non-interactive",
            "--port",
            port,
            "--telegram-token",
            TG_TOKEN,
            "--dm-policy",
            "open",
            "--no-channel-check",
        ).returncode
        == 0
    )
    assert config(home)["channels"]["telegram"]["allowFrom"] == ["*"]
    # --dm-policy alone changes the configured channels; leaving open drops the "*"
    assert onboard(run_moltbot, "--non-interactive", "--dm-policy", "pairing").returncode == 0
    assert config(home)["channels"]["telegram"] == {
        "botToken": TG_TOKEN,
        "dmPolicy": "pairing",
        "allowFrom": [],
    }
    absent = onboard(run_moltbot, "--non-interactive", "--remove-channel", "slack")
    assert absent.returncode == 2 and "slack is not configured" in absent.stderr
    removed = onboard(run_moltbot, "--non-interactive", "--json", "--remove-channel", "telegram")
    assert removed.returncode == 0, removed.stderr
    assert "channels" not in config(home) or not config(home)["channels"]
    assert json.loads(removed.stdout)["channels"] == [
        {"channel": "telegram", "accountId": None, "action": "removed"}
    ]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--telegram-token", "my-secret-looking-wrong"], "Telegram bot token does not look right"),
        (
            ["--slack-bot-token", "xapp-my-secret", "--slack-app-token", "xapp-my-secret2"],
            "looks like an app token",
        ),
        (
            ["--slack-bot-token", "xoxb-my-secret", "--slack-app-token", "my-secret"],
            "Slack app token does not look right",
        ),
    ],
)
def test_a_malformed_token_is_refused_and_nothing_is_written(
    run_moltbot, home, flags, message
) -> None:
    done = onboard(run_moltbot, "--non-interactive", *flags)
    assert done.returncode == 2
    assert message in done.stderr
    assert "my-secret" not in done.stderr + done.stdout
    assert not (home / ".clawdbot").exists()
    # and on an existing instance: the file stays byte for byte the same
    assert onboard(run_moltbot, "--non-interactive", "--port", str(free_block())).returncode == 0
    before = (home / ".clawdbot" / "moltbot.json").read_bytes()
    again = onboard(run_moltbot, "--non-interactive", "--new-token", *flags)
    assert again.returncode == 2 and message in again.stderr
    assert (home / ".clawdbot" / "moltbot.json").read_bytes() == before


def test_secrets_of_two_connection_modes_are_refused(run_moltbot, home) -> None:
    done = onboard(
        run_moltbot,
        "--non-interactive",
        "--slack-bot-token",
        SLACK_BOT,
        "--slack-app-token",
        SLACK_APP,
        "--slack-signing-secret",
        "s1gning",
    )
    assert done.returncode == 2
    assert "--slack-app-token is for socket mode" in done.stderr
    assert "--slack-signing-secret is for http mode" in done.stderr
    assert "--slack-mode" in done.stderr and "s1gning" not in done.stderr
    assert not (home / ".clawdbot" / "moltbot.json").exists()


def test_slack_without_its_second_secret_names_the_onboard_flag(run_moltbot, home) -> None:
    done = onboard(
        run_moltbot, "--non-interactive", "--slack-bot-token", SLACK_BOT, "--no-channel-check"
    )
    assert done.returncode == 78
    assert "appToken" in done.stderr and "--slack-app-token" in done.stderr
    assert not (home / ".clawdbot" / "moltbot.json").exists()


async def test_a_token_the_platform_refuses_writes_nothing(run_moltbot, home) -> None:
    fake = FakeTelegram()
    await fake.start()
    try:
        fake.bot("1:known")
        set_root = await asyncio.to_thread(
            run_moltbot, "config", "set", "channels.telegram.apiRoot", fake.url
        )
        assert set_root.returncode == 0, set_root.stderr
        before = (home / ".clawdbot" / "moltbot.json").read_bytes()
        done = await asyncio.to_thread(
            onboard, run_moltbot, "--non-interactive", "--telegram-token", "2:unknown"
        )
        assert done.returncode == 7, done.stderr
        assert "refused" in done.stderr
        assert (home / ".clawdbot" / "moltbot.json").read_bytes() == before
    finally:
        await fake.stop()


# the channel questions of the wizard ---------------------------------------------------------

DOWN = "j"  # questionary select: j moves down


def test_wizard_connects_telegram_and_slack(home: Path) -> None:
    keys = (
        KEEP * 4
        + "n"  # port, workspace, auth, model, no service
        + "y"  # connect Telegram
        + "not-a-token\r"  # refused by the validator: asked again
        + CLEAR
        + TG_TOKEN
        + "\r"
        + KEEP  # dm policy: pairing
        + "y"  # connect Slack
        + DOWN
        + "\r"  # mode: http
        + SLACK_APP
        + "\r"  # an app token where the bot token goes: refused
        + CLEAR
        + SLACK_BOT
        + "\r"
        + "s1gning\r"  # signing secret
        + DOWN
        + "\r"  # dm policy: allowlist
        + "U0ANN, U0BOB\r"
    )  # allowed ids
    answers, _, identity = wizard(keys + LATER_CHANNELS, "rescue", home)
    assert [(c.name, c.answers) for c in answers.channels] == [
        ("telegram", {"token": TG_TOKEN, "dm_policy": "pairing", "allow_from": None}),
        (
            "slack",
            {
                "mode": "http",
                "bot_token": SLACK_BOT,
                "signing_secret": "s1gning",
                "dm_policy": "allowlist",
                "allow_from": ["U0ANN", "U0BOB"],
            },
        ),
    ]
    applied = onboarding.apply(identity, dict(os.environ), answers)
    assert config(home, "rescue")["channels"]["slack"] == {
        "mode": "http",
        "botToken": SLACK_BOT,
        "signingSecret": "s1gning",
        "dmPolicy": "allowlist",
        "allowFrom": ["U0ANN", "U0BOB"],
    }
    assert [row["action"] for row in applied.channels] == ["added", "added"]


def test_wizard_env_reference_and_rerun_keep_change_remove(
    home: Path, run_moltbot, monkeypatch
) -> None:
    monkeypatch.setenv("TG_TOKEN", TG_TOKEN)
    assert (
        onboard(
            run_moltbot,
            "--non-interactive",
            "--port",
            str(free_block()),
            "--slack-bot-token",
            SLACK_BOT,
            "--slack-app-token",
            SLACK_APP,
            "--no-channel-check",
            profile="rescue",
        ).returncode
        == 0
    )
    keys = (
        KEEP * 5
        + "n"  # (keep the token too)
        + "y"
        + "${TG_TOKEN}\r"
        + DOWN * 2
        + "\r"  # Telegram from $TG_TOKEN, dm open
        + KEEP
    )  # Slack (configured): keep
    answers, proposal, identity = wizard(keys + LATER_CHANNELS, "rescue", home)
    assert list(proposal.channels) == ["slack"]
    assert answers.channels[0].answers == {
        "token": "${TG_TOKEN}",
        "dm_policy": "open",
        "allow_from": None,
    }
    onboarding.apply(identity, dict(os.environ), answers)
    first = config(home, "rescue")["channels"]
    assert first["telegram"] == {"botToken": "${TG_TOKEN}", "dmPolicy": "open", "allowFrom": ["*"]}

    # re-run: both configured; keep Telegram's token (empty answer), back to pairing; remove Slack
    keys = (
        KEEP * 5
        + "n"
        + DOWN
        + "\r"  # Telegram: change
        + "\r"  # token: empty keeps the current one
        + "kk\r"  # dm policy: from the current one (open) up to pairing
        + DOWN * 2
        + "\r"
    )  # Slack: remove
    answers, proposal, identity = wizard(keys + LATER_CHANNELS, "rescue", home)
    assert set(proposal.channels) == {"telegram", "slack"}
    assert answers.remove_channels == ["slack"]
    assert answers.channels[0].answers == {"token": None, "dm_policy": "pairing", "allow_from": []}
    applied = onboarding.apply(identity, dict(os.environ), answers)
    assert config(home, "rescue")["channels"] == {
        "telegram": {"botToken": "${TG_TOKEN}", "dmPolicy": "pairing", "allowFrom": []}
    }
    assert [(r["channel"], r["action"]) for r in applied.channels] == [
        ("slack", "removed"),
        ("telegram", "updated"),
    ]


def test_wizard_shows_a_refusal_and_asks_again(home: Path) -> None:
    refusals = ["slack refused the token: invalid_auth"]

    def check(plan):  # noqa: ANN001, ANN202
        return refusals.pop() if refusals else None

    env = dict(os.environ)
    identity = resolve_identity(Invocation(profile="rescue"), env, home)
    proposal = onboarding.propose(identity, env)
    flags = onboarding.Plan(
        port=proposal.port, workspace=proposal.workspace, auth=proposal.auth, model=proposal.model
    )
    slack = KEEP + SLACK_BOT + "\r" + SLACK_APP + "\r" + KEEP  # socket, tokens, pairing
    keys = KEEP * 4 + "n" + "n" + "y" + slack + "y" + slack + LATER_CHANNELS  # refused, then again
    with create_pipe_input() as pipe:
        pipe.send_text(keys)
        pipe.close()
        prompter = onboarding.QuestionaryPrompter(input=pipe, output=DummyOutput())
        answers = onboarding.interview(prompter, identity, env, proposal, flags, check)
    assert [c.name for c in answers.channels] == ["slack"] and answers.channels[0].checked


# end to end: onboard with a Telegram token, then the gateway answers ---------------------------


async def test_onboarded_telegram_bot_answers_approved_senders_and_pairs_strangers(
    run_moltbot, home
) -> None:
    from gateway_harness import start_gateway

    async def cli(*args: str, env=None):  # noqa: ANN001, ANN202
        return await asyncio.to_thread(run_moltbot, "--profile", "main", *args, env=env)

    fake = FakeTelegram()
    await fake.start()
    gateway = None
    try:
        async with FakeOpenAI(api_key="sk-test") as llm:
            bot = fake.bot("900:onboarded-bot", username="onboarded_bot")
            # point the profile at the stand-ins (a new user would not need these two lines)
            for key, value in (
                ("channels.telegram.apiRoot", fake.url),
                ("channels.telegram.pollTimeoutSeconds", "1"),
                (
                    "models.providers.fake",
                    json.dumps(
                        {
                            "baseUrl": llm.base_url,
                            "apiKey": "sk-test",
                            "api": "openai-completions",
                            "models": [{"id": "m1"}],
                        }
                    ),
                ),
            ):
                done = await cli("config", "set", key, value)
                assert done.returncode == 0, done.stderr
            done = await cli(
                "onboard",
                "--non-interactive",
                "--json",
                "--port",
                str(free_block()),
                "--model",
                "fake/m1",
                "--telegram-token",
                "900:onboarded-bot",
            )
            assert done.returncode == 0, done.stderr
            summary = json.loads(done.stdout)
            [row] = summary["channels"]
            assert row["bot"] == "onboarded_bot" and row["dmPolicy"] == "pairing"
            assert "900:onboarded-bot" not in done.stdout

            gateway = await asyncio.to_thread(
                start_gateway,
                home,
                "main",
                port=summary["port"],
                env={"CLAWDBOT_SKIP_BROWSER_CONTROL_SERVER": "1", "CLAWDBOT_SKIP_CANVAS_HOST": "1"},
            )
            await bot.wait_polling(20)

            await bot.push_dm(31337, "hello?", first_name="Stranger", username=None)
            [pairing] = await bot.wait_sent(1, timeout=30)
            assert "Pairing code: " in pairing.text
            code = pairing.text.split("Pairing code: ")[1].split()[0]
            assert f"moltbot --profile main pairing approve telegram {code}" in pairing.text
            assert llm.requests == []  # strangers never reach the agent

            approved = await cli("pairing", "approve", "telegram", code)
            assert approved.returncode == 0, approved.stderr
            await bot.push_dm(31337, "now?", first_name="Stranger", username=None)
            sent = await bot.wait_sent(2, timeout=30)
            assert sent[1].text == "echo: now?" and sent[1].chat_id == "31337"
    finally:
        if gateway is not None:
            await asyncio.to_thread(gateway.stop)
        await fake.stop()


async def test_onboard_slack_probe_against_the_stand_in(run_moltbot, home) -> None:
    slack = FakeSlack()
    await slack.start()
    try:
        ws = slack.workspace()
        done = await asyncio.to_thread(
            run_moltbot, "config", "set", "channels.slack.apiUrl", slack.api_url
        )
        assert done.returncode == 0, done.stderr
        done = await asyncio.to_thread(
            onboard,
            run_moltbot,
            "--non-interactive",
            "--slack-bot-token",
            ws.bot_token,
            "--slack-app-token",
            ws.app_token,
        )
        assert done.returncode == 0, done.stderr
        assert "slack default (@" in done.stdout and ws.bot_token not in done.stdout
        assert config(home)["channels"]["slack"]["botToken"] == ws.bot_token
    finally:
        await slack.stop()
