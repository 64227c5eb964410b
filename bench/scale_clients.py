"""Connections at scale: memory per idle authenticated client, and one streaming reply
fanned out to 1, 100 and 1,000 watching clients.

A real gateway subprocess (sidecars skipped) whose model is the OpenAI-compatible
stand-in (tests/fakes) in a process of its own, streaming a reply of
:data:`CHUNKS` deltas, one every :data:`CHUNK_DELAY` seconds. Every watcher is an
authenticated WebSocket client; each ``agent`` ``assistant`` event (one per model
delta) carries the gateway's ``ts``, so a watcher's lag is its receive time minus
``ts`` (one clock: the same host). All watchers live in this one client process,
which reads them as fast as it can: at 1,000 watchers part of the lag is the
client's own.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import statistics
import subprocess
import sys
import time
from typing import Any

import aiohttp
import orjson
import psutil

from _harness import ROOT, Result, fresh_home
from agents import write_config

TITLE = "Connections at scale: idle clients, fan-out of a streaming reply"
ORDER = 44

WATCHERS = (1, 100, 1_000)
IDLE = (10, 100, 1_000)
CHUNKS = 200
CHUNK_DELAY = 0.005
FAKE = """
import asyncio, sys
sys.path[:0] = [sys.argv[1], sys.argv[1] + "/tests"]
from fakes.llm_openai import FakeOpenAI
from fakes.llm_script import Reply

async def main():
    server = FakeOpenAI(api_key="sk-bench")
    chunks, delay = int(sys.argv[2]), float(sys.argv[3])
    text = "".join(f"w{n:04d} " for n in range(chunks))
    for _ in range(20):
        server.push(Reply(text, chunk_chars=6, chunk_delay=delay))
    await server.start()
    print(server.port, flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await server.stop()

asyncio.run(main())
"""


async def connect(session: aiohttp.ClientSession, url: str, token: str) -> Any:
    """An authenticated CLI-mode client (CLI clients take no presence entry, as in
    ``bench/security.py``: a thousand UI clients would each be announced to all)."""
    from gateway_harness import connect_params

    ws = await session.ws_connect(url, max_msg_size=0, compress=0)
    while orjson.loads((await ws.receive()).data).get("event") != "connect.challenge":
        pass
    params = connect_params(token, client_id="cli", mode="cli")
    await ws.send_str(json.dumps({"type": "req", "id": "c", "method": "connect", "params": params}))
    while True:
        frame = orjson.loads((await ws.receive()).data)
        if frame.get("id") == "c":
            if not frame["ok"]:
                raise RuntimeError(f"connect refused: {frame}")
            return ws


async def open_clients(
    session: aiohttp.ClientSession, url: str, token: str, count: int
) -> list[Any]:
    clients: list[Any] = []
    for start in range(0, count, 100):
        batch = min(100, count - start)
        clients += await asyncio.gather(*(connect(session, url, token) for _ in range(batch)))
    return clients


async def idle_cost(url: str, token: str, pid: int) -> dict[int, float]:
    """Gateway RSS growth per idle authenticated client (KiB), per number of clients.
    A first round, not counted, pays the one-off costs (the first connection's code
    paths and buffers), which would otherwise be charged to the smallest count."""
    out = {}
    process = psutil.Process(pid)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        for index, count in enumerate((IDLE[0], *IDLE)):
            await asyncio.sleep(1)
            before = process.memory_info().rss
            clients = await open_clients(session, url, token, count)
            for ws in clients:  # each one answered: really authenticated and served
                await ws.send_str('{"type":"req","id":"h","method":"health"}')
            for ws in clients:
                while '"type":"res"' not in (await ws.receive()).data[:40]:
                    pass
            await asyncio.sleep(1)
            if index:
                out[count] = (process.memory_info().rss - before) / 1024 / count
            await asyncio.gather(*(ws.close() for ws in clients))
    return out


async def fan_out(url: str, token: str, watchers: int, pid: int) -> dict[str, float]:
    gateway = psutil.Process(pid)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        sender = await connect(session, url, token)
        clients = await open_clients(session, url, token, watchers)
        lags: list[float] = []
        counts = [0] * watchers
        finished = [asyncio.get_running_loop().create_future() for _ in range(watchers)]
        first_seen: list[float] = []
        last_seen: list[float] = []

        async def watch(index: int, ws: Any) -> None:
            async for message in ws:
                now = time.time() * 1000
                frame = orjson.loads(message.data)
                if frame.get("event") != "agent":
                    continue
                payload = frame["payload"]
                if payload.get("stream") == "assistant":
                    counts[index] += 1
                    lags.append(now - payload["ts"])
                    if counts[index] == 1:
                        first_seen.append(time.perf_counter())
                elif payload.get("stream") == "lifecycle" and payload["data"].get("phase") in (
                    "end",
                    "error",
                ):
                    last_seen.append(time.perf_counter())
                    finished[index].set_result(None)
                    return

        readers = [asyncio.create_task(watch(i, ws)) for i, ws in enumerate(clients)]
        request = {
            "type": "req",
            "id": "send",
            "method": "chat.send",
            "params": {
                "sessionKey": "fan",
                "message": "go",
                "idempotencyKey": secrets.token_hex(8),
            },
        }
        cpu = sum(gateway.cpu_times()[:2])
        await sender.send_str(json.dumps(request))
        await asyncio.wait_for(asyncio.gather(*finished), 300)
        cpu = sum(gateway.cpu_times()[:2]) - cpu
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*(ws.close() for ws in [sender, *clients]))
    lags.sort()
    duration = max(last_seen) - min(first_seen)
    delivered = sum(counts)
    return {
        "deltas": statistics.median(counts),
        "rate": delivered / duration if duration > 0 else 0.0,
        "p50": lags[len(lags) // 2],
        "p99": lags[int(0.99 * len(lags)) - 1],
        "duration": duration,
        "cpu_per_delta": cpu / delivered if delivered else 0.0,
    }


def run() -> list[Result]:
    from gateway_harness import CORE_ONLY, start_gateway

    fake = subprocess.Popen(
        [sys.executable, "-c", FAKE, str(ROOT), str(CHUNKS), str(CHUNK_DELAY)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert fake.stdout is not None
        port = int(fake.stdout.readline())
        with fresh_home() as home:
            write_config(home, f"http://127.0.0.1:{port}/v1", 4)
            gw = start_gateway(home, "bench", env=CORE_ONLY, timeout=60)
            try:
                idle = asyncio.run(idle_cost(gw.url, gw.token, gw.pid))
                fans = {n: asyncio.run(fan_out(gw.url, gw.token, n, gw.pid)) for n in WATCHERS}
            finally:
                gw.stop()
    finally:
        assert fake.stdin is not None
        fake.stdin.close()
        fake.wait(10)
    rows = [
        Result(
            name=f"RSS per idle authenticated client, {count:,} clients",
            value=round(kib, 1),
            unit="KiB",
            note="gateway RSS growth / clients, each answered a `health`; target ≤ 32 KiB, "
            "flat in the number of clients",
        )
        for count, kib in idle.items()
    ]
    for n, got in fans.items():
        rows.append(
            Result(
                name=f"fan-out to {n:,} watchers: deltas delivered",
                value=round(got["rate"]),
                unit="/s",
                note=f"{got['deltas']:.0f} deltas per watcher in {got['duration']:.2f} s "
                f"(model: {CHUNKS} deltas, one per {CHUNK_DELAY * 1000:.0f} ms); target: "
                "every watcher gets every delta",
            )
        )
        rows.append(
            Result(
                name=f"fan-out to {n:,} watchers: lag p99",
                value=round(got["p99"], 1),
                unit="ms",
                note=f"median {got['p50']:.1f} ms; event ts → watcher receive; target p99 "
                "≤ 50 ms at 100 watchers, ≤ 250 ms at 1,000",
            )
        )
        rows.append(
            Result(
                name=f"fan-out to {n:,} watchers: gateway CPU per delivered delta",
                value=round(got["cpu_per_delta"] * 1e6, 1),
                unit="µs",
                note="the gateway's user+system time while streaming / deltas delivered; "
                "the watchers run in this (the measuring) process on the same 2 cores; "
                "target: flat in the watchers (one encoding per event, a write per watcher)",
            )
        )
    return rows
