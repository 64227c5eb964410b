"""Profiles: where the gateway's start and ``moltbot status`` spend their time.

cProfile (deterministic, main thread only) of two real processes, summarised:

- *start*: ``moltbot --profile bench gateway`` (every subsystem enabled, no model or
  channel) from the interpreter's start until a client's first ``hello-ok``, then
  SIGTERM. The sidecars start in a worker thread after the port answers, so they are
  not on this path and not in this profile.
- *status*: ``moltbot --profile bench status`` against that gateway, once its
  subsystems run.

The rows: the whole (the sum of every function's own time), the part spent importing,
the module bodies that cost most (with what they import), and the functions with the
most time of their own (built-ins included: that is where import time ends up).
cProfile slows Python code down, so the totals are above the plain figures of the
footprint section: read the shares, not the milliseconds.
"""

from __future__ import annotations

import asyncio
import pstats
import subprocess
import sys
from pathlib import Path

from _harness import Result, fresh_home
from gateway import setup, start_and_hello, stop, subsystems_running

TITLE = "Profiles: the start path and status (cProfile)"
ORDER = 13

SUMMARY = """\
What the profiles showed, and what was changed for it (issue 19):

- **Start.** Almost all of the main thread's time before `hello-ok` is importing (the
  *importing* row). Before: the sidecars (browser control, canvas, channels, agents,
  heartbeat, cron) started before the port was bound, so `hello-ok` waited for their
  imports, and the cyclic GC ran a few hundred times over start-up objects that live
  for the whole run. Now the port answers first and the sidecars import and start in a
  worker thread (requests that need one, over WebSocket or HTTP, wait for them); the GC
  is off while starting, then collected once and frozen. Since the merge of chat
  commands, skills and `/v1/responses`, their method and route modules imported the
  command registry, the skills loader, the agents' run module and the OpenAI helpers at
  start (about 11 ms under `-X importtime`): they now import them at first use. What
  is left: aiohttp and the gateway's own modules; the config schema no longer builds
  pydantic validators (its own models compile at first use: footprint section). The
  method families are no longer on this path (imported at their first call), and
  aiohttp's two TLS contexts no longer parse the CA bundle at import (they look CAs up
  on demand: footprint section). The non-import work before the port
  answers (config read and validation, registry and port checks, lock, runtime file)
  is under 10 ms.
- **status.** Before: ~80 % importing, most of it asyncio (with ssl) and the
  `websockets` client (its package reads its own metadata, its proxy support loads
  python-socks and urllib.request), for one round trip; the wait for the gateway's
  answer was ~3 ms at light load. Now a blocking client (`gateway/sync_client.py`)
  makes the round trip over a plain socket: what is left is click and moltbot's
  instance, config-reading and status modules (footprint section: 180 → 94 ms).
  Earlier: one look at the host's sockets instead of one per instance.
- **Sessions.** `sessions.list` built every row and then cut the page; now it sorts the
  index and builds only the rows it returns. `chat.history` read and parsed the whole
  transcript; now it reads the tail backwards a block at a time (sessions section).
"""

TOP_MODULES = 8
TOP_OWN = 6
PROFILE = ("--profile", "bench")


def _profiled(out: Path, *args: str) -> list[str]:
    """``python -m cProfile -o out -m moltbot --profile bench args...``"""
    return [sys.executable, "-m", "cProfile", "-o", str(out), "-m", "moltbot", *PROFILE, *args]


def _short(filename: str) -> str:
    where = filename.replace("\\", "/")
    return where.split("site-packages/")[-1].split("src/")[-1].split("python3.11/")[-1]


def _rows(label: str, stats: pstats.Stats) -> list[Result]:
    table = stats.stats  # type: ignore[attr-defined]
    total = stats.total_tt  # type: ignore[attr-defined]
    imports = max(
        (v[3] for (f, _, name), v in table.items() if name == "_find_and_load"), default=0.0
    )
    bodies = sorted(
        (cumtime, _short(filename))
        for (filename, _, name), (_, _, _, cumtime, _) in table.items()
        if name == "<module>" and "__main__" not in filename and filename != "<string>"
    )
    own = sorted(
        (tottime, calls, _short(filename), line, name)
        for (filename, line, name), (_, calls, tottime, _, _) in table.items()
    )

    def share(seconds: float) -> str:
        return f"{seconds / total * 100:.0f} % of the whole"

    rows = [
        Result(
            name=f"{label}: whole process",
            value=round(total * 1000, 1),
            unit="ms",
            note="every function's own time, summed (main thread, cProfile on)",
        ),
        Result(
            name=f"{label}: importing",
            value=round(imports * 1000, 1),
            unit="ms",
            note=share(imports) + "; every import statement, nested ones included",
        ),
    ]
    picked = 0
    for cumtime, module in reversed(bodies):
        if picked == TOP_MODULES:
            break
        if module.endswith("__init__.py") and cumtime > 0.5 * imports:
            continue  # a package's body that only wraps the rest
        picked += 1
        rows.append(
            Result(
                name=f"{label}: import of `{module}`",
                value=round(cumtime * 1000, 1),
                unit="ms",
                note=share(cumtime) + "; the module's body with what it imports",
            )
        )
    for tottime, calls, filename, line, name in reversed(own[-TOP_OWN:]):
        where = name if filename == "~" else f"{filename}:{line} {name}"
        rows.append(
            Result(
                name=f"{label}: own time of `{where}`",
                value=round(tottime * 1000, 1),
                unit="ms",
                note=share(tottime) + f" in {calls} call(s)",
            )
        )
    return rows


def run() -> list[Result]:
    with fresh_home() as home:
        argv, env, url, token = setup(home)
        proc, _ = start_and_hello(_profiled(home / "start.prof", "gateway"), env, url, token)
        stop(proc)  # SIGTERM: the gateway exits cleanly and cProfile writes its file
        proc, _ = start_and_hello(argv, env, url, token)
        try:
            # its sidecars start after hello-ok, importing in a worker thread: a status
            # sent meanwhile waits for them (not what this profile is about)
            asyncio.run(subsystems_running(url, token))
            status = _profiled(home / "status.prof", "status")
            subprocess.run(status, env=env, check=True, capture_output=True)
        finally:
            stop(proc)
        start = pstats.Stats(str(home / "start.prof"))
        return [
            *_rows("start to hello-ok", start),
            *_rows("status", pstats.Stats(str(home / "status.prof"))),
        ]
