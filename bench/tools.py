"""What confinement costs the agent tools: an allowlisted ``exec`` with and without the
bubblewrap sandbox, a ``read`` through the no-follow walk, and listing the protected
places of the other instances on the host (done at most every 30 s per runtime)."""

from __future__ import annotations

import asyncio
import functools
import logging
import shutil
import statistics
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from _harness import Result, fresh_home

TITLE = "Agent tools: confinement and sandbox costs"
ORDER = 45
OTHER_INSTANCES = 4
RUNS = 40


def _instance(home: Path, config: dict):  # type: ignore[no-untyped-def]
    from moltbot.config.schema import Config
    from moltbot.instance.resolve import Invocation, resolve_identity, resolve_instance

    env = {"HOME": str(home), "PATH": "/usr/bin:/bin"}
    cfg = Config.model_validate(config)
    return resolve_instance(resolve_identity(Invocation(), env, home), cfg, env), cfg, env


async def _median_ms(call: Callable[[], Awaitable[object]], runs: int = RUNS) -> float:
    await call()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - start)
    return round(statistics.median(samples) * 1000, 2)


async def _measure(home: Path) -> list[Result]:
    from moltbot.agents.tools.base import ToolContext
    from moltbot.agents.tools.confine import protected_paths
    from moltbot.agents.tools.exec import ExecTool
    from moltbot.agents.tools.fs import ReadTool

    workspace = home / "clawd"
    workspace.mkdir()
    (workspace / "notes.txt").write_text("a line\n" * 1000)
    for index in range(OTHER_INSTANCES):
        state = home / f".clawdbot-other{index}"
        state.mkdir()
        (state / "moltbot.json").write_text(f'{{"gateway": {{"port": {20000 + 200 * index}}}}}')
    rows: list[Result] = []
    modes = ["off", "bwrap"] if shutil.which("bwrap") else ["off"]
    for mode in modes:
        instance, config, env = _instance(home, {"tools": {"exec": {"sandbox": {"mode": mode}}}})
        protected = protected_paths(instance, env)
        ctx = ToolContext(
            "main",
            "agent:main:main",
            "bench",
            workspace,
            instance,
            config,
            env,
            logging.getLogger("bench"),
            protected=protected,
        )
        tool = ExecTool()
        params = tool.parse({"command": "wc -l notes.txt"})
        rows.append(
            Result(
                name=f"exec `wc -l notes.txt`, sandbox {mode}",
                value=await _median_ms(functools.partial(tool.run, ctx, params)),
                unit="ms",
                note="allowlist checks + process start, median",
            )
        )
    read = ReadTool()
    read_params = read.parse({"path": "notes.txt"})
    rows.append(
        Result(
            name="read of a 7 kB file",
            value=await _median_ms(functools.partial(read.run, ctx, read_params), 200),
            unit="ms",
            note="confinement + no-follow walk + fstat checks, median",
        )
    )
    samples = []
    for _ in range(10):
        start = time.perf_counter()
        protected_paths(instance, env)
        samples.append(time.perf_counter() - start)
    rows.append(
        Result(
            name=f"list protected places ({OTHER_INSTANCES} other instances)",
            value=round(statistics.median(samples) * 1000, 2),
            unit="ms",
            note="host registry read, off the event loop, cached 30 s",
        )
    )
    return rows


def run() -> list[Result]:
    with fresh_home() as home:
        return asyncio.run(_measure(home))
