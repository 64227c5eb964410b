"""Gateway: start, memory, connect, round trips, pipelining; against a bare aiohttp
WebSocket server (the floor of our stack) and the upstream TypeScript gateway.

Upstream is measured when `../shared/anchor/install.sh` has installed it (set
MOLTBOT_BENCH_UPSTREAM=0 to skip, or =install to install it first).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import psutil

from _harness import Result, clean_env, fresh_home, median_ms, moltbot_command, time_runs
from gateway_harness import CORE_ONLY, free_port_block

TITLE = "Gateway: start, memory, connect, round trips, pipelining"
ORDER = 20

ROUND_TRIPS = 2000
AB_BLOCKS = 20  # per server
AB_BLOCK = 250
PIPELINED = 20000
CONNECTS = 50
STARTS = 5
ANCHOR = Path(os.environ.get("ANCHOR", Path.home() / ".cache" / "openclaw-anchor"))


def connect_frame(token: str) -> bytes:
    return orjson.dumps(
        {
            "type": "req",
            "id": "c",
            "method": "connect",
            "params": {
                "minProtocol": 3,
                "maxProtocol": 3,
                "auth": {"token": token},
                "client": {"id": "test", "version": "bench", "platform": "linux", "mode": "test"},
            },
        }
    )


async def connect(session: aiohttp.ClientSession, url: str, token: str | None) -> Any:
    ws = await session.ws_connect(url, max_msg_size=0, compress=0)
    if token is None:  # bare baseline server: no handshake
        return ws
    while True:
        frame = orjson.loads((await ws.receive()).data)
        if frame.get("event") == "connect.challenge":
            break
    await ws.send_str(connect_frame(token).decode())
    while True:
        frame = orjson.loads((await ws.receive()).data)
        if frame.get("type") == "res" and frame.get("id") == "c":
            if not frame["ok"]:
                raise RuntimeError(f"connect refused: {frame}")
            return ws


async def measure_protocol(url: str, token: str | None) -> dict[str, float]:
    async with aiohttp.ClientSession() as session:
        connects = []
        for _ in range(CONNECTS):
            started = time.perf_counter()
            ws = await connect(session, url, token)
            connects.append(time.perf_counter() - started)
            await ws.close()
        ws = await connect(session, url, token)
        request = '{"type":"req","id":"1","method":"health"}'
        for _ in range(200):  # warm-up
            await ws.send_str(request)
            await _until_response(ws)
        trips = []
        for _ in range(ROUND_TRIPS):
            started = time.perf_counter()
            await ws.send_str(request)
            await _until_response(ws)
            trips.append(time.perf_counter() - started)
        started = time.perf_counter()
        frames = [f'{{"type":"req","id":"p{i}","method":"health"}}' for i in range(PIPELINED)]

        async def send_all() -> None:
            for index, frame in enumerate(frames):
                await ws.send_str(frame)
                if index % 500 == 0:
                    await asyncio.sleep(0)

        sender = asyncio.create_task(send_all())
        received = 0
        while received < PIPELINED:
            if await _until_response(ws):
                received += 1
        await sender
        elapsed = time.perf_counter() - started
        await ws.close()
    return {
        "connect": statistics.median(connects),
        "rtt": statistics.median(trips),
        "rps": PIPELINED / elapsed,
    }


async def _until_response(ws: aiohttp.ClientWebSocketResponse) -> bool:
    while True:
        message = await ws.receive()
        if message.type != aiohttp.WSMsgType.TEXT:
            raise RuntimeError(f"connection ended: {message}")
        if message.data.startswith('{"type":"res"') or '"type":"res"' in message.data[:40]:
            return True


def rss_tree(pid: int) -> float:
    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
        return sum(p.memory_info().rss for p in procs if p.is_running()) / 2**20
    except psutil.Error:
        return 0.0


def start_and_hello(
    argv: list[str], env: dict[str, str], url: str, token: str, timeout: float = 120
) -> tuple[subprocess.Popen[bytes], float]:
    started = time.perf_counter()
    proc = subprocess.Popen(
        argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )

    async def poll() -> None:
        async with aiohttp.ClientSession() as session:
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"{argv[0]} exited {proc.returncode}")
                try:
                    ws = await connect(session, url, token)
                    await ws.close()
                    return
                except (aiohttp.ClientError, OSError):
                    await asyncio.sleep(0.01)
                if time.perf_counter() - started > timeout:
                    raise RuntimeError("no hello-ok in time")

    asyncio.run(poll())
    return proc, time.perf_counter() - started


async def subsystems_running(url: str, token: str) -> None:
    """Until the gateway's ``status`` shows every subsystem running (its sidecars start
    after ``hello-ok``, importing in a worker thread: not the state to measure in)."""
    async with aiohttp.ClientSession() as session:
        ws = await connect(session, url, token)
        while True:
            await ws.send_str('{"type":"req","id":"s","method":"status"}')
            while (answer := json.loads((await ws.receive()).data)).get("type") != "res":
                pass
            states = [sub.get("state") for sub in answer["payload"]["subsystems"].values()]
            if states and all(state == "running" for state in states):
                break
            await asyncio.sleep(0.1)
        await ws.close()


def stop(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def setup(home: Path) -> tuple[list[str], dict[str, str], str, str]:
    """``moltbot --profile bench setup`` on a free port in ``home``: the gateway's argv,
    its environment, its URL and its token."""
    port = free_port_block()
    env = clean_env(home)
    subprocess.run(
        [*moltbot_command(), "--profile", "bench", "setup", "--port", str(port)],
        env=env,
        check=True,
        capture_output=True,
    )
    config = json.loads((home / ".clawdbot-bench" / "moltbot.json").read_text())
    token = config["gateway"]["auth"]["token"]
    argv = [*moltbot_command(), "--profile", "bench", "gateway"]
    return argv, env, f"ws://127.0.0.1:{port}", token


def core_rss(argv: list[str], env: dict[str, str], url: str, token: str) -> float:
    """RSS of the gateway without its sidecars (browser control, canvas, channels)."""
    proc, _ = start_and_hello(argv, {**env, **CORE_ONLY}, url, token)
    try:
        time.sleep(2)
        return rss_tree(proc.pid)
    finally:
        stop(proc)


def bench_moltbot(home: Path) -> dict[str, Any]:
    argv, env, url, token = setup(home)
    starts = []
    for _ in range(STARTS):
        proc, elapsed = start_and_hello(argv, env, url, token)
        starts.append(elapsed)
        stop(proc)
    proc, _ = start_and_hello(argv, env, url, token)
    try:
        time.sleep(3)
        rss = rss_tree(proc.pid)
        numbers = asyncio.run(measure_protocol(url, token))
        response = asyncio.run(health_response(url, token))
        numbers["write_path"] = bench_write_path(response)
        baseline, base_url = start_baseline(response)
        try:
            base_numbers = asyncio.run(measure_protocol(base_url, None))
            # three A/B rounds; the one with the median overhead is reported
            rounds = sorted(
                (asyncio.run(interleaved_rtt(url, token, base_url)) for _ in range(3)),
                key=lambda pair: pair[0] / pair[1],
            )
            numbers["ab"] = rounds[1]
            numbers["ab_spread"] = [round((o - b) / b * 100, 1) for o, b in rounds]
        finally:
            stop(baseline)
        numbers["base"] = base_numbers
        status = time_runs([*moltbot_command(), "--profile", "bench", "status"], 10, env=env)
    finally:
        stop(proc)
    rss_core = core_rss(argv, env, url, token)
    return {"starts": starts, "rss": rss, "rss_core": rss_core, "status": status, **numbers}


BASELINE_SERVER = """
import os, sys
from aiohttp import web
RESPONSE = os.environ["BENCH_RESPONSE"]
async def handler(request):
    ws = web.WebSocketResponse(max_msg_size=524288, compress=False)
    await ws.prepare(request)
    async for message in ws:
        await ws.send_str(RESPONSE)
    return ws
app = web.Application()
app.router.add_get("/", handler)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""


WRITE_PATH_SERVER = """
import os, sys
import orjson
from aiohttp import WSMsgType, web
from moltbot.gateway.connection import Connection
RESPONSE = orjson.loads(os.environ["BENCH_RESPONSE"])
FAST = os.environ["BENCH_FAST_WRITE"] == "1"
async def handler(request):
    ws = web.WebSocketResponse(max_msg_size=524288, compress=False)
    await ws.prepare(request)
    conn = Connection(ws, remote=None, local=True, transport=request.transport, fast_write=FAST)
    assert conn.fast_write is FAST, "this aiohttp has no fast write path"
    async for message in ws:
        if message.type == WSMsgType.TEXT:
            conn.send(RESPONSE)
    await conn.finish()
    return ws
app = web.Application()
app.router.add_get("/", handler)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""


def start_server(script: str, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    """``python -c script PORT`` on a free port, once it accepts connections."""
    import socket

    port = free_port_block()
    proc = subprocess.Popen(
        [sys.executable, "-c", script, str(port)],
        env={**os.environ, **env},
        start_new_session=True,
    )
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), 0.1).close()
            break
        except OSError:
            time.sleep(0.02)
    return proc, f"ws://127.0.0.1:{port}"


def bench_write_path(response: str) -> dict[str, Any]:
    """The gateway's per-connection writer (``gateway/connection.py``) answering every
    frame with our health response: frames written synchronously when nothing is queued
    (the fast path, through aiohttp's private frame writer) against every frame through
    the queue and its writer task. Same process layout as the baseline."""
    fast, fast_url = start_server(
        WRITE_PATH_SERVER, {"BENCH_RESPONSE": response, "BENCH_FAST_WRITE": "1"}
    )
    queued, queued_url = start_server(
        WRITE_PATH_SERVER, {"BENCH_RESPONSE": response, "BENCH_FAST_WRITE": "0"}
    )
    try:
        rounds = sorted(
            (asyncio.run(interleaved_rtt(fast_url, None, queued_url)) for _ in range(3)),
            key=lambda pair: pair[1] / pair[0],
        )
        return {
            "ab": rounds[1],
            "saved": [round((q - f) / q * 100, 1) for f, q in rounds],
            "fast_rps": asyncio.run(measure_protocol(fast_url, None))["rps"],
            "queued_rps": asyncio.run(measure_protocol(queued_url, None))["rps"],
        }
    finally:
        stop(fast)
        stop(queued)


def start_baseline(response: str) -> tuple[subprocess.Popen[bytes], str]:
    """A bare aiohttp WebSocket server answering every frame with ``response``: the
    same bytes our gateway sends, without the protocol."""
    return start_server(BASELINE_SERVER, {"BENCH_RESPONSE": response})


async def health_response(url: str, token: str) -> str:
    async with aiohttp.ClientSession() as session:
        ws = await connect(session, url, token)
        await ws.send_str('{"type":"req","id":"1","method":"health"}')
        while True:
            message = await ws.receive()
            if '"type":"res"' in message.data[:40]:
                await ws.close()
                return message.data


async def interleaved_rtt(url: str, token: str, base_url: str) -> tuple[float, float]:
    """Round trips to us and to the baseline in alternating blocks, so that load and
    frequency drift hit both alike. Returns the two medians in seconds."""
    request = '{"type":"req","id":"1","method":"health"}'
    async with aiohttp.ClientSession() as session:
        ours = await connect(session, url, token)
        base = await connect(session, base_url, None)
        samples: dict[str, list[float]] = {"ours": [], "base": []}
        for block in range(2 * AB_BLOCKS):
            name, ws = ("ours", ours) if block % 2 == 0 else ("base", base)
            for index in range(AB_BLOCK + 50):
                started = time.perf_counter()
                await ws.send_str(request)
                await _until_response(ws)
                if index >= 50:  # the first trips of a block warm that path up
                    samples[name].append(time.perf_counter() - started)
        await ours.close()
        await base.close()
    return statistics.median(samples["ours"]), statistics.median(samples["base"])


def upstream_wrapper() -> Path | None:
    choice = os.environ.get("MOLTBOT_BENCH_UPSTREAM", "1")
    if choice == "0":
        return None
    wrapper = ANCHOR / "openclaw"
    if not wrapper.exists() and choice == "install":
        script = Path(__file__).resolve().parents[2] / "shared" / "anchor" / "install.sh"
        subprocess.run(["bash", str(script)], check=True, capture_output=True)
    return wrapper if wrapper.exists() else None


def bench_upstream(wrapper: Path, home: Path) -> dict[str, Any]:
    port = free_port_block()
    token = "bench-token-" + os.urandom(8).hex()
    env = {
        **clean_env(home),
        "ANCHOR_HOME": str(home),
        "OPENCLAW_GATEWAY_TOKEN": token,
        "OPENCLAW_SKIP_CHANNELS": "1",
        "OPENCLAW_SKIP_CANVAS_HOST": "1",
    }
    argv = [str(wrapper), "gateway", "--port", str(port), "--allow-unconfigured", "--token", token]
    url = f"ws://127.0.0.1:{port}"
    proc, started = start_and_hello(argv, env, url, token, timeout=300)
    try:
        time.sleep(3)
        rss = rss_tree(proc.pid)
        numbers = asyncio.run(measure_protocol(url, token))
    finally:
        stop(proc)
    return {"start": started, "rss": rss, **numbers}


def run() -> list[Result]:
    with fresh_home() as home:
        ours = bench_moltbot(home)
    base = ours["base"]
    ours_ab, base_ab = ours["ab"]
    overhead = (ours_ab - base_ab) / base_ab * 100
    rows: list[Result] = [
        median_ms(
            "moltbot: start to hello-ok",
            ours["starts"],
            "`moltbot --profile bench gateway`, all sidecars; target ≤ 600 ms",
        ),
        Result(
            name="moltbot: idle RSS, process tree",
            value=round(ours["rss"], 1),
            unit="MiB",
            note="agents, browser control, canvas, channels started; target ≤ 60 MiB",
        ),
        Result(
            name="moltbot: idle RSS, core only",
            value=round(ours["rss_core"], 1),
            unit="MiB",
            note="sidecars skipped (CLAWDBOT_SKIP_*)",
        ),
        Result(
            name="moltbot: connect (WS + handshake)",
            value=round(ours["connect"] * 1000, 2),
            unit="ms",
            note=f"median of {CONNECTS}",
        ),
        Result(
            name="moltbot: health round trip",
            value=round(ours["rtt"] * 1e6, 1),
            unit="µs",
            note=f"median of {ROUND_TRIPS}, one connection",
        ),
        Result(
            name="moltbot: pipelined health",
            value=round(ours["rps"]),
            unit="req/s",
            note=f"{PIPELINED} requests on one connection; target ≥ 20,000",
        ),
        median_ms(
            "moltbot: `status` wall time", ours["status"], "gateway running; target ≤ 300 ms"
        ),
        Result(
            name="baseline: bare aiohttp WS round trip",
            value=round(base["rtt"] * 1e6, 1),
            unit="µs",
            note="answers every frame with our health response's bytes, "
            "no protocol: the floor of our stack",
        ),
        Result(
            name="baseline: bare aiohttp pipelined",
            value=round(base["rps"]),
            unit="req/s",
            note=f"{PIPELINED} frames",
        ),
        Result(
            name="A/B round trip: moltbot",
            value=round(ours_ab * 1e6, 1),
            unit="µs",
            note=f"median; {AB_BLOCKS} blocks of {AB_BLOCK} alternating with the baseline",
        ),
        Result(
            name="A/B round trip: baseline",
            value=round(base_ab * 1e6, 1),
            unit="µs",
            note="median, same blocks",
        ),
        Result(
            name="moltbot round trip over baseline",
            value=round(overhead, 1),
            unit="%",
            note="median of 3 A/B rounds (all: "
            f"{', '.join(str(v) for v in ours['ab_spread'])} %); target ≤ 15 %",
        ),
    ]
    path = ours["write_path"]
    fast_ab, queued_ab = path["ab"]
    rows += [
        Result(
            name="write path A/B: fast (synchronous frame write)",
            value=round(fast_ab * 1e6, 1),
            unit="µs",
            note="round trip through gateway/connection.py alone, writing each answer at "
            "once when nothing is queued; median, blocks alternating with the next row",
        ),
        Result(
            name="write path A/B: queued (writer task)",
            value=round(queued_ab * 1e6, 1),
            unit="µs",
            note="the same, every answer through the queue (the fallback)",
        ),
        Result(
            name="fast write path saves",
            value=round((queued_ab - fast_ab) / queued_ab * 100, 1),
            unit="%",
            note="of a queued round trip; median of 3 A/B rounds (all: "
            f"{', '.join(str(v) for v in path['saved'])} %)",
        ),
        Result(
            name="write path pipelined: fast / queued",
            value=round(path["fast_rps"] / path["queued_rps"], 2),
            unit="×",
            note=f"{round(path['fast_rps']):,} vs {round(path['queued_rps']):,} req/s, "
            f"{PIPELINED} frames (a backlog makes both use the queue)",
        ),
    ]
    wrapper = upstream_wrapper()
    if wrapper is None:
        rows.append(
            Result(
                name="upstream (openclaw 2026.1.30)",
                value=0.0,
                unit="-",
                note="not installed: run ../shared/anchor/install.sh",
            )
        )
        return rows
    with fresh_home() as home:
        try:
            theirs = bench_upstream(wrapper, home)
        except Exception as exc:  # report, don't hide our own numbers
            rows.append(Result(name="upstream: failed", value=0.0, unit="-", note=str(exc)[:200]))
            return rows
    rows += [
        Result(
            name="upstream: start to hello-ok",
            value=round(theirs["start"] * 1000, 1),
            unit="ms",
            note="`openclaw gateway --allow-unconfigured`, channels/canvas skipped",
        ),
        Result(
            name="upstream: idle RSS, process tree",
            value=round(theirs["rss"], 1),
            unit="MiB",
            note="node 24",
        ),
        Result(
            name="upstream: connect (WS + handshake)",
            value=round(theirs["connect"] * 1000, 2),
            unit="ms",
            note=f"median of {CONNECTS}",
        ),
        Result(
            name="upstream: health round trip",
            value=round(theirs["rtt"] * 1e6, 1),
            unit="µs",
            note=f"median of {ROUND_TRIPS}",
        ),
        Result(
            name="upstream: pipelined health",
            value=round(theirs["rps"]),
            unit="req/s",
            note=f"{PIPELINED} requests on one connection",
        ),
    ]
    return rows
