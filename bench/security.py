"""Gateway under load and under attack: 1,000 WebSocket clients, then hostile clients.

Figures only (the pass/fail bounds are in tests/security): how much memory an idle
authenticated client costs, how fast ``/health`` answers while 1,000 clients are
connected and busy, and what each hostile client (pipelining without reading,
slowloris, a 64 MiB frame, deep JSON, auth guessing) does to the gateway's RSS and
to another client's ``health`` round trip (p99, compared with no attack).
"""

from __future__ import annotations

import asyncio
import json
import socket
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

from _harness import Result, fresh_home

TITLE = "Gateway under load and under attack"
ORDER = 25

CLIENTS = 1000
CONNECT_BATCH = 100  # below the per-address cap on unauthenticated connections
HEALTH_PROBES = 500
MiB = 1024 * 1024

TESTS = Path(__file__).resolve().parent.parent / "tests"
for path in (TESTS, TESTS / "security"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import hostile  # noqa: E402

from gateway_harness import (  # noqa: E402
    CORE_ONLY,
    GatewayProcess,
    connect_params,
    start_gateway,
    ws_client,
)


def p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] if ordered else 0.0


async def _client(url: str, token: str, session: aiohttp.ClientSession) -> Any:
    ws = await session.ws_connect(url)
    await ws.receive_json(timeout=30)
    params = connect_params(token, client_id="cli", mode="cli")
    await ws.send_json({"type": "req", "id": "c", "method": "connect", "params": params})
    hello = await ws.receive_json(timeout=30)
    assert hello["ok"], hello
    return ws


async def _ask_health(ws: Any, request_id: str) -> None:
    await ws.send_json({"type": "req", "id": request_id, "method": "health"})
    while True:
        frame = await ws.receive_json(timeout=60)
        if frame.get("id") == request_id:
            assert frame["ok"]
            return


async def _http_health_latencies(port: int, count: int) -> list[float]:
    out = []
    async with aiohttp.ClientSession() as session:
        for _ in range(count):
            started = time.perf_counter()
            async with session.get(f"http://127.0.0.1:{port}/health") as response:
                await response.read()
                assert response.status == 200
            out.append((time.perf_counter() - started) * 1000)
            await asyncio.sleep(0.005)
    return out


async def thousand_clients(gw: GatewayProcess) -> dict[str, float]:
    from moltbot.security.process import raise_open_files_limit

    raise_open_files_limit()
    idle_health = await _http_health_latencies(gw.port, HEALTH_PROBES)
    before = hostile.rss(gw.pid)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        sockets: list[Any] = []
        started = time.perf_counter()
        for first in range(0, CLIENTS, CONNECT_BATCH):
            batch = range(first, min(CLIENTS, first + CONNECT_BATCH))
            sockets += await asyncio.gather(*(_client(gw.url, gw.token, session) for _ in batch))
        connect_s = time.perf_counter() - started
        await asyncio.sleep(1.0)
        held = hostile.rss(gw.pid)
        await asyncio.gather(*(_ask_health(ws, f"h{i}") for i, ws in enumerate(sockets)))
        stop = asyncio.Event()

        async def chatter(ws: Any, index: int) -> None:
            n = 0
            while not stop.is_set():
                n += 1
                await _ask_health(ws, f"b{index}-{n}")
                await asyncio.sleep(1.0)

        background = [asyncio.create_task(chatter(ws, i)) for i, ws in enumerate(sockets)]
        await asyncio.sleep(1.0)
        loaded_health = await _http_health_latencies(gw.port, HEALTH_PROBES)
        stop.set()
        await asyncio.gather(*background, return_exceptions=True)
        answered = len(sockets)
        for ws in sockets:
            await ws.close()
    return {
        "clients": answered,
        "connect_s": connect_s,
        "rss_before": before / MiB,
        "rss_held": held / MiB,
        "per_client_kib": (held - before) / CLIENTS / 1024,
        "idle_p99": p99(idle_health),
        "idle_median": statistics.median(idle_health),
        "loaded_p99": p99(loaded_health),
        "loaded_median": statistics.median(loaded_health),
    }


async def _attack(gw: GatewayProcess, name: str, attack: Any, settle: float) -> dict[str, Any]:
    quiet = hostile.Probe(gw.url, gw.token)
    stop = asyncio.Event()
    task = asyncio.create_task(quiet.run(stop))
    await asyncio.sleep(2.0)
    stop.set()
    await task
    baseline = hostile.rss(gw.pid)
    stop = asyncio.Event()
    probe = hostile.Probe(gw.url, gw.token)
    sampler = hostile.RssSampler(gw.pid)
    tasks = [asyncio.create_task(probe.run(stop)), asyncio.create_task(sampler.run(stop))]
    with hostile.sockets() as opened:
        await asyncio.to_thread(attack, opened)
        await asyncio.sleep(settle)
        stop.set()
        await asyncio.gather(*tasks)
    await asyncio.sleep(2.0)
    return {
        "name": name,
        "rss_delta": (sampler.peak - baseline) / MiB,
        "after_delta": (hostile.rss(gw.pid) - baseline) / MiB,
        "p99_quiet": quiet.p99(),
        "p99_attack": probe.p99(),
        "probes": len(probe.latencies_ms),
        "failures": probe.failures,
    }


def _pipelining(gw: GatewayProcess) -> Any:
    def attack(opened: list[socket.socket]) -> None:
        sock = hostile.open_ws(gw.port, gw.token, source="127.0.0.2", rcvbuf=4096)
        opened.append(sock)
        params = {"sessionKey": "main", "limit": 1000}
        sock.settimeout(10)
        sock.sendall(
            b"".join(hostile.request_frame(f"q{i}", "chat.history", params) for i in range(300))
        )

    return attack


def _never_reading(gw: GatewayProcess) -> Any:
    def attack(opened: list[socket.socket]) -> None:
        sock = hostile.open_ws(gw.port, gw.token, source="127.0.0.3", rcvbuf=4096)
        opened.append(sock)
        sock.settimeout(2)
        blob = b"".join(hostile.request_frame(f"s{i}", "status") for i in range(2000))
        try:
            sock.sendall(blob)
        except OSError:
            pass  # the gateway stopped reading us: back-pressure

    return attack


def _slowloris(gw: GatewayProcess) -> Any:
    def attack(opened: list[socket.socket]) -> None:
        for _ in range(1100):
            try:
                sock = hostile.connect_socket(gw.port, source="127.0.0.4")
                sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                opened.append(sock)
            except OSError:
                pass

    return attack


def _huge_frame(gw: GatewayProcess) -> Any:
    def attack(opened: list[socket.socket]) -> None:
        sock = hostile.open_ws(gw.port, gw.token, source="127.0.0.5")
        opened.append(sock)
        sock.settimeout(5)
        try:
            sock.sendall(hostile.frame(b"", length=64 * MiB)[:14])
            for _ in range(64):
                sock.sendall(b"[" * MiB)
        except OSError:
            pass

    return attack


def _deep_json(gw: GatewayProcess) -> Any:
    def attack(opened: list[socket.socket]) -> None:
        sock = hostile.open_ws(gw.port, gw.token, source="127.0.0.6")
        opened.append(sock)
        deep5 = "{a:" * 120_000 + "1" + "}" * 120_000
        frames = [hostile.request_frame("p", "config.patch", {"raw": deep5, "baseHash": "x"})]
        frames.append(hostile.frame(('{"type":"req","id":"d","params":' + "[" * 200_000).encode()))
        sock.settimeout(10)
        for payload in frames * 5:
            sock.sendall(payload)

    return attack


def _guessing(gw: GatewayProcess) -> Any:
    def attack(opened: list[socket.socket]) -> None:
        for i in range(600):
            hostile.guess(gw.port, f"guess-{i}", source="127.0.0.8")

    return attack


async def hostile_clients(gw: GatewayProcess) -> list[dict[str, Any]]:
    async with ws_client(gw.url, gw.token) as client:
        for i in range(10):
            text = "x" * 390_000 + str(i)
            await client.call("chat.inject", {"sessionKey": "main", "message": text})
        await client.call("chat.history", {"sessionKey": "main", "limit": 1000}, timeout=60)
    scenarios = [
        ("pipelining: 300 × chat.history (3.9 MB) never read", _pipelining, 4.0),
        ("never reading: 2,000 × status pipelined", _never_reading, 3.0),
        ("slowloris: 1,100 connections trickling headers", _slowloris, 3.0),
        ("64 MiB frame", _huge_frame, 1.0),
        ("deep JSON: 120k-deep JSON5 patch, 200k-deep frame, ×5", _deep_json, 3.0),
        ("auth guessing: 600 wrong tokens", _guessing, 0.5),
    ]
    return [await _attack(gw, name, make(gw), settle) for name, make, settle in scenarios]


def run() -> list[Result]:
    with fresh_home() as home:
        gw = start_gateway(home, "bench", env={**CORE_ONLY, "HOME": str(home)})
        try:
            load = asyncio.run(thousand_clients(gw))
        finally:
            gw.stop()
    with fresh_home() as home:
        gw = start_gateway(home, "bench", env={**CORE_ONLY, "HOME": str(home)})
        try:
            attacks = asyncio.run(hostile_clients(gw))
        finally:
            gw.stop()
    rows = [
        Result(
            name=f"{CLIENTS:,} authenticated WS clients held, each answered",
            value=float(load["clients"]),
            unit="clients",
            note=f"connected in {load['connect_s']:.1f} s ({CONNECT_BATCH} at a time), "
            "CLI-mode clients (no presence entries); each answered a `health` request",
        ),
        Result(
            name="RSS per idle authenticated client",
            value=round(load["per_client_kib"], 1),
            unit="KiB",
            note=f"gateway RSS {load['rss_before']:.0f} → {load['rss_held']:.0f} MiB",
        ),
        Result(
            name="HTTP /health p99, idle gateway",
            value=round(load["idle_p99"], 2),
            unit="ms",
            note=f"median {load['idle_median']:.2f} ms, {HEALTH_PROBES} requests",
        ),
        Result(
            name=f"HTTP /health p99, {CLIENTS:,} clients each sending `health` every second",
            value=round(load["loaded_p99"], 2),
            unit="ms",
            note=f"median {load['loaded_median']:.2f} ms, {HEALTH_PROBES} requests",
        ),
    ]
    for attack in attacks:
        rows.append(
            Result(
                name=f"{attack['name']}: gateway RSS peak increase",
                value=round(attack["rss_delta"], 1),
                unit="MiB",
                note=f"{attack['after_delta']:+.1f} MiB 2 s after; budget 50 MiB",
            )
        )
        delay = attack["p99_attack"] - attack["p99_quiet"]
        rows.append(
            Result(
                name=f"{attack['name']}: another client's `health` p99 delay",
                value=round(delay, 1),
                unit="ms",
                note=f"p99 {attack['p99_attack']:.1f} ms under attack vs {attack['p99_quiet']:.1f}"
                f" ms without ({attack['probes']} probes, {attack['failures']} unanswered); "
                "budget 50 ms",
            )
        )
    return rows


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
