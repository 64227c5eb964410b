from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "service"))

from shim_fixtures import env, home, shim  # noqa: E402

__all__ = ["env", "home", "moltbot", "shim"]


@pytest.fixture
def moltbot(env: dict[str, str]):
    def run(
        *args: str,
        check: bool = True,
        extra_env: dict[str, str] | None = None,
        input: str | None = None,
    ) -> subprocess.CompletedProcess:
        done = subprocess.run(
            [sys.executable, "-m", "moltbot", *args],
            env={**env, **(extra_env or {})},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            input=input,
        )
        if check:
            assert done.returncode == 0, f"moltbot {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        return done

    return run
