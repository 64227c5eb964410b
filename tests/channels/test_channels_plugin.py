"""A channel from another distribution: its manifest (an entry point in the
``moltbot.channels`` group) is all moltbot needs. Nothing in moltbot is edited:
``channels add`` gets its sub-command, ``onboard`` its flag, the gateway starts it
and serves its webhook, ``channels status`` labels it."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from tests.channels.channel_helpers import run_cli
from tests.fakes.llm_openai import FakeOpenAI, openai_config
from tests.gateway_harness import free_port_block, start_gateway

TOY = Path(__file__).parent / "toy" / "toy_channel"


@pytest.fixture
def toy_site(tmp_path: Path) -> Path:
    """A directory with the toy channel installed as a distribution (for PYTHONPATH)."""
    site = tmp_path / "site"
    shutil.copytree(TOY, site / "toy_channel", ignore=shutil.ignore_patterns("__pycache__"))
    info = site / "toy_channel-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-channel\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[moltbot.channels]\ntoy = toy_channel.manifest:MANIFEST\n"
    )
    return site


async def outbox_lines(path: Path, count: int, timeout: float = 30.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        lines = path.read_text().splitlines() if path.exists() else []
        if len(lines) >= count:
            return [json.loads(line) for line in lines]
        if time.monotonic() > deadline:
            raise TimeoutError(f"expected {count} lines in {path}, got {lines}")
        await asyncio.sleep(0.05)


async def post(url: str, token: str, payload: dict[str, Any]) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, json=payload, headers={"X-Toy-Token": token}) as response,
    ):
        return response.status, await response.json()


async def test_a_channel_from_another_package_needs_no_edit_in_moltbot(
    run_moltbot: Any, home: Path, toy_site: Path
) -> None:
    env = {"PYTHONPATH": str(toy_site), "TOY_T": "toy-onboarded"}

    async def cli(*args: str) -> Any:
        done = await run_cli(run_moltbot, "--profile", "main", *args, env=env)
        assert done.returncode == 0, done.stderr
        return done

    helped = await cli("channels", "add", "toy", "--help")
    assert "--token TEXT" in helped.stdout and "Toy token." in helped.stdout
    assert "--toy-token-env VAR" in (await cli("onboard", "--help")).stdout

    gateway = None
    async with FakeOpenAI(api_key="sk-test") as llm:
        fake = openai_config(llm.base_url)["models"]["providers"]["fake"]
        await cli("config", "set", "models.providers.fake", json.dumps(fake))
        port = free_port_block()
        bad = await run_cli(
            run_moltbot,
            "--profile",
            "main",
            "onboard",
            "--non-interactive",
            "--toy-token",
            "x1",
            env=env,
        )
        assert bad.returncode == 2 and "Toy token does not look right" in bad.stderr
        onboarded = await cli(
            "onboard",
            "--non-interactive",
            "--json",
            "--port",
            str(port),
            "--model",
            "fake/m1",
            "--toy-token-env",
            "TOY_T",
        )
        [row] = json.loads(onboarded.stdout)["channels"]
        assert row["channel"] == "toy" and row["secrets"] == {"token": "${TOY_T}"}
        assert row["bot"] == "toy_bot" and row["dmPolicy"] == "pairing"
        added = await cli(
            "channels", "add", "toy", "--account", "alt", "--token", "toy-alt", "--json"
        )
        assert json.loads(added.stdout)["probe"]["bot"]["username"] == "toy_bot"
        validated = await cli("config", "validate", "--json")
        assert json.loads(validated.stdout)["warnings"] == []
        state = home / ".clawdbot-main"
        assert json.loads((state / "moltbot.json").read_text())["channels"]["toy"] == {
            "token": "${TOY_T}",
            "accounts": {"alt": {"token": "toy-alt"}},
        }

        gateway = await asyncio.to_thread(
            start_gateway,
            home,
            "main",
            port=port,
            env={
                **env,
                "CLAWDBOT_SKIP_BROWSER_CONTROL_SERVER": "1",
                "CLAWDBOT_SKIP_CANVAS_HOST": "1",
            },
        )
        try:
            url = f"http://127.0.0.1:{port}/toy/events"
            message = {"id": "m1", "sender": "u7", "name": "Uma", "text": "hello toy"}
            assert (await post(url, "toy-wrong", message))[0] == 401
            assert await post(url, "toy-onboarded", message) == (200, {"ok": True})
            outbox = state / "toy" / "outbox.jsonl"
            [pairing] = await outbox_lines(outbox, 1)
            assert pairing["to"] == "u7" and "Your Toy user id: u7" in pairing["text"]
            code = pairing["text"].split("Pairing code: ")[1].split()[0]
            assert llm.requests == []  # strangers never reach the agent
            await cli("pairing", "approve", "toy", code)

            again = {"id": "m2", "sender": "u7", "text": "now?"}
            assert (await post(url, "toy-onboarded", again))[0] == 200
            lines = await outbox_lines(outbox, 2)
            assert lines[1] == {"account": "default", "to": "u7", "text": "echo: now?"}
            other = {"id": "m3", "sender": "u8", "text": "other account"}
            assert (await post(url + "/alt", "toy-alt", other))[0] == 200
            lines = await outbox_lines(outbox, 3)
            assert lines[2]["account"] == "alt" and "Pairing code: " in lines[2]["text"]
            assert (await post(url + "/nope", "toy-alt", other))[0] == 404

            status = json.loads((await cli("channels", "status", "--json")).stdout)
            assert status["source"] == "gateway" and status["channelOrder"] == ["toy"]
            assert status["channelLabels"] == {"toy": "Toy"}
            assert status["channelDetailLabels"] == {"toy": "Toy Chat"}
            assert status["channels"]["toy"]["capabilities"]["chatTypes"] == ["direct"]
            accounts = status["channelAccounts"]["toy"]
            assert [(a["accountId"], a["state"]) for a in accounts] == [
                ("default", "running"),
                ("alt", "running"),
            ]
            assert accounts[0]["tokenSource"] == "config"
            assert accounts[0]["bot"] == {"id": "toy-bot", "username": "toy_bot"}
        finally:
            await asyncio.to_thread(gateway.stop)


def test_a_broken_channel_package_is_reported_and_hides_nothing(
    run_moltbot: Any, home: Path, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    info = site / "broken_channel-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-channel\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[moltbot.channels]\nbroken = broken_channel_missing.manifest:MANIFEST\n"
    )
    env = {"PYTHONPATH": str(site)}
    config = home / ".clawdbot" / "moltbot.json"
    config.parent.mkdir(parents=True)
    config.write_text(json.dumps({"channels": {"broken": {"token": "x"}}}))
    status = run_moltbot("channels", "status", "--json", env=env)
    assert status.returncode == 0, status.stderr
    payload = json.loads(status.stdout)
    error = payload["channels"]["broken"]["lastError"]
    assert "cannot load the manifest of broken" in error and "broken_channel_missing" in error
    helped = run_moltbot("channels", "add", "--help", env=env)
    assert "telegram" in helped.stdout and "slack" in helped.stdout
    refused = run_moltbot("channels", "add", "broken", "--token", "x", env=env)
    assert refused.returncode == 2 and "cannot load the manifest of broken" in refused.stderr
