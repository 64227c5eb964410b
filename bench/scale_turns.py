"""Turn overhead as a session grows: message accepted → model request sent, with a
transcript of 10, 1,000 and 10,000 turns already behind it.

A real gateway subprocess (sidecars skipped) with the OpenAI-compatible stand-in as
its model (its own process). The session's transcript is written beforehand; then
:data:`TURNS` more turns run one after another. The figure is the run's own
``requestedMs`` mark (``agents/run.py`` timings, sent in the ``lifecycle`` end
event): session lookup, transcript write, context and prompt assembly.

The model's window is :data:`WINDOW` tokens, so the longer transcripts are compacted
(automatic compaction, summary by the stand-in) during the warm-up turns: the
measured turns read only the kept part, and their cost must not follow the length.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import uuid
from pathlib import Path
from typing import Any

from _harness import Result, fresh_home
from agents import FakeProcess, connect
from agents import write_config as write_agent_config

TITLE = "Turn overhead as a session grows"
ORDER = 42

HISTORY = (10, 1_000, 10_000)
TURNS = 15
WARMUP = 3
WINDOW = 8_000
SESSIONS = Path(".clawdbot-bench") / "agents" / "main" / "sessions"


def write_history(home: Path, turns: int) -> None:
    config_path = home / ".clawdbot-bench" / "moltbot.json"
    config = json.loads(config_path.read_text())
    config["models"]["providers"]["fake"]["models"][0]["contextWindow"] = WINDOW
    config_path.write_text(json.dumps(config))
    directory = home / SESSIONS
    directory.mkdir(parents=True)
    index = {"agent:main:bench": {"sessionId": "sid-bench", "updatedAt": 1_800_000_000_000}}
    (directory / "sessions.json").write_text(json.dumps(index))
    with (directory / "sid-bench.jsonl").open("w") as handle:
        handle.write(json.dumps({"type": "session", "version": 3, "id": "sid-bench"}) + "\n")
        for n in range(turns):
            for role, text in (("user", f"question {n}: what next?"), ("assistant", f"step {n}")):
                entry: dict[str, Any] = {"type": "message", "id": f"{role[0]}{n}", "runId": f"r{n}"}
                entry["message"] = {"role": role, "content": [{"type": "text", "text": text}]}
                if role == "assistant":
                    entry["message"].update(model="m", stopReason="stop")
                handle.write(json.dumps(entry) + "\n")


async def measure(url: str, token: str) -> list[dict[str, float]]:
    import aiohttp

    async with aiohttp.ClientSession() as http:
        client = await connect(url, token, http)
        timings = []
        for index in range(WARMUP + TURNS):
            run_id = str(uuid.uuid4())
            await client.turn("agent:main:bench", f"turn {index}", run_id)
            for _ in range(100):  # the lifecycle end event carries the timings
                if run_id in client.timings:
                    break
                await asyncio.sleep(0.01)
            timings.append(client.timings.get(run_id, {}))
        client.reader.cancel()
        await client.ws.close()
    return timings[WARMUP:]


def run() -> list[Result]:
    from gateway_harness import CORE_ONLY, start_gateway

    rows = []
    with FakeProcess() as fake:
        for turns in HISTORY:
            with fresh_home() as home:
                token = write_agent_config(home, fake.base_url, 4)
                write_history(home, turns)
                gw = start_gateway(home, "bench", env=CORE_ONLY, timeout=60)
                try:
                    timings = asyncio.run(measure(gw.url, token))
                finally:
                    gw.stop()
                index = json.loads((home / SESSIONS / "sessions.json").read_text())
                compactions = index["agent:main:bench"].get("compactionCount", 0)
            requested = [t["requestedMs"] for t in timings if "requestedMs" in t]
            if not requested:
                raise RuntimeError(f"no timings came back: {timings}")
            rows.append(
                Result(
                    name=f"accepted → model request sent, {turns:,}-turn transcript",
                    value=round(statistics.median(requested), 2),
                    unit="ms",
                    note=f"median of {len(requested)} turns (max {max(requested):.1f}), "
                    f"{compactions} compaction(s) in the warm-up ({WINDOW:,}-token window); "
                    "target: flat in the transcript's length once compaction bounds the context",
                )
            )
    return rows
