"""`moltbot doctor` and `status --all` as a user runs them: plant every conflict the
seed warns about between two profiles, find each one, fix them, verify."""

from __future__ import annotations

import json
import shlex
import shutil

from netkit import free_block


def plant(moltbot, main_port: int, home) -> None:  # noqa: ANN001
    moltbot("onboard", "--non-interactive", "--port", str(main_port))
    rescue_port = free_block(avoid=(main_port,))
    moltbot("--profile", "rescue", "onboard", "--non-interactive", "--port", str(rescue_port))
    # shared workspace, base ports 1 apart (so CDP ranges overlap too), same cdpUrl
    moltbot(
        "--profile",
        "rescue",
        "config",
        "set",
        "--force",
        "agents.defaults.workspace",
        str(home / "clawd"),
    )
    moltbot("--profile", "rescue", "config", "set", "--force", "gateway.port", str(main_port + 1))
    moltbot("config", "set", "browser.cdpUrl", f"http://127.0.0.1:{main_port + 20}")
    moltbot(
        "--profile",
        "rescue",
        "config",
        "set",
        "browser.cdpUrl",
        f"http://127.0.0.1:{main_port + 20}",
    )


def test_doctor_finds_and_fixes_planted_conflicts(moltbot, home) -> None:
    main_port = free_block()
    plant(moltbot, main_port, home)
    before = moltbot("doctor", "--json", check=False)
    assert before.returncode == 1
    report = json.loads(before.stdout)
    found = {f["code"]: f for f in report["findings"]}
    assert {"shared-workspace", "ports-clash", "shared-cdp-url"} <= set(found)
    assert all(
        found[c]["severity"] == "error"
        for c in ("shared-workspace", "ports-clash", "shared-cdp-url")
    )
    assert "1 apart" in found["ports-clash"]["message"]
    for code in ("shared-workspace", "ports-clash", "shared-cdp-url"):
        assert found[code]["fix"].startswith("moltbot --profile rescue "), found[code]

    text = moltbot("doctor", check=False).stdout
    assert "ERROR shared-workspace" in text and "fix: moltbot --profile rescue setup" in text

    fixed = moltbot("doctor", "--fix", "--yes", check=False)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert "Applied:" in fixed.stdout
    after = json.loads(moltbot("doctor", "--all", "--json").stdout)
    assert after["findings"] == [] and after["ok"]
    rescue = json.loads((home / ".clawdbot-rescue" / "moltbot.json").read_text())
    assert abs(rescue["gateway"]["port"] - main_port) >= 111
    assert rescue["agents"]["defaults"]["workspace"] == str(home / "clawd-rescue")
    assert "cdpUrl" not in rescue.get("browser", {})
    main = json.loads((home / ".clawdbot" / "moltbot.json").read_text())
    assert main["browser"]["cdpUrl"] == f"http://127.0.0.1:{main_port + 20}"  # main's own, kept


def test_shown_fix_commands_work_when_pasted(moltbot, home) -> None:
    main_port = free_block()
    plant(moltbot, main_port, home)
    report = json.loads(moltbot("doctor", "--json", check=False).stdout)
    commands = {f["fix"] for f in report["findings"] if f["fix"]}
    for line in sorted(commands):
        for command in line.split(" && "):
            words = command.split()
            assert words[0] == "moltbot", command
            moltbot(*shlex.split(command)[1:])
    assert json.loads(moltbot("doctor", "--json").stdout)["findings"] == []


def test_overlapping_cdp_ranges_warn_and_fix(moltbot, home) -> None:
    main_port = free_block()
    moltbot("onboard", "--non-interactive", "--port", str(main_port))
    moltbot("--profile", "rescue", "onboard", "--non-interactive", "--port", str(main_port + 60))
    report = json.loads(moltbot("doctor", "--json").stdout)  # a warning: exit 0
    [overlap] = [f for f in report["findings"] if f["code"] == "ports-overlap"]
    assert overlap["severity"] == "warning"
    moltbot("doctor", "--fix", "--yes")
    assert json.loads(moltbot("doctor", "--json").stdout)["findings"] == []


def test_fix_reinstalls_the_moved_instances_service(moltbot, home, shim) -> None:
    main_port = free_block()
    moltbot("onboard", "--non-interactive", "--port", str(main_port))
    rescue_port = free_block(avoid=(main_port,))
    moltbot(
        "--profile",
        "rescue",
        "onboard",
        "--non-interactive",
        "--port",
        str(rescue_port),
        "--install-daemon",
    )
    unit = home / ".config" / "systemd" / "user" / "moltbot-gateway-rescue.service"
    assert f"--port {rescue_port}" in unit.read_text()
    moltbot("--profile", "rescue", "config", "set", "--force", "gateway.port", str(main_port + 3))
    report = json.loads(moltbot("doctor", "--json", check=False).stdout)
    [plan] = report["fixes"]
    assert plan["reinstallService"] is True
    shim.clear_calls()
    moltbot("doctor", "--fix", "--yes")
    config = json.loads((home / ".clawdbot-rescue" / "moltbot.json").read_text())
    new_port = config["gateway"]["port"]
    assert f"--port {new_port}" in unit.read_text()
    assert ["systemctl", "--user", "restart", "moltbot-gateway-rescue.service"] in shim.calls()
    assert all("moltbot-gateway.service" not in c for c in shim.calls())


def test_status_all_lists_every_instance(moltbot, home, shim) -> None:
    main_port = free_block()
    moltbot("onboard", "--non-interactive", "--port", str(main_port), "--install-daemon")
    rescue_port = free_block(avoid=(main_port,))
    moltbot("--profile", "rescue", "onboard", "--non-interactive", "--port", str(rescue_port))
    rows = json.loads(moltbot("status", "--all", "--json").stdout)
    by = {r["profile"]: r for r in rows}
    assert by["default"]["port"] == main_port and by["rescue"]["port"] == rescue_port
    assert by["default"]["controlPort"] == main_port + 2
    assert by["rescue"]["cdpRange"] == [rescue_port + 11, rescue_port + 110]
    assert by["default"]["service"] == "running"  # the shim's systemd says active
    assert by["rescue"]["service"] == "not installed"
    assert by["default"]["reachable"] is False and by["default"]["pid"] is None
    table = moltbot("status", "--all").stdout.splitlines()
    assert table[0].split()[:3] == ["PROFILE", "STATE", "DIR"]
    assert any(line.startswith("rescue") and str(rescue_port) in line for line in table)


def test_status_all_degrades_when_systemctl_answers_without_main_pid(moltbot, home, shim) -> None:
    """A user manager that answers `show` with only some properties is "unknown", never a
    traceback."""
    main_port = free_block()
    moltbot("onboard", "--non-interactive", "--port", str(main_port), "--install-daemon")
    shim.fail(
        "systemctl",
        ["--user", "show", "moltbot-gateway.service"],
        rc=0,
        stderr="",
        stdout="LoadState=loaded\nActiveState=active\n",
    )
    rows = json.loads(moltbot("status", "--all", "--json").stdout)
    assert rows[0]["service"] == "running"
    shim.fail("systemctl", ["--user", "is-enabled"], rc=0, stderr="", stdout="garbage")
    shim.fail("systemctl", ["--user", "show", "moltbot-gateway.service"], rc=0, stdout="%%%")
    done = moltbot("status", "--all", check=False)
    assert done.returncode == 0 and "Traceback" not in done.stderr


def test_one_fix_converges_on_every_planted_conflict(moltbot, home) -> None:
    """Shared workspace, base ports 1 apart, the same explicit cdpPort, the same cdpUrl and a
    stray cdpPort of another block, all at once: one `doctor --all --fix`, then nothing."""
    main_port = free_block()
    moltbot("onboard", "--non-interactive", "--port", str(main_port))
    third_port = free_block(avoid=(main_port,))
    moltbot("--profile", "third", "onboard", "--non-interactive", "--port", str(third_port))
    plant(moltbot, main_port, home)  # rescue: shared workspace, port +1, same cdpUrl
    force = ("config", "set", "--force")
    moltbot(*force, "browser.profiles.work.cdpPort", str(main_port + 50))
    moltbot("--profile", "third", *force, "browser.profiles.work.cdpPort", str(main_port + 50))
    moltbot("--profile", "third", *force, "browser.profiles.old.cdpPort", str(main_port + 60))
    before = json.loads(moltbot("doctor", "--all", "--json", check=False).stdout)
    codes = {f["code"] for f in before["findings"]}
    assert {"shared-workspace", "ports-clash", "shared-cdp-url", "cdp-port-clash"} <= codes
    assert "cdp-port-outside-range" in codes
    fixed = moltbot("doctor", "--all", "--fix", "--yes", check=False)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert "failed" not in fixed.stdout
    after = moltbot("doctor", "--all", "--json", check=False)
    assert after.returncode == 0 and json.loads(after.stdout)["findings"] == [], after.stdout
    third = json.loads((home / ".clawdbot-third" / "moltbot.json").read_text())
    for name in ("work", "old"):
        assert third["browser"]["profiles"][name]["cdpPort"] in range(
            third_port + 11, third_port + 111
        )
    main = json.loads((home / ".clawdbot" / "moltbot.json").read_text())
    assert main["browser"]["profiles"]["work"]["cdpPort"] == main_port + 50  # main's, kept


def test_a_fix_that_fails_does_not_hold_back_the_others(moltbot, home) -> None:
    main_port = free_block()
    plant(moltbot, main_port, home)  # rescue shares main's workspace, among others
    third_port = free_block(avoid=(main_port,))
    moltbot("--profile", "third", "onboard", "--non-interactive", "--port", str(third_port))
    moltbot("--profile", "third", "config", "set", "--force", "gateway.port", str(main_port + 3))
    # where doctor will move rescue's workspace, a file is in the way (even root cannot
    # make a directory there): that fix fails...
    shutil.rmtree(home / "clawd-rescue")
    (home / "clawd-rescue").write_text("not a directory")
    fixed = moltbot("doctor", "--all", "--fix", "--yes", check=False)
    assert "failed:" in fixed.stdout, fixed.stdout
    # ...and third's port move was still applied
    third = json.loads((home / ".clawdbot-third" / "moltbot.json").read_text())
    assert abs(third["gateway"]["port"] - main_port) >= 20
