"""Rescue: how long a repair takes, and what the config history costs a write.

Real processes in a fresh HOME: a main instance and a rescue instance granted it. The
CLI front-end (``moltbot --profile rescue rescue main ...``) runs each operation; a
restart is timed until main answers ``health`` again (a detached ``moltbot --profile main
gateway`` without browser, canvas and channels). The config write figure is
``update_config`` in process, with the history on and off.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from _harness import Result, clean_env, fresh_home, median_ms, moltbot_command, time_runs
from gateway_harness import CORE_ONLY, free_port_block

TITLE = "Rescue: repair operations and config history"
ORDER = 60
RUNS = 7


def run() -> list[Result]:
    moltbot = moltbot_command()
    results: list[Result] = []
    with fresh_home() as home:
        env = clean_env(home, CORE_ONLY)
        cli = lambda *args: [*moltbot, *args]  # noqa: E731
        subprocess.run(
            cli("--profile", "main", "setup", "--port", str(free_port_block())),
            env=env,
            check=True,
            capture_output=True,
        )
        rescue_port = free_port_block()
        subprocess.run(
            cli("--profile", "rescue", "setup", "--port", str(rescue_port)),
            env=env,
            check=True,
            capture_output=True,
        )
        subprocess.run(
            cli("--profile", "rescue", "config", "set", "rescue.targets", '["main"]'),
            env=env,
            check=True,
            capture_output=True,
        )
        rescue = cli("--profile", "rescue", "rescue", "main")
        try:
            results.append(
                median_ms(
                    "rescue main status (main down)",
                    time_runs([*rescue, "status"], RUNS, env=env),
                    "config read, log tail, service facts",
                )
            )
            results.append(
                median_ms(
                    "rescue main restart (down → answers health)",
                    time_runs([*rescue, "restart", "--yes"], RUNS, env=env),
                    "stop (SIGTERM) + detached start + health over the protocol",
                )
            )
            results.append(
                median_ms(
                    "rescue main status (main running)",
                    time_runs([*rescue, "status"], RUNS, env=env),
                    "+ probe: connect and `status` over the protocol",
                )
            )
            results.append(
                median_ms(
                    "rescue main config diff",
                    time_runs([*rescue, "config", "diff"], RUNS, env=env),
                )
            )
            results += _chat_commands(home, rescue_port)
        finally:
            _stop(home / ".clawdbot-main" / "gateway.json")
    results += _history_cost()
    return results


def _chat_commands(home: Path, port: int) -> list[Result]:
    """``/rescue status main`` typed in WebChat (``chat.send`` on the rescue gateway, the
    chat-command layer, no model), against ``/whoami`` (the layer alone)."""
    import asyncio
    import uuid

    from gateway_harness import start_gateway, ws_client

    gateway = start_gateway(home, "rescue", port=port, port_flag=False, env=CORE_ONLY)

    async def timed(text: str) -> list[float]:
        samples = []
        async with ws_client(gateway.url, gateway.token) as client:
            for _ in range(RUNS + 1):
                key = str(uuid.uuid4())
                started = time.perf_counter()
                answer = await client.call(
                    "chat.send",
                    {"sessionKey": "main", "message": text, "idempotencyKey": key},
                    timeout=60,
                )
                samples.append(time.perf_counter() - started)
                assert answer.get("command"), answer
        return samples[1:]

    try:
        rescue = asyncio.run(timed("/rescue status main"))
        whoami = asyncio.run(timed("/whoami"))
    finally:
        gateway.stop()
    return [
        median_ms(
            "/rescue status main in WebChat (main running)",
            rescue,
            "chat.send → command layer → probe main over the protocol; no model",
        ),
        median_ms("/whoami in WebChat", whoami, "the command layer alone, for comparison"),
    ]


def _stop(runtime_file: Path) -> None:
    try:
        pid = json.loads(runtime_file.read_text())["pid"]
        os.kill(pid, signal.SIGTERM)
    except (OSError, ValueError, KeyError):
        return
    deadline = time.monotonic() + 10
    while runtime_file.exists() and time.monotonic() < deadline:
        time.sleep(0.05)


def _history_cost() -> list[Result]:
    from moltbot.config import history
    from moltbot.config.store import update_config

    def timed(keep: bool) -> list[float]:
        directory = Path(tempfile.mkdtemp(prefix="moltbot-bench-"))
        path = directory / "moltbot.json"
        original = history.record
        if not keep:
            history.record = lambda *a, **k: None  # type: ignore[assignment]
        try:
            samples = []
            for n in range(60):
                started = time.perf_counter()
                update_config(path, lambda d, n=n: d.__setitem__("n", n), {})
                samples.append(time.perf_counter() - started)
            return samples[10:]
        finally:
            history.record = original  # type: ignore[assignment]

    with_history, without = timed(True), timed(False)
    extra = statistics.median(with_history) - statistics.median(without)
    return [
        median_ms(
            "config write (update_config), with history",
            with_history,
            f"{extra * 1000:.2f} ms more than without: the kept version and its "
            "index (fsync'd), and the writer record",
        ),
        median_ms("config write (update_config), history off", without, "for comparison"),
    ]
