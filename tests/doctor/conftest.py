from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "service"))

from shimtools import Shim  # noqa: E402


@pytest.fixture
def home(home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The shared fresh HOME (tests/conftest.py), moved to a path with a space in it."""
    spaced = home.parent / "home dir"
    spaced.mkdir()
    monkeypatch.setenv("HOME", str(spaced))
    monkeypatch.setenv("USERPROFILE", str(spaced))
    return spaced


@pytest.fixture
def shim(tmp_path: Path) -> Shim:
    return Shim(tmp_path / "shim bin")


@pytest.fixture
def env(home: Path, shim: Shim) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CLAWDBOT_", "MOLTBOT_", "OPENCLAW_"))}
    env.update(HOME=str(home), PATH=shim.path_env(), NO_COLOR="1")
    return env


@pytest.fixture
def moltbot(env: dict[str, str]):
    def run(*args: str, check: bool = True, extra_env: dict[str, str] | None = None,
            input: str | None = None) -> subprocess.CompletedProcess:
        done = subprocess.run([sys.executable, "-m", "moltbot", *args],
                              env={**env, **(extra_env or {})}, capture_output=True, text=True,
                              timeout=120, check=False, input=input)
        if check:
            assert done.returncode == 0, f"moltbot {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        return done
    return run
