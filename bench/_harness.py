"""Helpers for bench modules: timing commands, fresh HOMEs, result rows.

A bench module imports what it needs from here::

    from _harness import Result, fresh_home, moltbot_command, time_runs

Importing this module puts the repository (:data:`ROOT`) and its ``tests/`` on
``sys.path``, so benches use the test harness (``gateway_harness``: free ports,
gateways, ``CORE_ONLY``) and the fakes (``fakes.llm_openai``) as the tests do.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TypedDict

IDENTITY_PREFIXES = ("MOLTBOT_", "CLAWDBOT_", "OPENCLAW_")
ROOT = Path(__file__).resolve().parent.parent
for _path in (ROOT, ROOT / "tests"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))


class Result(TypedDict):
    """One row of a benchmark table."""

    name: str
    value: float
    unit: str
    note: str


def moltbot_command() -> list[str]:
    """How a user runs moltbot here: the console script next to this Python, else ``-m``."""
    script = Path(sys.executable).with_name("moltbot")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "moltbot"]


def clean_env(home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment with HOME replaced and no inherited instance identity.

    ``PYTHONDONTWRITEBYTECODE`` is dropped: an installed moltbot runs from compiled
    bytecode (pip compiles it at install), so a benchmark must not recompile every
    module on every start."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(IDENTITY_PREFIXES) and k != "PYTHONDONTWRITEBYTECODE"
    }
    env.update(HOME=str(home), NO_COLOR="1", **(extra or {}))
    return env


@contextmanager
def fresh_home() -> Iterator[Path]:
    """An empty HOME directory, removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix="moltbot-bench-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def run_checked(argv: Sequence[str], env: Mapping[str, str]) -> None:
    result = subprocess.run(list(argv), env=dict(env), capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr}")


def time_runs(
    argv: Sequence[str],
    runs: int,
    *,
    env: Callable[[], Mapping[str, str]] | Mapping[str, str],
    warmup: int = 1,
) -> list[float]:
    """Wall-clock seconds of ``runs`` executions of ``argv`` (after ``warmup`` untimed ones).

    ``env`` may be a callable, called before every run (for a fresh HOME per run).
    """
    samples = []
    for index in range(warmup + runs):
        run_env = env() if callable(env) else env
        started = time.perf_counter()
        run_checked(argv, run_env)
        elapsed = time.perf_counter() - started
        if index >= warmup:
            samples.append(elapsed)
    return samples


def cpu_runs(
    argv: Sequence[str], runs: int, *, env: Mapping[str, str], warmup: int = 1
) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU seconds (user + system of the command and its children) of
    ``runs`` executions of ``argv``. On a busy machine the wall clock includes waiting for
    a core; the CPU time is the work itself."""
    import resource

    walls, cpus = [], []
    for index in range(warmup + runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        run_checked(argv, env)
        elapsed = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if index >= warmup:
            walls.append(elapsed)
            cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return walls, cpus


def median_ms(name: str, samples: Sequence[float], note: str = "") -> Result:
    """A row: the median in milliseconds, with spread and run count in the note."""
    ms = [s * 1000 for s in samples]
    spread = f"median of {len(ms)} runs (min {min(ms):.0f}, max {max(ms):.0f})"
    return Result(
        name=name,
        value=round(statistics.median(ms), 1),
        unit="ms",
        note=f"{spread}; {note}" if note else spread,
    )
