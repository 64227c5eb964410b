"""`moltbot rescue`: the whole repair from the command line, against a real main gateway
that a hand edit broke (no model, no rescue gateway needed)."""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any

from tests.rescue.rescue_helpers import BROKEN_LINE, Host, audit, steps

from gateway_harness import CORE_ONLY, ws_client
from moltbot.config import history


def rescue_cli(run_moltbot: Any, *args: str, **kwargs: Any) -> Any:
    return run_moltbot("--profile", "rescue", "rescue", *args, **kwargs)


async def test_the_cli_repairs_a_main_bot_that_exits_78(host: Host, run_moltbot: Any) -> None:
    main_cfg = host.write("main")
    host.write("rescue", {"rescue": {"targets": ["main"]}})
    rescue_before = host.config_path("rescue").read_bytes()
    gw = host.start("main")
    token = gw.token
    gw.stop()  # main ran once with this config: its last good one
    line, column = host.break_config("main")
    assert host.fail_to_start("main") == 78  # and it stays down

    status = rescue_cli(run_moltbot, "main", "status")
    assert status.returncode == 0, status.stderr
    assert "main: DOWN (last exit 78)" in status.stdout
    assert f"{main_cfg}:{line}:{column}" in status.stdout
    as_json = json.loads(rescue_cli(run_moltbot, "main", "status", "--json").stdout)
    assert as_json["config"]["location"] == {"file": str(main_cfg), "line": line, "column": column}
    assert as_json["lastExit"] == 78 and as_json["running"] is False

    diff = rescue_cli(run_moltbot, "main", "config", "diff")
    assert diff.returncode == 0, diff.stderr
    assert '-    "mode": "local",' in diff.stdout and "+" + BROKEN_LINE in diff.stdout
    assert token not in diff.stdout  # secrets never shown

    broken = main_cfg.read_bytes()
    unconfirmed = rescue_cli(run_moltbot, "main", "config", "restore")  # no terminal, no --yes
    assert unconfirmed.returncode == 2 and "needs a confirmation" in unconfirmed.stderr
    assert main_cfg.read_bytes() == broken

    restored = rescue_cli(run_moltbot, "main", "config", "restore", "--yes")
    assert restored.returncode == 0, restored.stderr
    assert "valid" in restored.stdout and "not running" in restored.stdout
    assert b"oops" not in main_cfg.read_bytes()
    [kept] = history.versions(main_cfg, {"HOME": str(host.home)})
    assert b"oops" in (host.state("main") / "config-history" / kept.file).read_bytes()
    assert kept.replaced_by.startswith("rescue (cli")

    restarted = rescue_cli(run_moltbot, "main", "restart", "--yes", timeout=90)
    assert restarted.returncode == 0, restarted.stderr
    assert "answers health" in restarted.stdout
    pid = host.runtime_pid("main")
    async with ws_client(f"ws://127.0.0.1:{host.ports['main']}", token) as client:
        assert (await client.call("health"))["ok"] is True

    stopped = rescue_cli(run_moltbot, "main", "stop", "--yes")
    assert stopped.returncode == 0 and f"stopped pid {pid}" in stopped.stdout
    assert host.runtime_pid("main") is None or not _alive(pid)

    assert steps(audit(host)) == [
        ("status", "main", "ok"),
        ("status", "main", "ok"),
        ("config diff", "main", "ok"),
        ("config restore", "main", "asked"),
        ("config restore", "main", "asked"),
        ("config restore", "main", "confirmed"),
        ("config restore", "main", "applied"),
        ("restart", "main", "asked"),
        ("restart", "main", "confirmed"),
        ("restart", "main", "applied"),
        ("stop", "main", "asked"),
        ("stop", "main", "confirmed"),
        ("stop", "main", "applied"),
    ]
    applied = [e for e in audit(host) if e["result"] == "applied" and e["op"] == "config restore"]
    assert applied[0]["before"] == hashlib.sha256(broken).hexdigest()
    assert applied[0]["after"] == hashlib.sha256(main_cfg.read_bytes()).hexdigest()
    assert host.config_path("rescue").read_bytes() == rescue_before
    assert not (host.state("rescue") / "config-history" / "index.jsonl").exists()


def _alive(pid: int | None) -> bool:
    import os

    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_targets_must_be_granted(host: Host, run_moltbot: Any) -> None:
    host.write("main")
    host.write("other")
    host.write("rescue", {"rescue": {"targets": ["main"]}})

    other = rescue_cli(run_moltbot, "other", "status")
    assert other.returncode == 2 and "not a rescue target" in other.stderr
    itself = rescue_cli(run_moltbot, "rescue", "status")
    assert itself.returncode == 2 and "this instance itself" in itself.stderr
    missing = run_moltbot("--profile", "rescue", "config", "set", "rescue.targets", '["*"]')
    assert missing.returncode == 0, missing.stderr
    nobody = rescue_cli(run_moltbot, "ghost", "status")
    assert nobody.returncode == 9 and "no instance with profile ghost" in nobody.stderr
    assert rescue_cli(run_moltbot, "other", "status").returncode == 0  # "*": every other one

    plain = run_moltbot("--profile", "main", "rescue", "rescue", "status")
    assert plain.returncode == 2 and "has no rescue targets" in plain.stderr
    assert [e["result"] for e in audit(host)] == ["refused", "refused", "refused", "ok"]
    trail = rescue_cli(run_moltbot, "--audit", "--lines", "2")
    assert trail.returncode == 0, trail.stderr
    assert trail.stdout.splitlines()[0] == "audit: last 2 of 4 step(s)"
    assert trail.stdout.splitlines()[-1].startswith(tuple("0123456789"))
    assert "status other: ok (cli, cli (" in trail.stdout
    only = json.loads(rescue_cli(run_moltbot, "ghost", "--audit", "--json").stdout)
    assert [e["target"] for e in only["entries"]] == ["ghost"] and only["total"] == 1
    await asyncio.sleep(0)


def test_without_an_operation_status_and_without_a_target_every_target(
    host: Host, run_moltbot: Any
) -> None:
    host.write("main")
    host.write("other")
    host.write("rescue", {"rescue": {"targets": ["main", "other", "gone"]}})

    overview = rescue_cli(run_moltbot)
    assert overview.returncode == 0, overview.stderr
    assert overview.stdout.splitlines() == [
        "main: DOWN (last exit unknown)",
        "other: DOWN (last exit unknown)",
    ]
    rows = json.loads(rescue_cli(run_moltbot, "--json").stdout)["targets"]
    assert [(r["target"], r["running"]) for r in rows] == [("main", False), ("other", False)]
    single = rescue_cli(run_moltbot, "main")
    assert single.returncode == 0 and single.stdout.startswith("main: DOWN"), single.stderr
    assert "config: valid" in single.stdout

    run_moltbot("--profile", "rescue", "config", "set", "rescue.targets", '["gone"]')
    none_here = rescue_cli(run_moltbot)
    assert none_here.returncode == 2 and "none of the instances" in none_here.stderr
    run_moltbot("--profile", "rescue", "config", "set", "rescue.targets", "[]")
    none_granted = rescue_cli(run_moltbot)
    assert none_granted.returncode == 2 and "has no rescue targets" in none_granted.stderr


async def test_config_set_runs_the_checks_of_config_set(host: Host, run_moltbot: Any) -> None:
    main_cfg = host.write("main")
    host.write("rescue", {"rescue": {"targets": ["main"]}})
    before = main_cfg.read_bytes()

    typo = rescue_cli(run_moltbot, "main", "config", "set", "gatway.port", "1", "--yes")
    assert typo.returncode == 2 and "did you mean" in typo.stderr
    invalid = rescue_cli(run_moltbot, "main", "config", "set", "gateway.bind", "all", "--yes")
    assert invalid.returncode == 78 and "gateway.bind" in invalid.stderr
    clash = str(host.ports["rescue"] + 2)
    clashing = rescue_cli(run_moltbot, "main", "config", "set", "gateway.port", clash, "--yes")
    assert clashing.returncode == 3 and "clashes with profile rescue" in clashing.stderr
    assert main_cfg.read_bytes() == before

    token = rescue_cli(
        run_moltbot, "main", "config", "set", "gateway.auth.token", "n3w-" + "x" * 30, "--yes"
    )
    assert token.returncode == 0, token.stderr
    assert "x" * 30 not in token.stdout
    assert json.loads(main_cfg.read_text())["gateway"]["auth"]["token"] == "n3w-" + "x" * 30
    shown = rescue_cli(run_moltbot, "main", "config", "get", "gateway.auth.token")
    assert shown.stdout.strip().endswith("__MOLTBOT_REDACTED__")
    history_out = rescue_cli(run_moltbot, "main", "config", "history")
    assert "1. " in history_out.stdout
    assert "current" in history_out.stdout and "rescue (cli" in history_out.stdout
    entry = [e for e in audit(host) if e["op"] == "config set" and e["result"] == "asked"][-1]
    assert entry["args"]["value"] == "__MOLTBOT_REDACTED__"


def test_the_gateway_records_its_last_good_config(host: Host) -> None:
    cfg = host.write("main")
    host.start("main").stop()
    good = history.last_good(host.state("main"), cfg)
    assert good is not None and good.text == cfg.read_text()
    host.break_config("main")
    assert host.fail_to_start("main") == 78
    again = history.last_good(host.state("main"), cfg)
    assert again is not None and again.hash == good.hash  # a failed start is not good


def test_a_target_whose_token_only_its_own_environment_knows(host: Host, run_moltbot: Any) -> None:
    cfg = host.write("main")
    data = json.loads(cfg.read_text())
    token = data["gateway"]["auth"]["token"]
    data["gateway"]["auth"]["token"] = "${MAIN_TOKEN}"
    cfg.write_text(json.dumps(data, indent=2))
    host.write("rescue", {"rescue": {"targets": ["main"]}})
    host.start("main", {**CORE_ONLY, "MAIN_TOKEN": token})

    status = rescue_cli(run_moltbot, "main", "status")
    assert "main: RUNNING" in status.stdout, status.stdout
    assert "answers /health; its token is not known here" in status.stdout
    assert "config: valid" in status.stdout  # an unresolved ${VAR} is not an error here

    # restarted from here, main lacks MAIN_TOKEN: the failure says why
    restart = rescue_cli(run_moltbot, "main", "restart", "--yes", timeout=90)
    assert restart.returncode == 8, restart.stdout + restart.stderr
    assert "exited with code 78 while starting" in restart.stderr
    assert "MAIN_TOKEN" in restart.stderr
