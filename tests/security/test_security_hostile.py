"""Hostile clients against a real gateway subprocess: bounded outcomes only.

Each attack comes from its own loopback address (127.0.0.x, x >= 2) while a
well-behaved client on 127.0.0.1 keeps calling ``health``. Assertions are on
bounds (gateway RSS measured with psutil stays under baseline + 50 MiB, the
other client is answered, the attacker is cut off or refused), never on timings.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import hostile
import pytest

from gateway_harness import CORE_ONLY, GatewayProcess, start_gateway, ws_client

MiB = 1024 * 1024
BUDGET = 50 * MiB
BULKY_BUDGET = 25 * MiB  # one bulky answer of a client built at a time: ~10 MiB
SESSION_MESSAGES = 10
MESSAGE_BYTES = 390_000  # 10 messages: a 3.9 MB transcript, as in the report


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    home = tmp_path_factory.mktemp("hostile-home")
    gw = start_gateway(home, "main", env={**CORE_ONLY, "HOME": str(home)})

    async def fill() -> None:
        async with ws_client(gw.url, gw.token) as client:
            for i in range(SESSION_MESSAGES):
                text = "x" * MESSAGE_BYTES + str(i)
                await client.call("chat.inject", {"sessionKey": "main", "message": text})
            await client.call("chat.history", {"sessionKey": "main", "limit": 1000}, timeout=30)

    asyncio.run(fill())
    yield gw
    gw.stop()


async def _under_attack(
    gw: GatewayProcess, attack: Callable[[], None], done: Callable[[], Awaitable[Any]]
) -> tuple[int, int, hostile.Probe]:
    """Run ``attack`` (a blocking callable, in a thread) while a probe calls ``health``
    and RSS is sampled, until ``done()`` (the barrier saying the gateway has dealt with
    the attack) returns; returns (baseline RSS, peak RSS, probe)."""
    baseline = hostile.rss(gw.pid)
    stop = asyncio.Event()
    probe = hostile.Probe(gw.url, gw.token)
    sampler = hostile.RssSampler(gw.pid)
    tasks = [asyncio.create_task(probe.run(stop)), asyncio.create_task(sampler.run(stop))]
    try:
        await asyncio.to_thread(attack)
        await done()
        answered = len(probe.latencies_ms)
        while len(probe.latencies_ms) < answered + 3:  # barrier: still answering now
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.gather(*tasks)
    return baseline, sampler.peak, probe


async def _settles_below(gw: GatewayProcess, limit: int, within: float = 20.0) -> int:
    deadline = time.monotonic() + within
    while True:
        current = hostile.rss(gw.pid)
        if current < limit or time.monotonic() > deadline:
            return current
        await asyncio.sleep(0.2)


async def test_pipelined_history_never_read_stays_bounded(target: GatewayProcess) -> None:
    """Item 2: 300 pipelined chat.history (3.9 MB each) from a client that never reads.
    Its bulky answers are built one at a time, so only a few are, not one per in-flight
    slot (eight at once took 37-54 MiB)."""
    with hostile.sockets() as opened:

        def attack() -> None:
            sock = hostile.open_ws(target.port, target.token, rcvbuf=4096)
            opened.append(sock)
            params = {"sessionKey": "main", "limit": 1000}
            blob = b"".join(
                hostile.request_frame(f"q{i}", "chat.history", params) for i in range(300)
            )
            sock.settimeout(10)
            sock.sendall(blob)

        # the attacker never reads, so nothing can be asked of it: the barrier is the
        # gateway going idle (it answered what it could, then stopped reading)
        baseline, peak, probe = await _under_attack(
            target, attack, lambda: hostile.quiescent(target.pid)
        )
    assert peak < baseline + BULKY_BUDGET, (baseline // MiB, peak // MiB)
    assert probe.latencies_ms and probe.failures == 0
    after = await _settles_below(target, baseline + 20 * MiB)
    assert after < baseline + 20 * MiB, (baseline // MiB, after // MiB)


async def test_pipelined_client_that_reads_late_gets_every_answer(target: GatewayProcess) -> None:
    """Back-pressure, not loss: each of 60 pipelined requests is answered exactly once
    (big replies beyond the backlog ceiling become retryable errors)."""
    async with ws_client(target.url, target.token) as client:
        ids = [f"p{i}" for i in range(60)]
        for i, request_id in enumerate(ids):
            method = "chat.history" if i % 3 == 0 else "health"
            params = {"sessionKey": "main", "limit": 1000} if method == "chat.history" else None
            frame = {"type": "req", "id": request_id, "method": method}
            if params:
                frame["params"] = params
            await client.ws.send_str(json.dumps(frame))
        await client.call("health", timeout=30)  # barrier: everything before it was read
        for _ in range(600):
            if all(client.second_response(i) for i in ids):
                break
            await asyncio.sleep(0.05)
        for request_id in ids:
            answers = client.second_response(request_id)
            assert len(answers) == 1, (request_id, answers)
            frame = answers[0]
            assert frame["ok"] or frame["error"].get("retryable") is True, frame


async def test_slowloris_is_capped_per_address_and_timed_out(target: GatewayProcess) -> None:
    """Item 3: 200 connections trickling headers from one address: beyond the
    per-address cap they are refused at once, the rest are closed by the header
    deadline, and /health from another address is served throughout."""
    source = "127.0.0.3"
    with hostile.sockets() as opened:

        def attack() -> None:
            for _ in range(200):
                try:
                    sock = hostile.connect_socket(target.port, source=source)
                except OSError:
                    continue
                opened.append(sock)
                try:
                    sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                except OSError:
                    pass

        closed: list[int] = []

        async def all_closed() -> None:  # barrier: the gateway dealt with every one
            closed.append(
                await asyncio.to_thread(lambda: sum(hostile.closed_by_peer(s, 20) for s in opened))
            )

        baseline, peak, probe = await _under_attack(target, attack, all_closed)
        assert peak < baseline + BUDGET and probe.failures == 0
        async with aiohttp.ClientSession() as session:  # a fresh HTTP client is served
            async with session.get(f"{target.http}/health") as response:
                assert response.status == 200
    assert closed == [len(opened)] == [200]


async def test_header_deadline_applies_to_single_connection(target: GatewayProcess) -> None:
    sock = hostile.connect_socket(target.port, source="127.0.0.4")
    try:
        sock.sendall(b"GET / HTTP/1.1\r\n")
        assert await asyncio.to_thread(hostile.closed_by_peer, sock, 20)
    finally:
        sock.close()


async def test_huge_frame_is_refused_without_buffering(target: GatewayProcess) -> None:
    """A frame announcing 64 MiB is refused from its header (1009), not buffered."""
    with hostile.sockets() as opened:

        def attack() -> None:
            sock = hostile.open_ws(target.port, target.token, source="127.0.0.5")
            opened.append(sock)
            sock.settimeout(10)
            sock.sendall(hostile.frame(b"", length=64 * MiB)[:14])
            chunk = b"[" * MiB
            try:
                for _ in range(16):
                    sock.sendall(chunk)
            except OSError:
                pass  # the gateway hung up: what we want

        hung_up: list[bool] = []

        async def refused() -> None:  # barrier: the gateway hung up on the attacker
            hung_up.append(await asyncio.to_thread(hostile.closed_by_peer, opened[0], 10))

        baseline, peak, probe = await _under_attack(target, attack, refused)
    assert hung_up == [True]
    assert peak < baseline + BUDGET and probe.failures == 0


async def test_deep_json_is_refused_cheaply(target: GatewayProcess) -> None:
    """Deep JSON frames and deep JSON5 config patches: answered with an error, the
    loop stays free (the probe keeps being answered), memory stays bounded."""
    async with ws_client(target.url, target.token) as client:
        base_hash = (await client.call("config.get"))["hash"]

        async def attack() -> list[dict]:
            deep_frame = '{"type":"req","id":"d","method":"health","params":' + "[" * 200_000
            await client.ws.send_str(deep_frame + "]" * 200_000 + "}")
            replies = []
            for raw in (
                "{a:" * 120_000 + "1" + "}" * 120_000,
                '{"a":' * 50_000 + "1" + "}" * 50_000,
            ):
                replies.append(
                    await client.request(
                        "config.patch", {"raw": raw, "baseHash": base_hash}, timeout=60
                    )
                )
            return replies

        baseline = hostile.rss(target.pid)
        stop = asyncio.Event()
        probe = hostile.Probe(target.url, target.token)
        sampler = hostile.RssSampler(target.pid)
        tasks = [asyncio.create_task(probe.run(stop)), asyncio.create_task(sampler.run(stop))]
        replies = await attack()
        await client.call("health")
        stop.set()
        await asyncio.gather(*tasks)
    for reply in replies:
        assert not reply["ok"] and "nested more than 64 levels" in reply["error"]["message"]
    assert sampler.peak < baseline + BUDGET and probe.failures == 0


async def test_failed_auth_is_throttled_per_address(target: GatewayProcess) -> None:
    """Item 7: 600 wrong guesses from one address: after the burst every attempt is
    refused without being checked (even the right token), while another address
    still connects."""

    def guesses() -> list[dict]:
        tokens = [f"guess-{i}" for i in range(599)] + [target.token]
        return [hostile.guess(target.port, t, source="127.0.0.6") for t in tokens]

    answers = await asyncio.to_thread(guesses)
    mismatches = [a for a in answers if "mismatch" in a["error"]["message"]]
    throttled = [a for a in answers if "too many failed attempts" in a["error"]["message"]]
    assert len(mismatches) <= 12 and len(throttled) >= 580
    assert answers[-1] in throttled  # the right token is not even checked now
    assert throttled[-1]["error"]["retryAfterMs"] > 0 and throttled[-1]["error"]["retryable"]
    async with ws_client(target.url, target.token) as client:  # 127.0.0.1 is not locked out
        assert (await client.call("health"))["ok"]


def test_open_files_limit_is_raised(home: Path) -> None:
    """Item 3: the soft RLIMIT_NOFILE is raised at start (here from 1024)."""
    import subprocess
    import sys

    import psutil

    from gateway_harness import free_port_block, moltbot_env

    port = free_port_block()
    command = (
        f"ulimit -Sn 1024; exec {sys.executable} -m moltbot --profile main gateway --port {port}"
    )
    log = (home / "nofile.log").open("w")
    proc = subprocess.Popen(
        ["bash", "-c", command],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=moltbot_env(home, CORE_ONLY),
        cwd=home,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        soft, hard = psutil.Process(proc.pid).rlimit(psutil.RLIMIT_NOFILE)
        assert soft > 1024 and soft == min(hard, 65536)
    finally:
        proc.terminate()
        proc.wait(10)
