"""The rescue bot repairs the main bot from a Telegram chat — with no working model.

Real processes: the main gateway, the rescue gateway (with its Telegram channel on the
stand-in Bot API server, driven by the real python-telegram-bot), the CLI for pairing.
Main's config is broken by a hand edit and main is restarted, so it exits 78 and stays
down; an owner repairs it with ``/rescue`` commands; a paired non-owner and ungranted
targets are refused; the audit log has every step; nothing of the rescue instance's own
state is touched.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from typing import Any

from tests.channels.channel_helpers import run_cli
from tests.fakes.telegram import FakeBot, FakeTelegram
from tests.rescue.rescue_helpers import BROKEN_LINE, Host, audit, dead_model, steps

from gateway_harness import ws_client

OWNER, STRANGER = 4242, 5555
WITH_CHANNELS = {"CLAWDBOT_SKIP_BROWSER_CONTROL_SERVER": "1", "CLAWDBOT_SKIP_CANVAS_HOST": "1"}


async def say(bot: FakeBot, user: int, text: str, *, timeout: float = 60) -> str:
    """Send ``text`` as ``user`` and return the bot's next reply to that chat."""
    before = len([s for s in bot.sent if s.chat_id == str(user)])
    await bot.push_dm(
        user,
        text,
        first_name="Ann" if user == OWNER else "Bob",
        username="ann" if user == OWNER else "bob",
    )
    sent = await bot.wait_sent(before + 1, timeout=timeout, chat_id=user)
    return sent[before].text


async def test_an_owner_repairs_main_from_telegram_without_a_model(
    host: Host, fake_telegram: FakeTelegram, run_moltbot: Any
) -> None:
    bot = fake_telegram.bot("777:rescue-token", username="rescue_bot")
    main_cfg = host.write("main")
    host.write("other")
    host.write(
        "rescue",
        {
            "rescue": {"targets": ["main"], "owners": {"telegram": [str(OWNER)]}},
            "channels": {
                "telegram": {
                    "botToken": "777:rescue-token",
                    "apiRoot": fake_telegram.url,
                    "pollTimeoutSeconds": 1,
                    "allowFrom": [str(OWNER)],
                }
            },
            **dead_model(),
        },
    )
    main = await asyncio.to_thread(host.start, "main")
    main_token = main.token
    rescue = await asyncio.to_thread(host.start, "rescue", WITH_CHANNELS)
    await bot.wait_polling(30)
    rescue_config = host.config_path("rescue").read_bytes()
    rescue_state = sorted(p.name for p in host.state("rescue").iterdir())

    # main runs; a hand edit breaks its config; restarted, it exits 78 and stays down
    await asyncio.to_thread(main.stop)
    line, column = host.break_config("main")
    assert await asyncio.to_thread(host.fail_to_start, "main") == 78
    broken = main_cfg.read_bytes()

    # no model works here: the provider is down (and its key stale)
    ordinary = await say(bot, OWNER, "hello, are you there?")
    assert "/rescue" not in ordinary and ("error" in ordinary.lower() or "⚠" in ordinary), ordinary

    status = await say(bot, OWNER, "/rescue status main")
    assert status.startswith("main: DOWN (last exit 78)"), status
    assert f"{main_cfg}:{line}:{column}" in status

    diff = await say(bot, OWNER, "/rescue config diff main")
    assert '-    "mode": "local",' in diff and f"+{BROKEN_LINE}" in diff
    assert main_token not in diff

    question = await say(bot, OWNER, "/rescue config restore main")
    assert question.startswith("Confirm: restore the config of main to last good"), question
    assert main_cfg.read_bytes() == broken  # nothing happens before the answer
    done = await say(bot, OWNER, "yes")
    assert "done" in done and "valid" in done and "/rescue restart main" in done, done
    assert b"oops" not in main_cfg.read_bytes()

    question = await say(bot, OWNER, "/rescue restart main")
    code = re.search(r"Reply yes or (\d{6}) within", question)
    assert code, question
    restarted = await say(bot, OWNER, code.group(1), timeout=120)
    assert "restarted: answers health" in restarted, restarted
    async with ws_client(f"ws://127.0.0.1:{host.ports['main']}", main_token) as client:
        assert (await client.call("health"))["ok"] is True

    # a stranger, even once paired, is not an owner
    pairing = await say(bot, STRANGER, "hello")
    pairing_code = pairing.split("Pairing code: ")[1].split()[0]
    approved = await run_cli(
        run_moltbot, "--profile", "rescue", "pairing", "approve", "telegram", pairing_code
    )
    assert approved.returncode == 0, approved.stderr
    refused = await say(bot, STRANGER, "/rescue restart main")
    assert refused.startswith("Not allowed: only the owners in rescue.owners.telegram"), refused
    refused_yes = await say(bot, STRANGER, "/rescue confirm 123456")
    assert refused_yes.startswith("Not allowed"), refused_yes

    # targets it was not granted, and itself
    other = await say(bot, OWNER, "/rescue status other")
    assert other.startswith("Refused: profile other is not a rescue target"), other
    itself = await say(bot, OWNER, "/rescue restart rescue")
    assert "this instance itself" in itself, itself
    helped = await say(bot, OWNER, "/rescue help")
    assert "/rescue status main" in helped and "Targets: main" in helped
    trail = await say(bot, OWNER, "/rescue audit 2")
    assert trail.splitlines()[0] == "audit: last 2 of 12 step(s)", trail
    assert trail.splitlines()[-1].endswith("restart rescue: refused (chat, telegram:4242 (Ann))")
    not_yours = await say(bot, STRANGER, "/rescue audit")
    assert not_yours.startswith("Not allowed"), not_yours

    assert steps(audit(host)) == [
        ("status", "main", "ok"),
        ("config diff", "main", "ok"),
        ("config restore", "main", "asked"),
        ("config restore", "main", "confirmed"),
        ("config restore", "main", "applied"),
        ("restart", "main", "asked"),
        ("restart", "main", "confirmed"),
        ("restart", "main", "applied"),
        ("restart", "main", "refused"),
        ("-", "-", "refused"),
        ("status", "other", "refused"),
        ("restart", "rescue", "refused"),
        ("-", "-", "refused"),  # the stranger's /rescue audit
    ]
    entries = audit(host)
    assert {e["actor"] for e in entries[:8]} == {"telegram:4242 (Ann)"}
    assert entries[8]["actor"] == "telegram:5555 (Bob)"
    restore = entries[4]
    assert restore["before"] == hashlib.sha256(broken).hexdigest()
    assert restore["after"] == hashlib.sha256(main_cfg.read_bytes()).hexdigest()

    # nothing of the rescue instance's own state was touched: its config and config
    # history are as they were; new are only its audit log, the pairing approval, its
    # Telegram update offset and the chat's transcript (commands are kept there, as
    # every chat command is, out of model context)
    assert host.config_path("rescue").read_bytes() == rescue_config
    new = {p.name for p in host.state("rescue").iterdir()} - set(rescue_state)
    assert new == {"rescue", "credentials", "telegram", "agents"}
    assert not (host.state("rescue") / "config-history" / "index.jsonl").exists()
    assert rescue.proc.poll() is None
