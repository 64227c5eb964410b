"""The agent tool ``rescue``: the rescue agent (a stand-in model) looks at its target for
an owner, proposes a repair that only the owner's own "yes" makes — answered before the
model — and refuses to act for a sender who is not an owner."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from tests.fakes.llm_openai import FakeOpenAI, openai_config
from tests.fakes.llm_script import Reply
from tests.fakes.telegram import FakeTelegram
from tests.rescue.rescue_helpers import Host, audit, steps
from tests.rescue.test_rescue_telegram_e2e import OWNER, STRANGER, WITH_CHANNELS, say


def tool_result(llm: FakeOpenAI, index: int) -> str:
    """The text of the last tool result the model got in request ``index``."""
    messages = llm.requests[index]["body"]["messages"]
    return next(m["content"] for m in reversed(messages) if m["role"] == "tool")


async def test_the_agent_tool_reads_for_owners_and_never_confirms_itself(
    host: Host, fake_telegram: FakeTelegram, llm: FakeOpenAI
) -> None:
    bot = fake_telegram.bot("778:rescue-agent", username="rescue_bot")
    main_cfg = host.write("main")
    host.write(
        "rescue",
        {
            **openai_config(llm.base_url),
            "rescue": {"targets": ["main"], "owners": {"telegram": [str(OWNER)]}},
            "session": {"dmScope": "per-peer"},
            "channels": {
                "telegram": {
                    "botToken": "778:rescue-agent",
                    "apiRoot": fake_telegram.url,
                    "pollTimeoutSeconds": 1,
                    "allowFrom": [str(OWNER), str(STRANGER)],
                }
            },
        },
    )
    await asyncio.to_thread(host.start, "main")
    host.started[-1].stop()
    host.break_config("main")
    await asyncio.to_thread(host.start, "rescue", WITH_CHANNELS)
    await bot.wait_polling(30)

    llm.push(
        Reply(tool_calls=[("rescue", {"target": "main", "op": "status"})]),
        Reply("main is down: its config is broken."),
    )
    assert await say(bot, OWNER, "how is main?") == "main is down: its config is broken."
    assert "rescue" in {t["function"]["name"] for t in llm.requests[0]["body"]["tools"]}
    assert "main: DOWN" in tool_result(llm, 1) and "INVALID at" in tool_result(llm, 1)

    llm.push(
        Reply(tool_calls=[("rescue", {"target": "main", "op": "config restore"})]),
        Reply("I can restore the last good config: reply yes."),
    )
    assert (await say(bot, OWNER, "fix it")).endswith("reply yes.")
    proposal = tool_result(llm, 3)
    assert (
        proposal.startswith("Confirm: restore the config of main") and "cannot confirm" in proposal
    )
    assert b"oops" in main_cfg.read_bytes()  # the agent made no change

    requests = len(llm.requests)
    done = await say(bot, OWNER, "yes")  # answered before the model
    assert done.startswith("main: done") and "valid" in done, done
    assert b"oops" not in main_cfg.read_bytes()
    assert len(llm.requests) == requests

    llm.push(
        Reply(tool_calls=[("rescue", {"target": "main", "op": "restart"})]),
        Reply("I am not allowed to."),
    )
    assert await say(bot, STRANGER, "restart main please") == "I am not allowed to."
    refusal = json.dumps(llm.requests[-1]["body"]["messages"][-1])
    assert "only the owners in rescue.owners.telegram" in refusal
    assert host.runtime_pid("main") is None

    assert steps(audit(host)) == [
        ("status", "main", "ok"),
        ("config restore", "main", "asked"),
        ("config restore", "main", "confirmed"),
        ("config restore", "main", "applied"),
    ]
    entries: list[dict[str, Any]] = audit(host)
    assert entries[1]["via"] == "agent" and entries[2]["via"] == "chat"
