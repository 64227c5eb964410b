"""The host at scale: ``status --all`` and ``doctor --all`` with 5, 50 and 200
instances, and 20 gateways running at once on this host.

Instances are real state dirs with real config files in a fresh HOME, found by the
real host registry. ``status --all`` looks at the host's sockets once
(``service/inspect.py`` ``listening``) and ``doctor --all`` checks only the pairs of
instances that can clash (``doctor/checks.py`` ``_pairs_in_reach``); before, each
instance took its own pass over every socket and every pair was compared.

The 20 gateways are started together as users start them (``moltbot --profile gN
gateway``, every subsystem enabled); *start of all 20* runs until each has answered
``hello-ok``; then one client per gateway sends ``health`` requests, all 20 at once.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

import aiohttp

from _harness import Result, clean_env, cpu_runs, fresh_home, moltbot_command
from footprint import pss_tree
from gateway import connect, rss_tree, stop
from gateway_harness import free_port_block

TITLE = "Host at scale: status --all, doctor --all, 20 gateways at once"
ORDER = 45

INSTANCES = (5, 50, 200)
GATEWAYS = 20
HEALTH_CALLS = 200


def write_instances(home: Path, count: int, first_port: int = 20_000) -> None:
    for n in range(count):
        state = home / f".clawdbot-p{n}"
        (state / "logs").mkdir(parents=True)
        config = {
            "gateway": {
                "mode": "local",
                "port": first_port + 120 * n,
                "auth": {"token": secrets.token_urlsafe(24)},
            },
            "agents": {"defaults": {"workspace": str(home / f"clawd-p{n}")}},
        }
        (state / "moltbot.json").write_text(json.dumps(config))


def host_commands() -> list[Result]:
    rows = []
    for count in INSTANCES:
        with fresh_home() as home:
            write_instances(home, count)
            env = clean_env(home)
            for command in ("status", "doctor"):
                samples, cpus = cpu_runs([*moltbot_command(), command, "--all"], 3, env=env)
                target = "≤ 0.5 s" if command == "status" else "≤ 1 s"
                rows.append(
                    Result(
                        name=f"`{command} --all`, {count} instances",
                        value=round(statistics.median(samples) * 1000, 1),
                        unit="ms",
                        note=f"median of 3 (min {min(samples) * 1000:.0f}; CPU "
                        f"{statistics.median(cpus) * 1000:.0f} ms); none running; "
                        f"target {target} at 200 instances, growing at most linearly",
                    )
                )
    return rows


def distinct_bases(count: int) -> list[int]:
    bases: list[int] = []
    while len(bases) < count:
        base = free_port_block()
        if all(abs(base - other) >= 120 for other in bases):
            bases.append(base)
    return bases


async def wait_hello(url: str, token: str, proc: subprocess.Popen[bytes]) -> float:
    async with aiohttp.ClientSession() as session:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"a gateway exited {proc.returncode}")
            try:
                ws = await connect(session, url, token)
                await ws.close()
                return time.perf_counter()
            except (aiohttp.ClientError, OSError):
                await asyncio.sleep(0.01)


async def health_p99(urls: list[tuple[str, str]]) -> list[float]:
    """Each gateway's ``health`` round-trip p99 (s), all clients running at once."""

    async def one(session: aiohttp.ClientSession, url: str, token: str) -> float:
        ws = await connect(session, url, token)
        samples = []
        for index in range(HEALTH_CALLS + 20):
            started = time.perf_counter()
            await ws.send_str(f'{{"type":"req","id":"h{index}","method":"health"}}')
            while '"type":"res"' not in (await ws.receive()).data[:40]:
                pass
            if index >= 20:
                samples.append(time.perf_counter() - started)
        await ws.close()
        samples.sort()
        return samples[int(0.99 * len(samples)) - 1]

    async with aiohttp.ClientSession() as session:
        return list(await asyncio.gather(*(one(session, u, t) for u, t in urls)))


def many_gateways() -> dict[str, Any]:
    with fresh_home() as home:
        env = clean_env(home)
        bases = distinct_bases(GATEWAYS)
        tokens = []
        for n, base in enumerate(bases):
            subprocess.run(
                [*moltbot_command(), "--profile", f"g{n}", "setup", "--port", str(base)],
                env=env,
                check=True,
                capture_output=True,
            )
            config = json.loads((home / f".clawdbot-g{n}" / "moltbot.json").read_text())
            tokens.append(config["gateway"]["auth"]["token"])
        urls = [(f"ws://127.0.0.1:{b}", t) for b, t in zip(bases, tokens, strict=True)]
        started = time.perf_counter()
        procs = [
            subprocess.Popen(
                [*moltbot_command(), "--profile", f"g{n}", "gateway"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            for n in range(GATEWAYS)
        ]
        try:

            async def all_up() -> list[float]:
                return await asyncio.gather(
                    *(wait_hello(u, t, p) for (u, t), p in zip(urls, procs, strict=True))
                )

            ready = asyncio.run(all_up())
            time.sleep(3)
            rss = sum(rss_tree(p.pid) for p in procs)
            pss = sum(pss_tree(p.pid) for p in procs)
            p99 = asyncio.run(health_p99(urls))
        finally:
            for proc in procs:
                stop(proc)
        return {
            "all_up": max(ready) - started,
            "first_up": min(ready) - started,
            "rss": rss,
            "pss": pss,
            "p99": p99,
        }


def run() -> list[Result]:
    rows = host_commands()
    got = many_gateways()
    p99_ms = sorted(p * 1000 for p in got["p99"])
    rows += [
        Result(
            name=f"{GATEWAYS} gateways: start of all",
            value=round(got["all_up"], 2),
            unit="s",
            note=f"started together until each answered hello-ok; the first after "
            f"{got['first_up']:.2f} s; 2 cores; target ≤ {GATEWAYS * 0.3:.0f} s "
            f"({GATEWAYS} × the single gateway's 0.3 s)",
        ),
        Result(
            name=f"{GATEWAYS} gateways: total RSS",
            value=round(got["rss"], 1),
            unit="MiB",
            note=f"PSS {got['pss']:.0f} MiB (libraries are shared between them), every "
            f"subsystem enabled; target ≤ {GATEWAYS} × the single gateway's idle RSS",
        ),
        Result(
            name=f"{GATEWAYS} gateways: health p99, worst gateway",
            value=round(p99_ms[-1], 2),
            unit="ms",
            note=f"median gateway {statistics.median(p99_ms):.2f} ms; {HEALTH_CALLS} round "
            f"trips per gateway, all {GATEWAYS} clients at once; target ≤ 10 ms",
        ),
    ]
    return rows
