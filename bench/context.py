"""Agents: assembling a long session's prompt, and memory search.

- *prompt assembly*: what a turn spends before its model request — reading the
  session's context from the transcript, building the system prompt (workspace files,
  skills), estimating tokens, deciding about compaction — for sessions of 500, 2,000
  and 5,000 turns, before and after a compaction. After one, a turn reads only from
  the compaction's first kept entry on, so the time must not grow with the length of
  the transcript. *cold*: a fresh session store (the file is read); *warm*: the
  store's cache of the kept part. The summary is written by the OpenAI-compatible
  stand-in (tests/fakes), in process.
- *memory search*: 10,000 notes (1,000 files of 10) in ``memory/``: building the index
  (SQLite FTS5), a search, and a search right after one file changed (re-indexed first).
- *skill command*: what a ``/word`` message that is no chat command costs before it
  reaches the agent — finding the workspace's skills (50), checking eligibility, and
  resolving ``/<skill> <request>`` into the agent's prompt.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from _harness import Result, median_ms

TITLE = "Agents: prompt assembly of long sessions, memory search"
ORDER = 45

SIZES = (500, 2000, 5000)
SAMPLES = 15
KEY = "agent:main:main"
NOTES_FILES = 1000
NOTES_PER_FILE = 10
WORDS = "tide reef kelp lobster harbour boat crab shell current sand ocean net".split()


async def _runtime(home: Path, base_url: str) -> Any:
    from moltbot.agents.runtime import embedded
    from moltbot.config.schema import Config
    from moltbot.instance.resolve import Invocation, resolve_identity, resolve_instance

    env = {"HOME": str(home), "MOLTBOT_STATE_DIR": str(home / ".clawdbot"), "PATH": "/usr/bin:/bin"}
    config = Config.model_validate(
        {
            "models": {
                "providers": {
                    "fake": {
                        "baseUrl": base_url,
                        "api": "openai-completions",
                        "models": [{"id": "m1", "contextWindow": 128_000}],
                    }
                }
            },
            "agents": {
                "defaults": {
                    "model": "fake/m1",
                    "workspace": str(home / "workspace"),
                    # compacted here on purpose, not by the first measured turn
                    "compaction": {"mode": "manual"},
                }
            },
        }
    )
    identity = resolve_identity(Invocation(), env, home)
    runtime = embedded(resolve_instance(identity, config, env), config, env)
    await runtime.start()
    return runtime


async def _fill(runtime: Any, turns: int) -> None:
    from moltbot.agents import context as ctxmod
    from moltbot.agents.providers import AssistantMessage

    store = runtime.store("main")
    entry = await store.ensure(KEY)
    for turn in range(turns):
        run_id = f"r{turn}"
        text = f"turn {turn}: " + " ".join(WORDS[(turn + i) % len(WORDS)] for i in range(40))
        store.write(entry, ctxmod.user_entry(text, run_id))
        reply = AssistantMessage("noted: " + text[:200])
        store.write(
            entry,
            ctxmod.assistant_entry(
                reply, run_id, api=None, provider="fake", model="m1", usage=None, stop_reason="stop"
            ),
        )
    await store.sync(entry)


async def _prepare_time(runtime: Any, *, cold: bool) -> float:
    """Seconds for one turn's context preparation (the real ``TurnRunner._prepare``)."""
    from moltbot.agents.providers import ToolSpec
    from moltbot.agents.run import Run

    if cold:
        runtime._stores.clear()
    store = runtime.store("main")
    entry = await store.get(KEY)
    chain = runtime.models.chain("main", entry)
    spec = await runtime.agent_spec("main")
    tools = runtime.tools
    specs = tuple(ToolSpec(t.name, t.description, t.parameters_schema()) for t in tools.values())
    run = Run(id="bench", agent_id="main", session_key=KEY, message="", timeout=60)
    started = time.perf_counter()
    await runtime._runner._prepare(run, store, chain, spec.workspace, tools, specs)
    return time.perf_counter() - started


async def _sessions() -> list[Result]:
    from tests.fakes.llm_openai import FakeOpenAI
    from tests.fakes.llm_script import Reply

    rows: list[Result] = []
    after_warm: list[float] = []
    async with FakeOpenAI() as llm:
        llm.responder = lambda body: Reply("SUMMARY: a long talk about the sea.")
        for turns in SIZES:
            with tempfile.TemporaryDirectory(prefix="bench-context-") as tmp:
                runtime = await _runtime(Path(tmp), llm.base_url)
                try:
                    await _fill(runtime, turns)
                    before = [await _prepare_time(runtime, cold=True) for _ in range(3)]
                    warm_before = [await _prepare_time(runtime, cold=False) for _ in range(5)]
                    outcome = await runtime.compact(KEY, keep_recent=4000)
                    assert outcome.compacted, outcome
                    cold = [await _prepare_time(runtime, cold=True) for _ in range(SAMPLES)]
                    warm = [await _prepare_time(runtime, cold=False) for _ in range(SAMPLES)]
                finally:
                    await runtime.stop()
            after_warm.append(statistics.median(warm))
            rows += [
                median_ms(f"{turns} turns, not compacted: cold", before, "reads the whole file"),
                median_ms(f"{turns} turns, not compacted: warm", warm_before, "cached whole file"),
                median_ms(f"{turns} turns, compacted: cold", cold, "reads the kept part only"),
                median_ms(f"{turns} turns, compacted: warm", warm, "cached kept part"),
            ]
    growth = after_warm[-1] / after_warm[0] if after_warm[0] else 0.0
    rows.append(
        Result(
            name=f"compacted, warm: {SIZES[-1]} turns vs {SIZES[0]}",
            value=round(growth, 2),
            unit="×",
            note="~1 means prompt assembly does not grow with the transcript",
        )
    )
    return rows


async def _memory() -> list[Result]:
    from moltbot.agents.memory import MemoryIndex

    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        workspace = Path(tmp) / "ws"
        (workspace / "memory").mkdir(parents=True)
        for f in range(NOTES_FILES):
            lines = []
            for n in range(NOTES_PER_FILE):
                words = " ".join(WORDS[(f * 7 + n * 3 + i) % len(WORDS)] for i in range(12))
                lines.append(f"- note {f}-{n}: {words} id{f * NOTES_PER_FILE + n}")
            (workspace / "memory" / f"day-{f:04d}.md").write_text("\n".join(lines) + "\n")
        index = MemoryIndex(workspace, Path(tmp) / "mem.sqlite")
        try:
            started = time.perf_counter()
            await index.sync()
            build = time.perf_counter() - started
            queries = ["lobster harbour", "id4242", "kelp current net", "boat", "id9999 reef"]
            samples = []
            for i in range(50):
                started = time.perf_counter()
                hits = await index.search(queries[i % len(queries)])
                samples.append(time.perf_counter() - started)
                assert hits
            changed = []
            for i in range(10):
                (workspace / "memory" / "day-0000.md").write_text(f"- fresh note {i} lobster\n")
                started = time.perf_counter()
                hits = await index.search(f"fresh note {i}")
                changed.append(time.perf_counter() - started)
                assert hits[0].path == "memory/day-0000.md"
        finally:
            await index.stop()
    notes = NOTES_FILES * NOTES_PER_FILE
    return [
        Result(
            name=f"memory index build ({notes} notes)",
            value=round(build * 1000, 1),
            unit="ms",
            note=f"{NOTES_FILES} files, FTS5",
        ),
        median_ms(f"memory search over {notes} notes", samples, "incl. the freshness check"),
        median_ms("memory search after a file changed", changed, "re-indexes that file first"),
    ]


SKILLS = 50


def _skill_command() -> list[Result]:
    from moltbot.agents import skills
    from moltbot.config.schema import Config

    with tempfile.TemporaryDirectory(prefix="bench-skills-") as tmp:
        workspace = Path(tmp) / "ws"
        for n in range(SKILLS):
            folder = workspace / "skills" / f"skill-{n:02d}"
            folder.mkdir(parents=True)
            (folder / "SKILL.md").write_text(
                f"---\nname: skill-{n:02d}\ndescription: Skill number {n}\n"
                'metadata: {"openclaw": {"requires": {"bins": ["sh"]}}}\n---\nDo it.\n'
            )
        config, env = Config(), {"PATH": "/usr/bin:/bin"}
        samples = []
        for _ in range(30):
            started = time.perf_counter()
            found = skills.statuses(config, env, workspace, Path(tmp) / "managed")
            commands = skills.skill_commands(found, {"status", "help", "skill"})
            prompt = skills.skill_prompt(commands, "/skill_25 the tide at noon")
            samples.append(time.perf_counter() - started)
            assert prompt is not None and "skill-25" in prompt
    return [
        median_ms(
            f"/<skill> request resolved among {SKILLS} skills",
            samples,
            "discovery + eligibility + prompt, per /word message",
        )
    ]


def run() -> list[Result]:
    async def both() -> list[Result]:
        return [*(await _sessions()), *(await _memory()), *_skill_command()]

    return asyncio.run(both())


if __name__ == "__main__":
    for row in run():
        print(row)
