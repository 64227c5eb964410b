"""`onboard` for a profile named rescue offers the default instance as its target."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def onboard(run_moltbot: Any, profile: str, *args: str) -> dict[str, Any]:
    done = run_moltbot(
        "--profile",
        profile,
        "onboard",
        "--non-interactive",
        "--no-channel-check",
        "--json",
        *args,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def rescue_key(home: Path, profile: str) -> Any:
    return json.loads((home / f".clawdbot-{profile}" / "moltbot.json").read_text()).get("rescue")


def test_a_rescue_profile_is_offered_the_default_instance(home: Path, run_moltbot: Any) -> None:
    assert onboard(run_moltbot, "rescue")["rescueTargets"] == []  # no default instance yet
    assert rescue_key(home, "rescue") is None
    setup = run_moltbot("setup", "--port", "18789")
    assert setup.returncode == 0, setup.stderr

    assert onboard(run_moltbot, "rescue")["rescueTargets"] == ["default"]
    assert rescue_key(home, "rescue") == {"targets": ["default"]}
    assert onboard(run_moltbot, "rescue")["rescueTargets"] == ["default"]  # a re-run keeps it
    cleared = onboard(run_moltbot, "rescue", "--no-rescue-targets")
    assert cleared["rescueTargets"] == [] and rescue_key(home, "rescue") == {"targets": []}
    assert onboard(run_moltbot, "rescue")["rescueTargets"] == []  # "none" is kept too
    chosen = onboard(run_moltbot, "rescue", "--rescue-target", "main", "--rescue-target", "x")
    assert chosen["rescueTargets"] == ["main", "x"]

    assert onboard(run_moltbot, "main")["rescueTargets"] == []  # only a profile named rescue
    assert rescue_key(home, "main") is None
    both = run_moltbot(
        "--profile",
        "main",
        "onboard",
        "--non-interactive",
        "--rescue-target",
        "a",
        "--no-rescue-targets",
    )
    assert both.returncode == 2 and "contradict" in both.stderr
