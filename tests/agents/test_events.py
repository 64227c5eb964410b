"""Assistant output is coalesced, never lost: deltas the model produced before the
event loop got a turn go out as one ``agent`` event, in order, with gap-free ``seq``.

End to end: a real gateway subprocess whose model (the stand-in OpenAI server)
sends its chunks in one write (``Reply(burst=True)``), as a provider or proxy that
buffered them; the gateway reads them at once. The unit tests drive
:class:`RunEvents` on a real event loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid

import aiohttp
from tests.agents.conftest import Events
from tests.agents.gateway_agents import agent_events, chat_events, is_chat
from tests.fakes.llm_openai import openai_config
from tests.fakes.llm_script import Reply

from gateway_harness import ws_client
from moltbot.agents.events import PACE_FROM_S, RunEvents
from moltbot.agents.run import Run

FIRST = "Let me look that up in the notes file. " * 8
SECOND = "Found it: the lobster is on the list, next to the butter. " * 8


def deltas(events: list[dict]) -> str:
    return "".join(e["data"]["delta"] for e in events if e["stream"] == "assistant")


def assert_gap_free(events: list[dict]) -> None:
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))


async def test_buffered_model_chunks_go_out_as_one_event_losing_nothing(home, llm, gateways):
    gw = gateways(home, openai_config(llm.base_url))
    reply = Reply(FIRST, chunk_chars=5, burst=True)
    llm.push(reply)
    async with ws_client(gw.url, gw.token, client_id="webchat-ui", mode="webchat") as client:
        ack = await client.call(
            "chat.send",
            {"sessionKey": "main", "message": "where?", "idempotencyKey": str(uuid.uuid4())},
        )
        await client.wait_event(is_chat(ack["runId"], "final"), timeout=20)
        await client.call("health")  # barrier: every event of the run has arrived
        events = agent_events(client, ack["runId"])
    assistant = [e for e in events if e["stream"] == "assistant"]
    chunks = -(-len(FIRST) // 5)
    assert 1 <= len(assistant) < chunks  # on an unchanged gateway: one event per chunk
    assert deltas(events) == FIRST == assistant[-1]["data"]["text"]
    for event in assistant:  # each event's text is the reply so far
        assert FIRST.startswith(event["data"]["text"]) and event["data"]["text"].endswith(
            event["data"]["delta"]
        )
    assert_gap_free(events)
    assert [e["stream"] for e in events] == [
        "lifecycle",
        *["assistant"] * len(assistant),
        "lifecycle",
    ]


async def test_order_kept_around_tool_events_and_chat_final(home, llm, gateways):
    gw = gateways(home, openai_config(llm.base_url))
    (home / "clawd-main").mkdir(exist_ok=True)
    (home / "clawd-main" / "notes.md").write_text("- lobster\n- butter\n")
    llm.push(
        Reply(FIRST, chunk_chars=4, burst=True, tool_calls=[("read", {"path": "notes.md"})]),
        Reply(SECOND, chunk_chars=4, burst=True),
    )
    async with ws_client(gw.url, gw.token, client_id="webchat-ui", mode="webchat") as client:
        ack = await client.call(
            "chat.send",
            {"sessionKey": "main", "message": "lobster?", "idempotencyKey": str(uuid.uuid4())},
        )
        final = await client.wait_event(is_chat(ack["runId"], "final"), timeout=20)
        await client.call("health")
        run_frames = [
            f
            for f in client.events
            if f["event"] in ("agent", "chat") and f["payload"]["runId"] == ack["runId"]
        ]
        events = agent_events(client, ack["runId"])
        chats = chat_events(client, ack["runId"])
    text = final["payload"]["message"]["content"][0]["text"]
    assert text == FIRST + "\n\n" + SECOND
    assert deltas(events) == text  # the paragraph break is part of a delta too
    assert_gap_free(events)
    assert [c["seq"] for c in chats] == list(range(1, len(chats) + 1))
    streams = [(e["stream"], e["data"].get("phase")) for e in events]
    tool_at = streams.index(("tool", "start"))
    assert streams[0] == ("lifecycle", "start") and streams[-1] == ("lifecycle", "end")
    assert streams[tool_at + 1] == ("tool", "result")
    before, after = events[1:tool_at], events[tool_at + 2 : -1]
    assert before and all(e["stream"] == "assistant" for e in before)
    assert after and all(e["stream"] == "assistant" for e in after)
    assert deltas(before) == FIRST and before[-1]["data"]["text"] == FIRST
    assert after[-1]["data"]["text"] == text
    kinds = [
        (f["event"], f["payload"].get("stream") or f["payload"].get("state")) for f in run_frames
    ]
    last_text = max(i for i, k in enumerate(kinds) if k == ("agent", "assistant"))
    assert kinds.index(("chat", "final")) > last_text


async def test_openai_stream_gets_the_same_text_as_the_answer(home, llm, gateways):
    """The in-process watchers (the OpenAI-compatible SSE stream) get the coalesced
    events too: the streamed pieces add up to the reply, paragraph break included."""
    from tests.gateway.http.conftest import api_config

    gw = gateways(home, api_config(llm))
    (home / "clawd-main").mkdir(exist_ok=True)
    (home / "clawd-main" / "notes.md").write_text("- lobster\n")
    llm.push(
        Reply(FIRST, chunk_chars=4, burst=True, tool_calls=[("read", {"path": "notes.md"})]),
        Reply(SECOND, chunk_chars=4, burst=True),
    )
    body = {"model": "moltbot", "stream": True, "messages": [{"role": "user", "content": "?"}]}
    pieces: list[str] = []
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{gw.http}/v1/chat/completions",
            json=body,
            headers={"Authorization": f"Bearer {gw.token}"},
        ) as response,
    ):
        assert response.status == 200
        async for line in response.content:
            if line.startswith(b"data: {"):
                for choice in json.loads(line[6:])["choices"]:
                    pieces.append(choice["delta"].get("content") or "")
    assert "".join(pieces) == FIRST + "\n\n" + SECOND


# ---- RunEvents on a real event loop --------------------------------------------------------


def a_run() -> Run:
    return Run(id="r1", agent_id="main", session_key="agent:main:main", message="hi", timeout=60)


async def test_a_lone_delta_goes_out_at_the_next_turn_of_the_loop():
    sent = Events()
    events, run = RunEvents(sent, logging.getLogger("test")), a_run()
    for piece in ("one ", "two ", "three"):
        events.text(run, piece)
        await asyncio.sleep(0)  # the loop gets a turn: no timer holds a delta back
        assert sent.agent(stream="assistant")[-1]["data"]["delta"] == piece
    assert [p["seq"] for p in sent.agent()] == [1, 2, 3]


async def test_deltas_added_in_one_turn_are_one_event_flushed_before_any_other():
    sent = Events()
    events, run = RunEvents(sent, logging.getLogger("test")), a_run()
    events.started(run)
    events.text(run, "a")
    events.text(run, "b")
    assert [p["stream"] for p in sent.agent()] == ["lifecycle"]  # not yet: same turn
    await asyncio.sleep(0)
    events.text(run, "c")
    events.text(run, "d")
    run.new_segment = True
    events.text(run, "e")
    run.state = run.state.OK
    events.finished(run)  # flushes "cd\n\ne" first, then final and lifecycle end
    agent = sent.agent()
    assert [(p["stream"], p["data"].get("delta")) for p in agent] == [
        ("lifecycle", None),
        ("assistant", "ab"),
        ("assistant", "cd\n\ne"),
        ("lifecycle", None),
    ]
    assert agent[2]["data"]["text"] == run.text == "abcd\n\ne"
    assert [p["seq"] for p in agent] == [1, 2, 3, 4]
    order = [(e, p.get("stream") or p.get("state")) for e, p in sent.items]
    assert order.index(("agent", "assistant")) < order.index(("chat", "final"))
    await asyncio.sleep(0)  # the cancelled flush sends nothing more
    assert len(sent.agent()) == 4


async def test_after_a_costly_event_the_next_waits_as_long_gathering_output():
    """An event whose sending cost more CPU than PACE_FROM_S (a broadcast to a
    thousand clients) is followed by a pause as long: the run takes at most half of
    the gateway, and what the model writes meanwhile goes out as one event."""
    loop = asyncio.get_running_loop()
    sends: list[tuple[float, float, str]] = []

    def costly(event, payload, **_kw):
        if event == "agent" and payload["stream"] == "assistant":
            start, cpu = loop.time(), time.thread_time()
            while time.thread_time() - cpu < 10 * PACE_FROM_S:
                pass
            sends.append((start, loop.time(), payload["data"]["delta"]))

    events, run = RunEvents(costly, logging.getLogger("test")), a_run()
    events.text(run, "a")
    await asyncio.sleep(0)
    assert [delta for *_, delta in sends] == ["a"]
    events.text(run, "b")
    await asyncio.sleep(0)
    events.text(run, "c")
    while "".join(delta for *_, delta in sends) != "abc":
        await asyncio.sleep(0.005)
    (_, first_end, _), (second_start, _, second) = sends[0], sends[1]
    assert second_start - first_end >= 10 * PACE_FROM_S  # not at the next turn
    assert second.startswith("b")


async def test_reset_sends_the_unsent_output_before_taking_it_back():
    sent = Events()
    events, run = RunEvents(sent, logging.getLogger("test")), a_run()
    events.text(run, "partial")
    events.text_reset(run, "")
    await asyncio.sleep(0)
    assert [(p["data"]["delta"], p["data"].get("reset")) for p in sent.agent()] == [
        ("partial", None),
        ("", True),
    ]


async def test_an_abort_during_a_pause_sends_the_held_output_then_ends_at_once():
    """Output held back by the pause after a costly event goes out when the run is
    aborted, before its ``aborted`` events, without waiting for the pause; no timer is
    left behind, and a watcher that raises stops none of it."""
    sent = Events()

    def costly(event, payload, **kw):
        if event == "agent" and payload["stream"] == "assistant" and not sent.agent():
            cpu = time.thread_time()
            while time.thread_time() - cpu < 2 * PACE_FROM_S:
                pass
        sent(event, payload, **kw)

    def broken_watcher(event, payload):
        raise RuntimeError("a watcher that fails")

    events, run = RunEvents(costly, logging.getLogger("test")), a_run()
    run.watchers.append(broken_watcher)
    run.next_text_at = 0.0
    events.text(run, "first ")
    await asyncio.sleep(0)
    assert run.next_text_at > asyncio.get_running_loop().time()  # a pause was set
    run.next_text_at += 3600  # as if the send had taken an hour: the pause must not hold
    events.text(run, "held")
    await asyncio.sleep(0)
    assert [p["data"]["delta"] for p in sent.agent(stream="assistant")] == ["first "]
    run.state, run.abort_reason = run.state.ABORTED, "user"
    events.finished(run)
    agent = sent.agent()
    assert [(p["stream"], p["data"].get("delta")) for p in agent] == [
        ("assistant", "first "),
        ("assistant", "held"),
        ("lifecycle", None),
    ]
    assert agent[-1]["data"]["status"] == "aborted"
    assert [p["state"] for p in sent.chat()][-1] == "aborted"
    assert run.text_handle is None and run.flush_handle is None
