"""``chat.history`` and ``sessions.list`` on big stores: the gateway reads a long
transcript's tail, never the whole file (counted by the kernel: ``/proc/<pid>/io``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.agents.gateway_agents import start

from gateway_harness import ws_client

pytestmark = pytest.mark.skipif(not Path("/proc/self/io").exists(), reason="needs /proc/<pid>/io")


def read_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar")


def write_store(state: Path, sessions: int, turns: int) -> Path:
    """``sessions`` sessions in the main agent's index; the newest has ``turns`` turns."""
    directory = state / "agents" / "main" / "sessions"
    directory.mkdir(parents=True)
    index = {
        f"agent:main:s{n}": {"sessionId": f"sid-{n}", "updatedAt": 1_700_000_000_000 + n}
        for n in range(sessions)
    }
    index["agent:main:main"] = {"sessionId": "sid-main", "updatedAt": 1_800_000_000_000}
    (directory / "sessions.json").write_text(json.dumps(index))
    transcript = directory / "sid-main.jsonl"
    with transcript.open("w") as handle:
        handle.write(json.dumps({"type": "session", "version": 3, "id": "sid-main"}) + "\n")
        for n in range(turns):
            for role, text in (("user", f"question {n} " + "x" * 80), ("assistant", f"answer {n}")):
                item = {"type": "message", "id": f"{role[0]}{n}", "runId": f"r{n}"}
                item["message"] = {"role": role, "content": [{"type": "text", "text": text}]}
                handle.write(json.dumps(item) + "\n")
    return transcript


async def test_history_of_a_100k_line_transcript_reads_its_tail(home):
    transcript = write_store(home / ".clawdbot-main", sessions=2_000, turns=50_000)
    size = transcript.stat().st_size  # 100,001 lines, about 13 MB
    gw = start(home, {})
    try:
        async with ws_client(gw.url, gw.token) as client:
            await client.call("health")
            before = read_bytes(gw.pid)
            history = await client.call("chat.history", {"sessionKey": "main", "limit": 50})
            read = read_bytes(gw.pid) - before
            texts = [m["content"][0]["text"] for m in history["messages"]]
            assert len(texts) == 50 and texts[-1] == "answer 49999"
            assert texts[0] == "question 49975 " + "x" * 80
            assert read < size // 20, f"read {read:,} bytes of a {size:,}-byte transcript"

            listed = await client.call("sessions.list", {"limit": 3})
            assert [row["key"] for row in listed["sessions"]] == [
                "agent:main:main",
                "agent:main:s1999",
                "agent:main:s1998",
            ]
            everything = await client.call("sessions.list", {})
            assert everything["count"] == 2_001
    finally:
        gw.stop()


async def test_history_pages_back_with_a_before_cursor_reading_only_what_it_needs(home):
    transcript = write_store(home / ".clawdbot-main", sessions=1, turns=50_000)
    size = transcript.stat().st_size
    gw = start(home, {})
    try:
        async with ws_client(gw.url, gw.token) as client:
            last = await client.call("chat.history", {"sessionKey": "main", "limit": 100})
            assert last["hasMore"] is True
            cursor = last["messages"][0]["id"]
            assert cursor == "u49950"
            before = read_bytes(gw.pid)
            page = await client.call(
                "chat.history", {"sessionKey": "main", "limit": 100, "before": cursor}
            )
            read = read_bytes(gw.pid) - before
            ids = [m["id"] for m in page["messages"]]
            assert ids[0] == "u49900" and ids[-1] == "a49949" and len(ids) == 100
            assert page["hasMore"] is True
            assert read < size // 20, f"read {read:,} bytes of a {size:,}-byte transcript"

            first = await client.call(
                "chat.history", {"sessionKey": "main", "limit": 100, "before": "a49"}
            )
            assert [m["id"] for m in first["messages"]] == [
                f"{r}{n}" for n in range(50) for r in "ua"
            ][:-1]
            assert first["hasMore"] is False

            with pytest.raises(Exception, match="no message 'nope'"):
                await client.call("chat.history", {"sessionKey": "main", "before": "nope"})
            again = await client.call("chat.history", {"sessionKey": "main", "limit": 1})
            assert again["messages"][0]["id"] == "a49999"
    finally:
        gw.stop()
