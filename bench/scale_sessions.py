"""Sessions at scale: ``sessions.list`` and ``chat.history`` with 10, 1,000 and 10,000
sessions, ``chat.history`` on transcripts of 1,000 to 100,000 lines, and the time to
load the session index.

A real gateway subprocess (sidecars skipped: no browser or canvas needed) over a
store written beforehand: ``sessions.json`` with N sessions and one transcript.
``chat.history`` reads a transcript's tail (``sessions/transcript.py``
``read_tail``); the bytes it read are the kernel's count (``/proc/<pid>/io``).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from pathlib import Path
from typing import Any

from _harness import Result, fresh_home

TITLE = "Sessions at scale: sessions.list, chat.history, index load"
ORDER = 41

SESSIONS = (10, 1_000, 10_000)
LINES = (1_000, 10_000, 100_000)
CALLS = 20


def write_store(home: Path, sessions: int, lines: int) -> Path:
    """A config, ``sessions`` sessions of the main agent, and a ``lines``-line
    transcript for ``main`` (the newest)."""
    import secrets

    state = home / ".clawdbot-bench"
    directory = state / "agents" / "main" / "sessions"
    directory.mkdir(parents=True)
    config = {
        "gateway": {"mode": "local", "auth": {"token": secrets.token_urlsafe(24)}},
        "agents": {"defaults": {"workspace": str(home / "clawd-bench")}},
    }
    (state / "moltbot.json").write_text(json.dumps(config))
    index: dict[str, Any] = {
        f"agent:main:chat-{n}": {
            "sessionId": f"sid-{n}",
            "updatedAt": 1_700_000_000_000 + n,
            "label": f"chat {n}",
            "channel": "telegram",
            "chatType": "direct",
            "inputTokens": 1200,
            "outputTokens": 300,
        }
        for n in range(sessions - 1)
    }
    index["agent:main:main"] = {"sessionId": "sid-main", "updatedAt": 1_800_000_000_000}
    (directory / "sessions.json").write_text(json.dumps(index, indent=2))
    transcript = directory / "sid-main.jsonl"
    with transcript.open("w") as handle:
        handle.write(json.dumps({"type": "session", "version": 3, "id": "sid-main"}) + "\n")
        for n in range(lines // 2):
            for role, text in (("user", f"question {n} about the weather"), ("assistant", "ok")):
                entry = {"type": "message", "id": f"{role[0]}{n}", "runId": f"r{n}"}
                entry["message"] = {"role": role, "content": [{"type": "text", "text": text}]}
                handle.write(json.dumps(entry) + "\n")
    return directory


def rchar(pid: int) -> int:
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    return 0


async def timed(client: Any, method: str, params: dict[str, Any], count: int) -> list[float]:
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        await client.call(method, params, timeout=120)
        samples.append(time.perf_counter() - started)
    return samples


async def measure_gateway(home: Path, gw: Any) -> dict[str, Any]:
    from gateway_harness import ws_client

    async with ws_client(gw.url, gw.token) as client:
        await client.call("health")
        first = await timed(client, "sessions.list", {"limit": 50}, 1)
        listed = await timed(client, "sessions.list", {"limit": 50}, CALLS)
        everything = await timed(client, "sessions.list", {}, 3)
        before = rchar(gw.pid)
        history = await timed(client, "chat.history", {"sessionKey": "main", "limit": 50}, CALLS)
        read = (rchar(gw.pid) - before) / CALLS
    return {
        "first": first[0],
        "list": statistics.median(listed),
        "all": statistics.median(everything),
        "history": statistics.median(history),
        "history_read": read,
    }


def index_load(directory: Path) -> float:
    """Seconds to read and validate ``sessions.json`` (median of 3 fresh stores)."""
    from moltbot.sessions.store import SessionStore

    samples = []
    for _ in range(3):
        store = SessionStore(directory)
        started = time.perf_counter()
        store.snapshot()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def one_size(sessions: int, lines: int) -> dict[str, Any]:
    from gateway_harness import CORE_ONLY, start_gateway

    with fresh_home() as home:
        directory = write_store(home, sessions, lines)
        size = (directory / "sid-main.jsonl").stat().st_size
        gw = start_gateway(home, "bench", env=CORE_ONLY, timeout=60)
        try:
            got = asyncio.run(measure_gateway(home, gw))
        finally:
            gw.stop()
        got["load"] = index_load(directory)
        got["size"] = size
        return got


def run() -> list[Result]:
    rows: list[Result] = []
    by_sessions = {n: one_size(n, LINES[-1]) for n in SESSIONS}
    by_lines = {n: one_size(SESSIONS[0], n) for n in LINES}

    def ms(seconds: float) -> float:
        return round(seconds * 1000, 2)

    for n, got in by_sessions.items():
        rows.append(
            Result(
                name=f"sessions.list limit 50, {n:,} sessions",
                value=ms(got["list"]),
                unit="ms",
                note=f"median of {CALLS}; first call {ms(got['first'])} ms (loads the index); "
                "target: flat in the number of sessions beyond the index parse",
            )
        )
    for n, got in by_sessions.items():
        rows.append(
            Result(
                name=f"sessions.list, every row, {n:,} sessions",
                value=ms(got["all"]),
                unit="ms",
                note="median of 3; all rows asked for: grows with the answer, by design",
            )
        )
    for n, got in by_sessions.items():
        rows.append(
            Result(
                name=f"index load (sessions.json), {n:,} sessions",
                value=ms(got["load"]),
                unit="ms",
                note="read + validate once; later reads are a stat while the file is unchanged",
            )
        )
    for n, got in by_sessions.items():
        rows.append(
            Result(
                name=f"chat.history limit 50, {n:,} sessions, 100,000-line transcript",
                value=ms(got["history"]),
                unit="ms",
                note=f"median of {CALLS}; target: flat in the number of sessions",
            )
        )
    for n, got in by_lines.items():
        rows.append(
            Result(
                name=f"chat.history limit 50, {n:,}-line transcript",
                value=ms(got["history"]),
                unit="ms",
                note=f"median of {CALLS}; read {got['history_read'] / 1024:,.0f} KiB per call "
                f"of a {got['size'] / 2**20:.1f} MiB file (tail only); target: flat in "
                "the transcript's length",
            )
        )
    return rows
