"""The agent methods answer every failure with its class's protocol code (one error
path: no handler re-wraps the project's errors), through the protocol client."""

from __future__ import annotations

import signal

import pytest
from tests.agents.gateway_agents import start
from tests.fakes.llm_openai import openai_config
from tests.fakes.llm_script import Reply

from moltbot.errors import INVALID_REQUEST, UNAVAILABLE, MethodError
from moltbot.gateway.client import GatewayClient


async def test_agent_refused_while_draining_is_retryable(home, llm) -> None:
    gw = start(home, openai_config(llm.base_url))
    try:
        llm.push(Reply("slowly streamed words " * 40, chunk_chars=4, chunk_delay=0.02))
        async with GatewayClient(gw.url, token=gw.token, timeout=30) as client:
            events = client.events()
            first = client.stream("agent", {"message": "finish this", "idempotencyKey": "r1"})
            async for event in first:  # the run streams: the gateway must wait for it
                if event.name == "agent" and event.payload["stream"] == "assistant":
                    break
            gw.signal(signal.SIGUSR1)
            await gw.wait_output("waiting up to 30s for 1 agent run(s) to finish")
            with pytest.raises(MethodError) as refused:
                await client.call("agent", {"message": "too early", "idempotencyKey": "r2"})
            shape = refused.value.error_shape()
            assert shape["code"] == UNAVAILABLE
            assert shape["retryable"] is True and shape["retryAfterMs"] > 0
            async for event in events:  # the drained run still ends, then the restart
                if event.name == "shutdown":
                    assert event.payload["reason"] == "gateway restarting"
                    break
    finally:
        gw.stop()


async def test_agent_errors_carry_their_codes(home, llm) -> None:
    gw = start(home, openai_config(llm.base_url))
    try:
        async with GatewayClient(gw.url, token=gw.token, timeout=30) as client:
            with pytest.raises(MethodError, match="unknown agent 'ghost'") as unknown:
                await client.call(
                    "agent", {"message": "x", "idempotencyKey": "a", "agentId": "ghost"}
                )
            assert unknown.value.code == INVALID_REQUEST
            with pytest.raises(MethodError, match="invalid session key") as bad_key:
                await client.call("chat.history", {"sessionKey": "agent:BAD KEY:x"})
            assert bad_key.value.code == INVALID_REQUEST
            # as upstream: a run that never starts is a timeout, not an error
            waited = await client.call("agent.wait", {"runId": "nope", "timeoutMs": 0})
            assert waited == {"runId": "nope", "status": "timeout"}
            with pytest.raises(MethodError, match="cannot delete the main session"):
                await client.call("sessions.delete", {"key": "main"})
            with pytest.raises(MethodError, match="attachment 1: must be an object") as attached:
                await client.call(
                    "chat.send",
                    {
                        "sessionKey": "main",
                        "message": "x",
                        "idempotencyKey": "b",
                        "attachments": [1],
                    },
                )
            assert attached.value.code == INVALID_REQUEST
    finally:
        gw.stop()
