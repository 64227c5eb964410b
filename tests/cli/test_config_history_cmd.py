"""`moltbot config history|diff|restore`: an instance repairs its own config from its
history, while that config is broken (real CLI, a real gateway for the last good)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gateway_harness import CORE_ONLY, free_port_block, start_gateway


def ok(result: Any) -> str:
    assert result.returncode == 0, result.stderr
    return str(result.stdout)


def test_history_diff_and_restore_of_a_broken_config(run_moltbot: Any, home: Path) -> None:
    main = ("--profile", "main")
    port = free_port_block()
    ok(run_moltbot(*main, "setup", "--port", str(port)))
    ok(run_moltbot(*main, "config", "set", "gateway.auth.token", "secret-one"))
    path = home / ".clawdbot-main" / "moltbot.json"
    gateway = start_gateway(home, "main", port_flag=False, env=CORE_ONLY, port=port)
    gateway.stop()  # it ran with this config: the last good one
    good = path.read_bytes()
    path.write_text(path.read_text().replace('"mode": "local"', '"mode": "local" oops'))
    assert run_moltbot(*main, "config", "validate").returncode == 78

    listing = ok(run_moltbot(*main, "config", "history"))
    assert "current" in listing and "an edit outside moltbot" in listing
    assert "by moltbot setup" in listing and "by moltbot config set" not in listing.split("\n")[0]
    rows = json.loads(ok(run_moltbot(*main, "config", "history", "--json")))
    assert rows["lastGood"] is not None and rows["total"] >= 1

    diff = ok(run_moltbot(*main, "config", "diff"))
    assert diff.startswith("main: changes since last good")
    assert "oops" in diff and "secret-one" not in diff

    unconfirmed = run_moltbot(*main, "config", "restore")  # no terminal, no --yes
    assert unconfirmed.returncode == 2 and "needs a confirmation" in unconfirmed.stderr
    assert b"oops" in path.read_bytes()
    missing = run_moltbot(*main, "config", "restore", "99", "--yes")
    assert missing.returncode == 9 and "there is no 99" in missing.stderr

    restored = ok(run_moltbot(*main, "config", "restore", "--yes"))
    assert restored.startswith(f"Restored {path}")
    assert path.read_bytes() == good
    ok(run_moltbot(*main, "config", "validate"))
    after = json.loads(ok(run_moltbot(*main, "config", "history", "--json")))
    assert after["current"]["writtenBy"] == "moltbot config restore"
    assert "oops" in ok(run_moltbot(*main, "config", "diff", "1"))  # the broken one is kept
    again = run_moltbot(*main, "config", "restore", "--yes")
    assert again.returncode == 2 and "already is last good" in again.stderr
