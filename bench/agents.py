"""Agents: what an agent turn costs on top of the model, and many sessions at once.

A real gateway subprocess answers ``chat.send`` over its WebSocket; its model is
the OpenAI-compatible stand-in server (tests/fakes), in a process of its own,
with a fixed first-token delay, through the real ``openai`` SDK.

- *turn overhead*: ``chat.send`` sent → first ``chat`` delta received, minus the
  stand-in's own first-token delay. It includes the WS round trip, the fsync'd
  transcript write, prompt assembly, the SDK request and the event fan-out.
- *SDK floor*: the same first-token time for a request through our OpenAI
  provider alone (the ``openai`` SDK and its HTTP client; no gateway) — the part
  of the overhead that is the HTTP client's.
- *50 sessions*: 50 sessions each send turns back to back, all at once.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp

from _harness import ROOT, Result, fresh_home

TITLE = "Agents: turn overhead and concurrent sessions"
SECTION = TITLE
ORDER = 40

FIRST_TOKEN_DELAY = 0.020  # the stand-in model's own latency, subtracted from the overhead
TURNS = 60
WARMUP = 5
SESSIONS = 50
TURNS_PER_SESSION = 4


FAKE_SERVER = """
import asyncio, sys
sys.path[:0] = [sys.argv[1], sys.argv[1] + "/tests"]
from fakes.llm_openai import FakeOpenAI
from fakes.llm_script import Reply

def summary(body):  # a compaction's summary is short, as a real model's is
    system = body["messages"][0]
    if system["role"] == "system" and "You summarise a conversation" in str(system["content"]):
        return Reply("SUMMARY: a long talk, settled.")
    return None

async def main():
    server = FakeOpenAI(api_key="sk-bench")
    server.responder = summary
    server.default_first_delay = float(sys.argv[2])
    server.default_chunk_chars = 8
    await server.start()
    print(server.port, flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await server.stop()

asyncio.run(main())
"""


class FakeProcess:
    """The stand-in OpenAI server in its own process, so it shares no CPU time or GIL
    with the measuring client (stdin closing stops it)."""

    def __enter__(self) -> FakeProcess:
        import subprocess

        self.proc = subprocess.Popen(
            [sys.executable, "-c", FAKE_SERVER, str(ROOT), str(FIRST_TOKEN_DELAY)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(5)
        except Exception:
            self.proc.kill()
            self.proc.wait(5)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def first_token_seconds(self) -> list[float]:
        """The stand-in's own time to its first token, per request so far, in order."""
        import urllib.request

        url = f"http://127.0.0.1:{self.port}/__fake__/requests"
        with urllib.request.urlopen(url, timeout=10) as response:
            return [(r["firstTokenMs"] or 0) / 1000 for r in json.load(response)]


def write_config(home: Path, base_url: str, max_concurrent: int) -> str:
    token = secrets.token_urlsafe(24)
    state = home / ".clawdbot-bench"
    state.mkdir(parents=True)
    config = {
        "gateway": {"mode": "local", "auth": {"token": token}},
        "models": {
            "providers": {
                "fake": {
                    "baseUrl": base_url,
                    "apiKey": "sk-bench",
                    "api": "openai-completions",
                    "models": [{"id": "m"}],
                }
            }
        },
        "agents": {
            "defaults": {
                "model": "fake/m",
                "workspace": str(home / "clawd-bench"),
                "maxConcurrent": max_concurrent,
            }
        },
    }
    (state / "moltbot.json").write_text(json.dumps(config))
    return token


class Client:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.waiters: dict[str, asyncio.Future[float]] = {}
        self.finals: dict[str, asyncio.Future[float]] = {}
        self.acks: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.timings: dict[str, dict[str, float]] = {}
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self.ws:
            now = time.perf_counter()
            frame = json.loads(message.data)
            if frame.get("type") == "res":
                future = self.acks.pop(frame["id"], None)
                if future and not future.done():
                    future.set_result(frame)
            elif frame.get("event") == "agent":
                data = frame["payload"].get("data") or {}
                if data.get("timings"):
                    self.timings[frame["payload"]["runId"]] = data["timings"]
            elif frame.get("event") == "chat":
                payload = frame["payload"]
                run_id = payload["runId"]
                first = self.waiters.get(run_id)
                if first and not first.done():
                    first.set_result(now)
                if payload["state"] == "error":
                    print("run failed:", payload.get("errorMessage"), file=sys.stderr)
                if payload["state"] in ("final", "error", "aborted"):
                    done = self.finals.get(run_id)
                    if done and not done.done():
                        done.set_result(now)

    async def turn(self, session: str, text: str, run_id: str | None = None) -> tuple[float, float]:
        """(seconds to the first delta, seconds to the final event)."""
        loop = asyncio.get_running_loop()
        run_id = run_id or str(uuid.uuid4())
        self.waiters[run_id] = loop.create_future()
        self.finals[run_id] = loop.create_future()
        self.acks[run_id] = loop.create_future()
        started = time.perf_counter()
        await self.ws.send_str(
            json.dumps(
                {
                    "type": "req",
                    "id": run_id,
                    "method": "chat.send",
                    "params": {"sessionKey": session, "message": text, "idempotencyKey": run_id},
                }
            )
        )
        ack = await self.acks[run_id]
        if not ack.get("ok"):
            raise RuntimeError(f"chat.send failed: {ack}")
        try:
            first = await asyncio.wait_for(self.waiters[run_id], 30)
            final = await asyncio.wait_for(self.finals[run_id], 60)
        finally:
            self.waiters.pop(run_id, None)
            self.finals.pop(run_id, None)
        return first - started, final - started


async def connect(url: str, token: str, session: aiohttp.ClientSession) -> Client:
    ws = await session.ws_connect(url, max_msg_size=0, compress=0)
    while json.loads((await ws.receive()).data).get("event") != "connect.challenge":
        pass
    await ws.send_str(
        json.dumps(
            {
                "type": "req",
                "id": "c",
                "method": "connect",
                "params": {
                    "minProtocol": 3,
                    "maxProtocol": 3,
                    "auth": {"token": token},
                    "client": {
                        "id": "test",
                        "version": "bench",
                        "platform": "linux",
                        "mode": "test",
                    },
                },
            }
        )
    )
    while True:
        frame = json.loads((await ws.receive()).data)
        if frame.get("id") == "c":
            if not frame["ok"]:
                raise RuntimeError(frame)
            return Client(ws)


async def sdk_floor(base_url: str) -> list[float]:
    """Seconds from request to first delta; the caller subtracts the stand-in's own time."""
    # Request → first text delta through our OpenAI provider alone (the openai SDK
    # and its HTTP client, no gateway, no session, no prompt).
    from moltbot.agents.providers import ModelRequest, TextDelta, UserMessage, build

    provider = build("openai-completions", "fake", base_url, "sk-bench")
    samples = []
    try:
        for index in range(WARMUP + TURNS):
            request = ModelRequest("m", "You are terse.", (UserMessage(f"hi {index}"),))
            started = time.perf_counter()
            first = None
            async for event in provider.stream(request):
                if first is None and isinstance(event, TextDelta):
                    first = time.perf_counter()
            samples.append(first - started if first is not None else 0.0)
    finally:
        await provider.close()
    return samples


async def measure(url: str, token: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http:
        client = await connect(url, token, http)
        firsts = []
        inside: list[dict[str, float]] = []
        for index in range(WARMUP + TURNS):
            run_id = str(uuid.uuid4())
            first, _ = await client.turn("agent:main:bench", f"turn {index}", run_id)
            await asyncio.sleep(0.02)  # let the lifecycle end event arrive
            firsts.append(first)
            inside.append(client.timings.get(run_id, {}))
        client.reader.cancel()
        await client.ws.close()
    return {"overhead": firsts, "inside": inside}


async def measure_concurrent(url: str, token: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http:
        client = await connect(url, token, http)
        await client.turn("agent:main:warm", "warm up")
        latencies: list[float] = []

        async def session(n: int) -> None:
            for t in range(TURNS_PER_SESSION):
                _, final = await client.turn(f"agent:main:load-{n}", f"message {t} of {n}")
                latencies.append(final)

        started = time.perf_counter()
        await asyncio.gather(*(session(n) for n in range(SESSIONS)))
        elapsed = time.perf_counter() - started
        client.reader.cancel()
        await client.ws.close()
    return {"elapsed": elapsed, "latencies": latencies}


def with_gateway(home: Path, fake: FakeProcess, max_concurrent: int, work: Any) -> dict[str, Any]:
    from gateway_harness import CORE_ONLY, start_gateway

    token = write_config(home, fake.base_url, max_concurrent)
    gw = start_gateway(home, "bench", env=CORE_ONLY)
    try:
        return asyncio.run(work(gw.url, token))
    finally:
        gw.stop()


def ms(values: list[float], q: float | None = None) -> float:
    data = sorted(values)
    if q is None:
        return round(statistics.median(data) * 1000, 2)
    return round(data[min(len(data) - 1, int(q * len(data)))] * 1000, 2)


def run() -> list[Result]:
    rows: list[Result] = []
    with FakeProcess() as fake:
        floor_raw = asyncio.run(sdk_floor(fake.base_url))
        own = fake.first_token_seconds()
        floor = [f - o for f, o in zip(floor_raw, own, strict=True)][WARMUP:]
        with fresh_home() as home:
            measured = with_gateway(home, fake, 4, measure)
        own = fake.first_token_seconds()[len(floor_raw) :]
        single = [f - o for f, o in zip(measured["overhead"], own, strict=True)][WARMUP:]
        inside = measured["inside"][WARMUP:]
        stand_in = own[WARMUP:]
        with fresh_home() as home:
            load = with_gateway(home, fake, SESSIONS, measure_concurrent)
        with fresh_home() as home:
            capped = with_gateway(home, fake, 4, measure_concurrent)
    delay = (
        f"the stand-in's own time to first token (nominal {FIRST_TOKEN_DELAY * 1000:.0f} "
        f"ms, measured median {ms(stand_in)} ms) subtracted per turn"
    )
    rows.append(
        Result(
            name="Agent turn overhead: chat.send → first delta (median)",
            value=ms(single),
            unit="ms",
            note=f"{TURNS} sequential turns over WS, gateway subprocess; {delay}; target ≤ 5 ms",
        )
    )
    rows.append(
        Result(
            name="Agent turn overhead (p95)",
            value=ms(single, 0.95),
            unit="ms",
            note=f"min {ms([min(single)])} ms, max {ms([max(single)])} ms",
        )
    )
    rows.append(
        Result(
            name="SDK floor: provider request → first delta (median)",
            value=ms(floor),
            unit="ms",
            note="the openai SDK + HTTP alone (our provider, no gateway, no "
            f"session) against the same stand-in; {delay}",
        )
    )
    rows.append(
        Result(
            name="Agent turn overhead above the SDK floor (median)",
            value=round(ms(single) - ms(floor), 2),
            unit="ms",
            note="WS, transcript write, prompt assembly, event fan-out",
        )
    )
    requested = [t["requestedMs"] / 1000 for t in inside if "requestedMs" in t]
    first_in = [
        t["firstMs"] / 1000 - o for t, o in zip(inside, stand_in, strict=True) if "firstMs" in t
    ]
    if requested and first_in:
        rows.append(
            Result(
                name="Inside the gateway: message accepted → model request sent (median)",
                value=ms(requested),
                unit="ms",
                note="session lookup, transcript write, context and prompt "
                "assembly (the run's own timings)",
            )
        )
        rows.append(
            Result(
                name="Inside the gateway: message accepted → first delta (median)",
                value=ms(first_in),
                unit="ms",
                note=f"includes the SDK request; {delay}",
            )
        )
    total = SESSIONS * TURNS_PER_SESSION
    for label, result, cap in (
        ("maxConcurrent 50", load, SESSIONS),
        ("default maxConcurrent 4", capped, 4),
    ):
        rows.append(
            Result(
                name=f"{SESSIONS} concurrent sessions: throughput ({label})",
                value=round(total / result["elapsed"], 1),
                unit="turns/s",
                note=f"{SESSIONS} sessions × {TURNS_PER_SESSION} turns back to back; "
                f"{total} turns in {result['elapsed']:.2f} s; each reply streams "
                f"after {FIRST_TOKEN_DELAY * 1000:.0f} ms; at most {cap} runs at once",
            )
        )
        rows.append(
            Result(
                name=f"{SESSIONS} concurrent sessions: turn latency p50/p95 ({label})",
                value=ms(result["latencies"]),
                unit="ms",
                note=f"p95 {ms(result['latencies'], 0.95)} ms (chat.send → final event)",
            )
        )
    return rows


if __name__ == "__main__":
    for row in run():
        print(f"{row['name']}: {row['value']} {row['unit']}  ({row['note']})")
