"""Zero lost turns under change: config reloads, restarts and crashes mid-turn, end to
end with a real gateway subprocess and a stand-in model whose replies stream slowly."""

from __future__ import annotations

import asyncio
import json
import signal
import time
import uuid
from pathlib import Path
from typing import Any

from tests.agents.gateway_agents import is_chat, write_config
from tests.fakes.llm_openai import FakeOpenAI, openai_config
from tests.fakes.llm_script import Reply

from gateway_harness import (
    CORE_ONLY,
    ConnectRefused,
    GatewayProcess,
    MethodFailed,
    WsClient,
    launch_gateway,
    ws_client,
)

SLOW = "slowly streamed words " * 40  # 880 chars: 220 chunks of 4


def slow(delay: float = 0.02) -> Reply:
    return Reply(SLOW, chunk_chars=4, chunk_delay=delay)


async def send(client: WsClient, text: str, session: str = "main") -> dict[str, Any]:
    params = {"sessionKey": session, "message": text, "idempotencyKey": str(uuid.uuid4())}
    return await client.call("chat.send", params)  # type: ignore[no-any-return]


def text_of(frame: dict[str, Any]) -> str:
    return str(frame["payload"]["message"]["content"][0]["text"])


def texts(message: dict[str, Any]) -> str:
    """A ``chat.history`` message's text."""
    content = message["content"]
    return content if isinstance(content, str) else str(content[0]["text"])


async def wait_log(gw: GatewayProcess, needle: str, timeout: float = 15.0) -> None:
    await gw.wait_output(needle, timeout)


def patch_config(gw: GatewayProcess, mutate: Any) -> None:
    """Change the config file as an outside writer would (the gateway watches it)."""
    path = gw.state_dir / "moltbot.json"
    data = json.loads(path.read_text())
    mutate(data)
    path.write_text(json.dumps(data, indent=2))


async def answered(gw: GatewayProcess, text: str) -> str:
    """Send ``text`` to the (maybe just restarted) gateway; the final reply."""
    deadline = time.monotonic() + 20
    while True:
        try:
            async with ws_client(gw.url, gw.token) as client:
                ack = await send(client, text)
                return text_of(await client.wait_event(is_chat(ack["runId"], "final"), 15))
        except (OSError, ConnectRefused, ConnectionError) as exc:
            if time.monotonic() > deadline:
                raise AssertionError(f"gateway not back: {exc}") from exc
            await asyncio.sleep(0.05)
        except MethodFailed as exc:  # still draining: it says when to come back
            if not exc.error.get("retryable") or time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


async def test_config_change_mid_stream_keeps_the_turn(home: Path, llm: FakeOpenAI, gateways):
    gw = gateways(home, openai_config(llm.base_url))
    llm.push(slow())
    async with ws_client(gw.url, gw.token) as client:
        ack = await send(client, "tell me a story")
        await client.wait_event(is_chat(ack["runId"], "delta"), timeout=10)
        # an unrelated key: the provider's client must not even be touched
        patch_config(gw, lambda d: d["agents"]["defaults"].update(timeoutSeconds=900))
        await wait_log(gw, "applied config change live: agents.defaults.timeoutSeconds")
        # the provider itself changes: its client is retired, not closed under the run
        patch_config(
            gw,
            lambda d: d["models"]["providers"]["fake"].update(headers={"X-Reloaded": "1"}),
        )
        await wait_log(gw, "applied config change live: models.providers.fake.headers")
        assert llm.active == 1  # still streaming the first answer
        final = await client.wait_event(is_chat(ack["runId"], "final"), timeout=30)
        assert text_of(final) == SLOW
        # the next message is answered at once, through the new client
        nxt = await send(client, "and now?")
        final = await client.wait_event(is_chat(nxt["runId"], "final"), timeout=10)
        assert text_of(final) == "echo: and now?"
        assert llm.requests[-1]["headers"].get("x-reloaded") == "1"
        assert "x-reloaded" not in llm.requests[0]["headers"]
        status = await client.call("status")
        assert status["subsystems"]["agents"]["cooldowns"] == {}
    assert "cooling down" not in gw.output()
    assert "model fake/m1 failed" not in gw.output()


async def test_message_the_moment_hello_ok_arrives(home: Path, llm: FakeOpenAI):
    write_config(home, "main", openai_config(llm.base_url))
    llm.push(slow(0.04))
    port = _free_base()
    proc, log_path = launch_gateway(home, "main", port=port, env=CORE_ONLY)
    token = json.loads((home / ".clawdbot-main" / "moltbot.json").read_text())["gateway"]["auth"][
        "token"
    ]
    gw = GatewayProcess(proc, home, "main", home / ".clawdbot-main", port, token, log_path)
    try:
        client_cm: Any = None
        deadline = time.monotonic() + 30
        while client_cm is None:
            try:
                client_cm = ws_client(gw.url, token)
                client = await client_cm.__aenter__()
            except (TimeoutError, OSError, ConnectRefused):
                client_cm = None
                assert time.monotonic() < deadline, gw.output()
                await asyncio.sleep(0.01)
        try:
            ack = await send(client, "first words")
            # another writer touches the config while the very first reply streams
            await client.wait_event(is_chat(ack["runId"], "delta"), timeout=20)
            patch_config(gw, lambda d: d.setdefault("meta", {}).update(lastTouchedAt="now"))
            await wait_log(gw, "applied config change live: meta")
            assert llm.active == 1  # the reload landed while the first reply streams
            final = await client.wait_event(is_chat(ack["runId"], "final"), timeout=20)
            assert text_of(final) == SLOW
            nxt = await send(client, "second words")
            final = await client.wait_event(is_chat(nxt["runId"], "final"), timeout=10)
            assert text_of(final) == "echo: second words"
            status = await client.call("status")
            assert status["subsystems"]["agents"]["cooldowns"] == {}
        finally:
            await client_cm.__aexit__(None, None, None)
    finally:
        gw.stop()
    assert "cooling down" not in gw.output()


async def test_sigusr1_mid_turn_drains(home: Path, llm: FakeOpenAI, gateways):
    gw = gateways(home, openai_config(llm.base_url))
    llm.push(slow(0.01))
    async with ws_client(gw.url, gw.token) as client:
        ack = await send(client, "finish this first")
        await client.wait_event(is_chat(ack["runId"], "delta"), timeout=10)
        gw.signal(signal.SIGUSR1)
        await wait_log(gw, "waiting up to 30s for 1 agent run(s) to finish")
        # during the drain a new message is refused, retryable, and recorded nowhere
        frame = await client.request(
            "chat.send",
            {"sessionKey": "main", "message": "too early", "idempotencyKey": "early"},
        )
        assert not frame["ok"] and frame["error"]["code"] == "UNAVAILABLE"
        assert frame["error"]["retryable"] is True and frame["error"]["retryAfterMs"] > 0
        final = await client.wait_event(is_chat(ack["runId"], "final"), timeout=30)
        assert text_of(final) == SLOW
        shutdown = await client.wait_event(lambda f: f["event"] == "shutdown", timeout=10)
        assert shutdown["payload"]["reason"] == "gateway restarting"
        assert [f["event"] for f in client.events].index("shutdown") > client.events.index(final)
    assert await answered(gw, "after the restart") == "echo: after the restart"
    async with ws_client(gw.url, gw.token) as client:
        history = await client.call("chat.history", {"sessionKey": "main"})
    assert [texts(m) for m in history["messages"]] == [
        "finish this first",
        SLOW,
        "after the restart",
        "echo: after the restart",
    ]


async def test_sigusr1_past_the_grace_period_aborts_cleanly(home: Path, llm: FakeOpenAI, gateways):
    config = openai_config(llm.base_url)
    config["gateway"] = {"restartGraceSeconds": 0.3}
    gw = gateways(home, config)
    llm.push(Reply(SLOW * 20, chunk_chars=4, chunk_delay=0.02))  # ~70 s: never in time
    async with ws_client(gw.url, gw.token) as client:
        ack = await send(client, "a long one")
        await client.wait_event(is_chat(ack["runId"], "delta"), timeout=10)
        gw.signal(signal.SIGUSR1)
        aborted = await client.wait_event(is_chat(ack["runId"], "aborted"), timeout=15)
        assert aborted["payload"]["errorMessage"] == "aborted: gateway restarting"
        partial = text_of(aborted)
        assert partial and (SLOW * 20).startswith(partial)
        lifecycle = await client.wait_event(
            lambda f: (
                f["event"] == "agent"
                and f["payload"]["runId"] == ack["runId"]
                and f["payload"]["data"].get("phase") == "end"
            ),
            timeout=5,
        )
        assert lifecycle["payload"]["data"]["reason"] == "gateway restarting"
    assert await answered(gw, "are you back?") == "echo: are you back?"
    async with ws_client(gw.url, gw.token) as client:
        history = await client.call("chat.history", {"sessionKey": "main"})
    user, cut, *rest = history["messages"]
    assert user["content"] == "a long one"
    assert cut["interrupted"] is True and cut["stopReason"] == "aborted"
    assert cut["errorMessage"] == "aborted: gateway restarting"
    assert cut["content"][0]["text"] == partial
    assert [m["role"] for m in rest] == ["user", "assistant"]
    # the partial reply went back to the model as context for the next turn
    sent = llm.requests[-1]["body"]["messages"]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "user"]
    assert sent[2]["content"] == partial


def _free_base() -> int:
    from gateway_harness import free_port_block

    return free_port_block()
