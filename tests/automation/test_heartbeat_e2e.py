"""Heartbeats in a real gateway subprocess (stand-in model and Telegram): the
HEARTBEAT_OK contract, the empty-checklist skip, wake and system events, the
``moltbot system`` commands, a main cron job that wakes the agent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.automation.conftest import BOT_TOKEN, telegram_config
from tests.channels.channel_helpers import run_cli
from tests.fakes.llm_openai import FakeOpenAI
from tests.fakes.llm_script import Reply
from tests.fakes.telegram import FakeTelegram
from tests.upstream import validate

from gateway_harness import ws_client

CHECKLIST = "# Heartbeat\n- tell me if the build is red\n"


def heartbeat(**settings: Any) -> dict[str, Any]:
    return {"defaults": {"heartbeat": settings}}


def is_heartbeat(status: str) -> Any:
    return lambda f: f["event"] == "heartbeat" and f["payload"]["status"] == status


def user_texts(llm: FakeOpenAI, index: int) -> str:
    messages = llm.requests[index]["body"]["messages"]
    return "\n".join(str(m.get("content")) for m in messages if m["role"] == "user")


async def test_heartbeat_ok_delivers_nothing_and_text_is_delivered(
    home: Path, llm: FakeOpenAI, fake_telegram: FakeTelegram, launch: Any
) -> None:
    bot = fake_telegram.bot(BOT_TOKEN)
    config = telegram_config(
        llm, fake_telegram, agents=heartbeat(every="1h", target="telegram", to="4242")
    )
    config["agents"]["defaults"]["workspace"] = str(home / "clawd-main")
    (home / "clawd-main").mkdir()
    (home / "clawd-main" / "HEARTBEAT.md").write_text(CHECKLIST)
    gw = await launch(config)
    await bot.wait_polling(20)
    async with ws_client(gw.url, gw.token) as client:
        llm.push(Reply("HEARTBEAT_OK"))
        wake = {"mode": "now", "text": "Build 512 finished: green"}
        validate("WakeParams", wake)
        assert await client.call("wake", wake) == {"ok": True}
        quiet = await client.wait_event(is_heartbeat("ok-token"), timeout=30)
        assert quiet["payload"]["silent"] is True and quiet["payload"]["channel"] == "telegram"
        # the heartbeat turn got the checklist prompt and the queued event
        first = user_texts(llm, 0)
        assert "Read HEARTBEAT.md" in first and "System: [" in first
        assert "Build 512 finished: green" in first

        llm.push(Reply("The build on main is red since 10:02."))
        await client.call("wake", {"mode": "now", "text": "Build 513 finished: red"})
        [alert] = await bot.wait_sent(1, timeout=30)
        assert alert.chat_id == "4242"
        assert alert.text == "The build on main is red since 10:02."
        sent = await client.wait_event(is_heartbeat("sent"), timeout=10)
        assert sent["payload"]["to"] == "4242" and sent["payload"]["indicatorType"] == "alert"
        last = await client.call("last-heartbeat")
        assert last == sent["payload"]
        assert len(bot.sent) == 1  # the HEARTBEAT_OK run before it sent nothing
        assert len(llm.requests) == 2


async def test_empty_checklist_skips_without_calling_the_model(
    home: Path, llm: FakeOpenAI, launch: Any, run_moltbot: Any
) -> None:
    from tests.fakes.llm_openai import openai_config

    config = {**openai_config(llm.base_url), "agents": heartbeat(every="1s")}
    gw = await launch(config)  # the workspace template's HEARTBEAT.md is comments only
    async with ws_client(gw.url, gw.token) as client:
        skipped = await client.wait_event(is_heartbeat("skipped"), timeout=30)
        assert skipped["payload"]["reason"] == "empty-heartbeat-file"
        assert llm.requests == []

        # `moltbot system ...`: switch heartbeats off and on, read the last one
        off = await run_cli(run_moltbot, "--profile", "main", "system", "heartbeat", "disable")
        assert json.loads(off.stdout) == {"ok": True, "enabled": False}, off.stderr
        last = await run_cli(run_moltbot, "--profile", "main", "system", "heartbeat", "last")
        assert json.loads(last.stdout)["reason"] == "empty-heartbeat-file"

        # with heartbeats off, a wake queues the event; the next message carries it
        event = await run_cli(
            run_moltbot,
            "--profile",
            "main",
            "system",
            "event",
            "--text",
            "Disk 91% full",
            "--mode",
            "now",
        )
        assert event.returncode == 0 and event.stdout.strip() == "ok", event.stderr
        status = await client.call("status")
        assert status["queuedSystemEvents"] == ["Disk 91% full"]
        assert status["heartbeat"]["agents"] == [
            {"agentId": "main", "enabled": True, "every": "1s", "everyMs": 1000}
        ]
        reply = await client.call(
            "agent", {"message": "anything new?", "idempotencyKey": "k1"}, timeout=30
        )
        assert reply["status"] == "accepted"
        await client.wait_event(
            lambda f: f["event"] == "chat" and f["payload"]["state"] == "final", timeout=30
        )
        assert "System: [" in user_texts(llm, 0) and "Disk 91% full" in user_texts(llm, 0)
        assert (await client.call("status"))["queuedSystemEvents"] == []
        on = await run_cli(run_moltbot, "--profile", "main", "system", "heartbeat", "enable")
        assert json.loads(on.stdout)["enabled"] is True


async def test_main_cron_job_wakes_the_heartbeat_now(
    home: Path, llm: FakeOpenAI, fake_telegram: FakeTelegram, launch: Any
) -> None:
    bot = fake_telegram.bot(BOT_TOKEN)
    config = telegram_config(
        llm, fake_telegram, agents=heartbeat(every="1h", target="telegram", to="777")
    )
    gw = await launch(config)
    await bot.wait_polling(20)
    llm.push(Reply("Reminder: water the plants."))
    async with ws_client(gw.url, gw.token) as client:
        job = await client.call(
            "cron.add",
            {
                "name": "plants",
                "schedule": {"kind": "every", "everyMs": 3_600_000},
                "sessionTarget": "main",
                "wakeMode": "now",
                "payload": {"kind": "systemEvent", "text": "Time to water the plants"},
            },
        )
        assert await client.call("cron.run", {"id": job["id"], "mode": "force"}) == {
            "ok": True,
            "ran": True,
        }
        [message] = await bot.wait_sent(1, timeout=30, chat_id=777)
        assert message.text == "Reminder: water the plants."
        assert "Time to water the plants" in user_texts(llm, 0)
        [entry] = (await client.call("cron.runs", {"id": job["id"]}))["entries"]
        assert entry["status"] == "ok" and entry["summary"] == "Time to water the plants"


async def test_last_route_is_the_chat_the_agent_last_talked_in(
    home: Path, llm: FakeOpenAI, fake_telegram: FakeTelegram, launch: Any
) -> None:
    bot = fake_telegram.bot(BOT_TOKEN)
    config = telegram_config(llm, fake_telegram, agents=heartbeat(every="1h"))
    config["channels"]["telegram"].update(dmPolicy="allowlist", allowFrom=["4242"])
    gw = await launch(config)
    await bot.wait_polling(20)
    async with ws_client(gw.url, gw.token) as client:
        # before anyone talked to the agent there is no "last" chat: nothing is sent
        llm.push(Reply("Nobody to tell."))
        await client.call("wake", {"mode": "now", "text": "first"})
        nowhere = await client.wait_event(is_heartbeat("skipped"), timeout=30)
        assert nowhere["payload"]["reason"] == "no-last-route"

        llm.push(Reply("Hi Ann."))
        await bot.push_dm(4242, "hello")
        [answer] = await bot.wait_sent(1, timeout=30)
        assert answer.text == "Hi Ann."
        sessions = json.loads((gw.state_dir / "agents/main/sessions/sessions.json").read_text())
        main = sessions["agent:main:main"]
        assert (main["lastChannel"], main["lastTo"]) == ("telegram", "4242")

        llm.push(Reply("Your package arrived."))
        await client.call("wake", {"mode": "now", "text": "Doorbell camera: a parcel"})
        sent = await bot.wait_sent(2, timeout=30)
        assert (sent[1].chat_id, sent[1].text) == ("4242", "Your package arrived.")
        job = await client.call(
            "cron.add",
            {
                "name": "nightly",
                "schedule": {"kind": "every", "everyMs": 86_400_000},
                "sessionTarget": "isolated",
                "wakeMode": "next-heartbeat",
                "payload": {"kind": "agentTurn", "message": "nightly summary", "deliver": True},
            },
        )
        llm.push(Reply("All quiet tonight."))
        assert (await client.call("cron.run", {"id": job["id"], "mode": "force"}))["ran"] is True
        sent = await bot.wait_sent(3, timeout=30)
        assert (sent[2].chat_id, sent[2].text) == ("4242", "All quiet tonight.")
