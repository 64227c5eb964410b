"""Channels at scale: inbound Telegram messages per second through access control,
routing and the agent queue to the stand-in model, with 1, 10 and 100 chats at once.

A real gateway subprocess polls the stand-in Telegram Bot API (tests/fakes, in this
process) with python-telegram-bot; its model is the OpenAI-compatible stand-in (its
own process), answering ``echo: <text>`` after :data:`MODEL_DELAY` seconds, as a model
takes its time. All messages are queued before the clock starts; it stops when every
message has its answer. Each chat's answers must come back in the order its messages
were sent (checked, not assumed). Each chat is its own session
(``session.dmScope: per-channel-peer``): with one chat the turns run one after another;
with more, up to ``agents.defaults.maxConcurrent`` (4) run at once, so the rate should
rise until the CPU is the limit. The gateway's own CPU time per message is the cost that a
busy machine does not distort.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

import psutil

from _harness import ROOT, Result, fresh_home

TITLE = "Channels at scale: Telegram messages through access control, routing, agents"
ORDER = 43

CHATS = (1, 10, 100)
MESSAGES = 200
TOKEN = "555:bench"
CORE_ONLY = {"CLAWDBOT_SKIP_BROWSER_CONTROL_SERVER": "1", "CLAWDBOT_SKIP_CANVAS_HOST": "1"}
NUMBER = re.compile(r"m(\d+)c")
MODEL_DELAY = 0.05
MAX_CONCURRENT = 4


def write_config(home: Path, llm_port: int, telegram_url: str) -> None:
    from agents import write_config as write_agent_config

    write_agent_config(home, f"http://127.0.0.1:{llm_port}/v1", MAX_CONCURRENT)
    path = home / ".clawdbot-bench" / "moltbot.json"
    config = json.loads(path.read_text())
    # each chat its own session (the default, `main`, puts every DM in one session,
    # whose turns run one after another whatever the number of chats)
    config["session"] = {"dmScope": "per-channel-peer"}
    config["channels"] = {
        "telegram": {
            "botToken": TOKEN,
            "apiRoot": telegram_url,
            "pollTimeoutSeconds": 1,
            "dmPolicy": "open",
            "allowFrom": ["*"],
        }
    }
    path.write_text(json.dumps(config))


async def one_round(chats: int, llm_port: int) -> dict[str, Any]:
    from fakes.telegram import FakeTelegram
    from gateway_harness import start_gateway

    fake = FakeTelegram()
    await fake.start()
    bot = fake.bot(TOKEN)
    try:
        with fresh_home() as home:
            write_config(home, llm_port, fake.url)
            gw = await asyncio.to_thread(start_gateway, home, "bench", env=CORE_ONLY, timeout=60)
            try:
                await bot.wait_polling(30)
                await bot.push_dm(1, "warm up m999999c0")  # the first turn loads the SDK
                await _until(lambda: len(bot.sent) >= 1, 60)
                bot.sent.clear()
                per_chat = MESSAGES // chats
                gateway = psutil.Process(gw.proc.pid)
                cpu = sum(gateway.cpu_times()[:2])
                started = time.perf_counter()
                for n in range(per_chat):
                    for chat in range(chats):
                        await bot.push_dm(100 + chat, f"message m{n}c{chat}")
                await _until(lambda: _answered(bot, chats) >= per_chat * chats, 300)
                elapsed = time.perf_counter() - started
                cpu = sum(gateway.cpu_times()[:2]) - cpu
                ordered = _in_order(bot, chats, per_chat)
            finally:
                await asyncio.to_thread(gw.stop)
    finally:
        await fake.stop()
    return {"elapsed": elapsed, "messages": per_chat * chats, "ordered": ordered, "cpu": cpu}


def _answers(bot: Any, chat: int) -> list[int]:
    numbers: list[int] = []
    for sent in bot.sent:
        if sent.chat_id == str(100 + chat):
            numbers += [int(n) for n in NUMBER.findall(sent.text)]
    return numbers


def _answered(bot: Any, chats: int) -> int:
    return sum(len(_answers(bot, chat)) for chat in range(chats))


def _in_order(bot: Any, chats: int, per_chat: int) -> bool:
    return all(_answers(bot, chat) == list(range(per_chat)) for chat in range(chats))


async def _until(predicate: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("not every message was answered in time")
        await asyncio.sleep(0.01)


def run() -> list[Result]:
    import subprocess

    from agents import FAKE_SERVER

    llm = subprocess.Popen(
        [sys.executable, "-c", FAKE_SERVER, str(ROOT), str(MODEL_DELAY)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert llm.stdout is not None
        port = int(llm.stdout.readline())
        results = {chats: asyncio.run(one_round(chats, port)) for chats in CHATS}
    finally:
        assert llm.stdin is not None
        llm.stdin.close()
        llm.wait(10)
    rows = []
    for chats, got in results.items():
        rate = got["messages"] / got["elapsed"]
        rows.append(
            Result(
                name=f"inbound Telegram messages/s, {chats} chat{'s' if chats > 1 else ''}",
                value=round(rate, 1),
                unit="msg/s",
                note=f"{got['messages']} DMs answered in {got['elapsed']:.2f} s; per-chat order "
                f"{'kept' if got['ordered'] else 'BROKEN'}; model {MODEL_DELAY * 1000:.0f} ms "
                f"per reply, a session per chat, maxConcurrent {MAX_CONCURRENT}; target: rises "
                f"with chats up to {MAX_CONCURRENT}× one chat's while the CPU allows, order kept",
            )
        )
        rows.append(
            Result(
                name=f"gateway CPU per message, {chats} chat{'s' if chats > 1 else ''}",
                value=round(got["cpu"] / got["messages"] * 1000, 2),
                unit="ms",
                note="the gateway process's user+system time over the round / messages: "
                "poll, access control, routing, queue, turn, reply; target: flat in the chats",
            )
        )
    return rows
