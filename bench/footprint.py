"""Footprint: what an idle gateway costs, how fast it answers its first client, and
where that time and memory go — against the floor of the libraries it is built on.

The gateway runs as a user gets it from ``moltbot --profile bench setup``: every
subsystem enabled (agents, channels, browser control, canvas, heartbeat, cron), no
model, channel or cron job configured. Its sidecars start after the port answers, so
``hello-ok`` does not wait for them. The floor rows import only the libraries (a fresh interpreter
each), and the bare aiohttp server is the one ``bench/gateway.py`` compares against.
"""

from __future__ import annotations

import asyncio
import re
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psutil

from _harness import (
    Result,
    clean_env,
    cpu_runs,
    fresh_home,
    median_ms,
    moltbot_command,
    time_runs,
)
from gateway import (
    BASELINE_SERVER,
    core_rss,
    rss_tree,
    setup,
    start_and_hello,
    start_server,
    stop,
    subsystems_running,
)

TITLE = "Footprint: start, idle memory, CLI latency, and their floor"
ORDER = 12
SUMMARY = """\
Reading the memory rows: the *floor* rows are fresh interpreters importing only the
libraries the gateway is built on (asyncio with ssl, aiohttp, click), then the config
schema with one config validated. The *moltbot* row adds the gateway's and its
subsystems' modules, imported but not started; the idle gateway adds what it holds at
run time (config, sockets, watchers, worker threads). RSS counts shared libraries in
full; PSS (in the note) splits them between the processes that map them, which is what
20 gateways on one host pay (host section). No SDK, tiktoken, numpy, croniter or
watchfiles is imported until a configured feature needs it
(`tests/gateway/test_footprint.py` checks the gateway's own `-X importtime` report).

Where the idle gateway's memory went (issue 19): RSS 64.6 → 44.5–44.7 MiB, PSS 51.8 →
~35–38 MiB (PSS moves with what else runs on the host), start to hello-ok 415 → ~190 ms
at light load. The process tree is one process: the browser and canvas sidecars spawn
nothing while idle. Each change was measured as interleaved A/B medians of 5 to 9
starts, 3–4 s idle each, on the shared 2-core host (load 0.7–3):

- 2.4 MiB: the config file is watched with inotify (libc through ctypes, read on the
  event loop; `watchfiles` where inotify is missing) and the canvas folder only while
  a live-reload page listens: no `watchfiles`/anyio import, no Rust watcher threads.
- 0.9 MiB: `malloc_trim(0)` once the sidecars are up (after `gc.collect()` and
  `gc.freeze()`); plistlib and difflib imported where used.
- 1.6 MiB and ~70 ms of start: the method families are imported at the first call of
  one of their methods, in a thread (`MethodTable`); `hello-ok`'s method list comes
  from a fixed table (`DECLARED` in gateway/methods/registry.py, which
  `tests/gateway/test_methods_table.py` keeps equal to what the families declare).
- 0.9 MiB: the rescue operations and chat commands, and the browser's route table and
  actions, load with their first use; 0.4 MiB: web_fetch's HTML parser and the skills
  prompt's XML escaping too (html.parser, xml.sax).
- 0.9 MiB RSS (0.2 PSS: the library is shared): frozenlist, aiohttp's list type, is
  imported as its pure-Python twin (its documented `FROZENLIST_NO_EXTENSIONS`, set only
  while importing it): its compiled extension is C++ and mapped libstdc++.
- 1.6 MiB and ~35 ms of start (RSS 57.7 → 55.9, anonymous 40.3 → 38.7; aiohttp's
  import 161–195 → 125–133 ms on a loaded host): aiohttp's two default TLS contexts,
  built when it is imported, find CA certificates in OpenSSL's hashed default directory
  on demand instead of each parsing the CA bundle (`system_cas_on_demand`: only where
  the bundle lives in that directory and the environment names nothing else;
  verification unchanged, tested against servers signed by a CA in the directory and
  by one outside it).
- 10.9 MiB and ~60 ms of start (RSS 55.4 → 44.5, PSS 48.5 → 36.0, anonymous 38.7 →
  31.7; start 239–489 → 168–216 ms, interleaved runs): no pydantic. The models are
  `moltbot.validation`'s, the subset of pydantic's API the project used (see README,
  "Where we differ from the design notes"), with the same coercion, error types and
  JSON Schema (identical for all 209 models when it replaced pydantic). pydantic's
  import, its schema generator and pydantic-core's library had cost +11.9 MiB; the own
  package with the whole config schema costs ~2 MiB, and a class is compiled at its
  first use. Validating is ~3× slower than pydantic-core per model (a chat.send-like
  params model: 4.1 vs 1.2 µs), which is lost in a request's ~40 µs round trip.
- 0.4 MiB (tracemalloc: 362 KiB): importing `aiohttp.web` no longer reads
  `/etc/mime.types` into the `mimetypes` module's table, which the idle gateway never
  consults (`mime_table_on_demand`: the documented `mimetypes.inited` says "done" only
  during the import; the first lookup reads the table as before, tested to give the same
  answers).

`tests/gateway/test_footprint.py` checks that the modules loaded on first use are not
imported at idle (`FIRST_USE`) and that no libstdc++ is mapped.

Evaluated and left out: lazy `moltbot.commands` registry
names (the channels' dispatcher imports the registry at start anyway);
`MALLOC_ARENA_MAX=1` or `2` (≤ 0.2 MiB); a click-free fast path for `gateway` (click
stays referenced by the running command; parsing the gateway's flags twice is not
worth ~0.9 MiB); importing aiohttp in a thread while the main thread builds the config
schema (a concurrent import of the same package can fail with a deadlock error).

What is left: the libraries (asyncio, aiohttp, click: ~37 MiB in a fresh interpreter)
and moltbot's ~190 idle modules. tracemalloc of an idle gateway counts 11.8 MiB of
Python allocations: 6.5 MiB of code objects (all modules), ~1.1 MiB made by
`dataclasses` (the generated `__init__`/`__repr__`/`__eq__` of ~150 dataclasses),
0.6 MiB of model classes, 0.45 MiB of ABC caches; then the channel and chat-command
registries' entry-point scan (importlib.metadata, zipfile, csv: ~0.3 MiB) and what
aiohttp.web imports for its own CLI and HTML escaping (argparse, html.entities: ~0.2
MiB). Further gains would come from loading the agents' turn machinery (turn,
compaction, skills, usage) and the browser's Chromium/Playwright glue at first use.

`moltbot status`: its profile was ~80 % importing, mostly the protocol client's stack,
asyncio (with ssl) and `websockets` (whose package import reads its own metadata and
loads its proxy support), for one request. Commands that make a call or a few now use
a blocking client over a plain socket (`gateway/sync_client.py` on
`gateway/blocking_ws.py`): no event loop, no `websockets`, no models, no tempfile.
Interleaved A/B, 21 runs each against the same running gateway, load ~2: wall 180 → 94
ms median, CPU 162 → 86 ms. What is left is the interpreter (~12 ms), click (~30 ms of
CPU) and moltbot's instance, config-reading and status modules with the command
itself (~30 ms); waiting for the gateway's answer is ~3 ms.

Start to hello-ok (profiled with cProfile and `-X importtime`, see the profiles
section): before the port answers the main thread does almost nothing but import. The
non-import work (config read and validation, host registry, port checks, lock, runtime
file) is under 10 ms; the imports are aiohttp, click and the gateway's own modules.
"""

STARTS = 9
SDKS = ("openai", "anthropic", "playwright", "telegram", "slack_sdk", "slack_bolt", "nio")
SDKS += ("discord", "tiktoken", "numpy", "croniter", "watchfiles")
FLOOR_STEPS = (
    ("interpreter (python -c pass)", ""),
    ("+ asyncio (and ssl, which asyncio imports)", "import asyncio"),
    ("+ aiohttp.web (its client builds two TLS contexts on import)", "import aiohttp.web"),
    ("+ click", "import click"),
    (
        "+ the config schema (moltbot.validation), a config validated",
        "from moltbot.config.schema import Config\nConfig.model_validate({})",
    ),
    (
        "moltbot: + the gateway's and its subsystems' modules, imported, nothing started",
        "import moltbot.gateway.run\nfrom moltbot.gateway.runtime import SUBSYSTEMS\n"
        "from moltbot.lazy import load\n"
        "for target in SUBSYSTEMS.values(): load(target, 'bench')",
    ),
)
IMPORT = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")


def pss_tree(pid: int) -> float:
    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
        return sum(p.memory_full_info().pss for p in procs if p.is_running()) / 2**20
    except psutil.Error:
        return 0.0


def floor_rss() -> list[tuple[str, float]]:
    """VmRSS of a fresh interpreter after each cumulative import step (median of 3)."""
    rows, code = [], []
    for name, statement in FLOOR_STEPS:
        if statement:
            code.append(statement)
        script = "\n".join(
            [
                *code,
                "for line in open('/proc/self/status'):",
                "    if line.startswith('VmRSS'): print(int(line.split()[1]))",
            ]
        )
        samples = []
        for _ in range(3):
            out = subprocess.run(
                [sys.executable, "-c", script],
                capture_output=True,
                text=True,
                check=True,
                env=clean_env(Path.home()),
            ).stdout
            samples.append(int(out) / 1024)
        rows.append((name, statistics.median(samples)))
    return rows


def import_profile(output: str) -> tuple[Counter[str], set[str]]:
    """Self import time per top-level package (µs) and every module named, from
    ``-X importtime`` lines."""
    spent: Counter[str] = Counter()
    modules = set()
    for line in output.splitlines():
        match = IMPORT.match(line)
        if match:
            name = match[4]
            modules.add(name)
            top = ".".join(name.split(".")[:2]) if name.startswith("moltbot.") else name
            spent[top.split(".")[0] if not top.startswith("moltbot") else top] += int(match[1])
    return spent, modules


def measure(home: Path) -> dict[str, Any]:
    argv, env, url, token = setup(home)
    starts = []
    for _ in range(STARTS + 1):  # the first start compiles bytecode: not counted
        proc, elapsed = start_and_hello(argv, env, url, token)
        starts.append(elapsed)
        stop(proc)
    starts = starts[1:]
    proc, _ = start_and_hello(argv, env, url, token)
    try:
        asyncio.run(subsystems_running(url, token))
        time.sleep(3)
        rss, pss = rss_tree(proc.pid), pss_tree(proc.pid)
        status = cpu_runs([*moltbot_command(), "--profile", "bench", "status"], 10, env=env)
    finally:
        stop(proc)
    rss_core = core_rss(argv, env, url, token)
    log = home / "importtime.log"
    with log.open("w") as handle:
        proc = subprocess.Popen(
            argv,
            env={**env, "PYTHONPROFILEIMPORTTIME": "1"},
            stdout=subprocess.DEVNULL,
            stderr=handle,
            start_new_session=True,
        )
    try:
        start_and_hello_existing(proc, url, token)
        time.sleep(2)
    finally:
        stop(proc)
    spent, modules = import_profile(log.read_text(errors="replace"))
    return {
        "starts": starts,
        "rss": rss,
        "pss": pss,
        "rss_core": rss_core,
        "status": status,
        "spent": spent,
        "sdks": sorted(m for m in modules if m.split(".")[0] in SDKS),
        "modules": len(modules),
    }


def start_and_hello_existing(proc: subprocess.Popen[bytes], url: str, token: str) -> None:
    import asyncio

    import aiohttp

    from gateway import connect

    async def poll() -> None:
        async with aiohttp.ClientSession() as session:
            for _ in range(3000):
                try:
                    ws = await connect(session, url, token)
                    await ws.close()
                    return
                except (aiohttp.ClientError, OSError):
                    await asyncio.sleep(0.01)
            raise RuntimeError("no hello-ok in time")

    asyncio.run(poll())


def _cpu_ms(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1000:.0f} ms"


def bare_rss() -> float:
    proc, _ = start_server(BASELINE_SERVER, {"BENCH_RESPONSE": "{}"})
    try:
        time.sleep(2)
        return rss_tree(proc.pid)
    finally:
        stop(proc)


def run() -> list[Result]:
    with fresh_home() as home:
        got = measure(home)
        env = clean_env(home)
        python = time_runs([sys.executable, "-c", "pass"], 15, env=env)
        helps = cpu_runs([*moltbot_command(), "--help"], 15, env=env)
    floor = floor_rss()
    bare = bare_rss()
    starts_ms = sorted(s * 1000 for s in got["starts"])
    rows: list[Result] = [
        median_ms(
            "start to hello-ok",
            got["starts"],
            f"fastest {starts_ms[0]:.0f} ms; `moltbot --profile bench gateway`, every "
            "subsystem enabled, sidecars start after the port answers; target ≤ 300 ms",
        ),
        Result(
            name="idle RSS, process tree",
            value=round(got["rss"], 1),
            unit="MiB",
            note=f"PSS {got['pss']:.1f} MiB; agents, channels, browser control, canvas, "
            "heartbeat, cron running, no model or channel configured; target ≤ 45 MiB",
        ),
        Result(
            name="idle RSS, core only",
            value=round(got["rss_core"], 1),
            unit="MiB",
            note="sidecars skipped (CLAWDBOT_SKIP_*)",
        ),
        Result(
            name="SDK and heavy-library modules imported by the idle gateway",
            value=len(got["sdks"]),
            unit="modules",
            note=f"of {', '.join(SDKS)} (from the gateway's own -X importtime report, "
            f"{got['modules']} modules in all); target 0"
            + (f": {', '.join(got['sdks'][:5])}" if got["sdks"] else ""),
        ),
        median_ms("python -c pass", python, "the interpreter's own start"),
        median_ms("moltbot --help", helps[0], f"CPU {_cpu_ms(helps[1])}; target ≤ 60 ms"),
        median_ms(
            "moltbot status, gateway running",
            got["status"][0],
            f"CPU {_cpu_ms(got['status'][1])} (the CLI's own); target ≤ 120 ms",
        ),
    ]
    for name, rss in floor:
        rows.append(
            Result(
                name=name if name.startswith("moltbot") else f"floor: {name}",
                value=round(rss, 1),
                unit="MiB",
                note="RSS of a fresh interpreter after these imports (median of 3)"
                + ("" if name.startswith("moltbot") else "; the floor of the stack"),
            )
        )
    rows.append(
        Result(
            name="floor: bare aiohttp WebSocket server, idle",
            value=round(bare, 1),
            unit="MiB",
            note="bench/gateway.py's baseline: no pydantic, no click, no protocol",
        )
    )
    total = sum(got["spent"].values())
    for package, micros in got["spent"].most_common(10):
        rows.append(
            Result(
                name=f"import time at start: {package}",
                value=round(micros / 1000, 1),
                unit="ms",
                note=f"self time of its modules, {micros / total * 100:.0f} % of "
                f"{total / 1000:.0f} ms (-X importtime inflates it)",
            )
        )
    return rows
