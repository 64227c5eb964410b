"""Fixtures shared by the service and doctor tests (imported by both conftests):
a HOME with a space in it, the recording shim (:mod:`shimtools`) first on PATH,
and the environment for moltbot subprocesses that see both."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from shimtools import Shim

IDENTITY_PREFIXES = ("CLAWDBOT_", "MOLTBOT_", "OPENCLAW_")


def clean_env(home: Path, path: str | None = None) -> dict[str, str]:
    """``os.environ`` without instance identity, with ``HOME`` (and ``PATH``) set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(IDENTITY_PREFIXES)}
    env["HOME"] = str(home)
    if path is not None:
        env["PATH"] = path
    return env


@pytest.fixture
def home(home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The shared fresh HOME (tests/conftest.py), moved to a path with a space in it."""
    spaced = home.parent / "home with space"
    spaced.mkdir()
    monkeypatch.setenv("HOME", str(spaced))
    monkeypatch.setenv("USERPROFILE", str(spaced))
    return spaced


@pytest.fixture
def shim(tmp_path: Path) -> Shim:
    return Shim(tmp_path / "shim bin")


@pytest.fixture
def env(home: Path, shim: Shim) -> dict[str, str]:
    """:func:`clean_env` with the shim first on PATH (``NO_COLOR=1`` comes from the
    shared ``home`` fixture)."""
    return clean_env(home, shim.path_env())
