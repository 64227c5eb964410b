"""Foundation: start-up cost of the commands every operator runs.

Each figure is the median wall time of a real ``moltbot`` process (the installed
console script) in a fresh HOME; an interpreter start-up is measured alongside
as the floor no command can go below.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from _harness import (
    Result,
    clean_env,
    fresh_home,
    median_ms,
    moltbot_command,
    run_checked,
    time_runs,
)

TITLE = "Foundation: CLI start-up"
ORDER = 10
RUNS = 15


def run() -> list[Result]:
    moltbot = moltbot_command()
    results: list[Result] = []
    with fresh_home() as home:
        env = clean_env(home)
        results.append(
            median_ms(
                "python -c pass (interpreter floor)",
                time_runs([sys.executable, "-c", "pass"], RUNS, env=env),
            )
        )
        results.append(
            median_ms(
                "moltbot --help",
                time_runs([*moltbot, "--help"], RUNS, env=env),
                "must stay < 300 ms",
            )
        )

        homes: list[Path] = []

        def new_home() -> dict[str, str]:
            homes.append(Path(tempfile.mkdtemp(prefix="moltbot-bench-", dir=home)))
            return clean_env(homes[-1])

        results.append(
            median_ms(
                "moltbot --profile x setup",
                time_runs([*moltbot, "--profile", "x", "setup"], RUNS, env=new_home),
                "fresh HOME each run: config, state dir, workspace",
            )
        )

        run_checked([*moltbot, "--profile", "x", "setup"], env)
        results.append(
            median_ms(
                "moltbot --profile x config get gateway.port",
                time_runs(
                    [*moltbot, "--profile", "x", "config", "get", "gateway.port"], RUNS, env=env
                ),
                "reads the file as written, no schema validation",
            )
        )
        results.append(
            median_ms(
                "moltbot --profile x config set gateway.bind lan",
                time_runs(
                    [*moltbot, "--profile", "x", "config", "set", "gateway.bind", "lan"],
                    RUNS,
                    env=env,
                ),
                "lock, validate, render, 3 fsyncs",
            )
        )
        results.append(
            median_ms(
                "moltbot --profile x config validate",
                time_runs([*moltbot, "--profile", "x", "config", "validate"], RUNS, env=env),
                "full schema validation",
            )
        )
    return results
