"""doctor's rules on real instances in a temporary HOME (diagnose() in-process)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from netkit import free_block

from moltbot.config import keypath
from moltbot.config.store import update_config
from moltbot.doctor import diagnose
from moltbot.doctor.fixes import apply
from moltbot.instance import Invocation, resolve_identity
from moltbot.instance.setup import setup_instance
from moltbot.service import get_manager
from moltbot.service.actions import install


def make(home: Path, env: dict[str, str], profile: str | None, port: int, **values):
    identity = resolve_identity(Invocation(profile=profile), env, home)
    instance = setup_instance(identity, env, port=port).instance
    if values:

        def mutate(data: dict) -> None:
            for key, value in values.items():
                keypath.set_(data, keypath.parse(key.replace("__", ".")), value)

        update_config(instance.config_path, mutate, env)
    return identity


def codes(report, severity: str | None = None) -> list[str]:
    return [f.code for f in report.findings if severity is None or f.severity == severity]


def finding(report, code: str):
    return next(f for f in report.findings if f.code == code)


@pytest.fixture
def ports() -> tuple[int, int]:
    a = free_block()
    return a, free_block(avoid=(a,))


def test_clean_pair_has_no_findings(home: Path, env, ports) -> None:
    main = make(home, env, None, ports[0])
    make(home, env, "rescue", ports[1])
    report = diagnose(main, env)
    assert report.host  # automatic with two instances
    assert report.findings == [], [f.as_dict() for f in report.findings]


def test_single_instance_is_not_host_mode_unless_asked(home: Path, env, ports) -> None:
    main = make(home, env, None, ports[0])
    assert not diagnose(main, env).host
    assert diagnose(main, env, host=True).host


def test_base_ports_one_apart(home: Path, env, ports) -> None:
    main = make(home, env, None, ports[0])
    rescue = make(home, env, "rescue", ports[1])
    update_config(
        rescue.config_path, lambda d: keypath.set_(d, ["gateway", "port"], ports[0] + 1), env
    )
    report = diagnose(main, env)
    clash = finding(report, "ports-clash")
    assert clash.severity == "error"
    assert f"base ports {ports[0]} and {ports[0] + 1} are 1 apart" in clash.message
    assert clash.fix.startswith("moltbot --profile rescue setup --port ")
    assert report.errors == 1


def test_shared_used_port_via_explicit_cdp_port(home: Path, env, ports) -> None:
    """Rescue's explicit cdpPort is main's browser control port: that CDP port moves
    (into rescue's own range), not a base port, which would leave the clash in place."""
    main = make(home, env, None, ports[0])
    make(home, env, "rescue", ports[1], browser__profiles__work__cdpPort=ports[0] + 2)
    report = diagnose(main, env)
    clash = finding(report, "cdp-port-clash")
    assert f"CDP port {ports[0] + 2} of browser profile 'work' is also used" in clash.message
    assert "ports-clash" not in codes(report)
    [plan] = report.auto_plans
    new = plan.cdp_moves["work"]
    assert new in range(ports[1] + 11, ports[1] + 111)
    assert clash.fix == f"moltbot --profile rescue config set browser.profiles.work.cdpPort {new}"
    apply(report.auto_plans, env, None)
    assert diagnose(main, env).findings == []


def test_same_explicit_cdp_port_on_both_moves_one(home: Path, env, ports) -> None:
    main = make(home, env, None, ports[0], browser__profiles__work__cdpPort=ports[0] + 30)
    make(home, env, "rescue", ports[1], browser__profiles__work__cdpPort=ports[0] + 30)
    report = diagnose(main, env)
    clashes = [f for f in report.findings if f.code == "cdp-port-clash"]
    assert len(clashes) == 1 and clashes[0].fix.startswith("moltbot --profile rescue config set")
    apply(report.auto_plans, env, None)
    assert diagnose(main, env).findings == []


def test_stray_cdp_port_outside_the_range_moves_in(home: Path, env, ports) -> None:
    """An older version's one-off --port left a cdpPort of another block in the config."""
    main = make(home, env, None, ports[0])
    rescue = make(home, env, "rescue", ports[1], browser__profiles__moltbot__cdpPort=ports[0] + 20)
    report = diagnose(rescue, env)
    stray = finding(report, "cdp-port-outside-range")
    assert stray.severity == "warning" and f"{ports[0] + 20}" in stray.message
    apply(report.auto_plans, env, None)
    after = diagnose(main, env, host=True)
    assert after.findings == [], [f.as_dict() for f in after.findings]
    saved = json.loads(rescue.config_path.read_text())
    assert saved["browser"]["profiles"]["moltbot"]["cdpPort"] in range(
        ports[1] + 11, ports[1] + 111
    )


def test_clashing_allocation_is_dropped(home: Path, env, ports) -> None:
    """The gateway's own allocation (state dir) clashing with another instance's explicit
    port: the allocation goes (and rescue's stray port moves into its own range)."""
    from moltbot.instance.cdp import read_allocations, record_allocation
    from moltbot.instance.registry import discover

    main = make(home, env, None, ports[0])
    rescue = make(home, env, "rescue", ports[1], browser__profiles__work__cdpPort=ports[0] + 11)
    [inst] = [k.instance for k in discover(home, env) if k.instance.profile == "default"]
    record_allocation(inst, "moltbot", ports[0] + 11)
    report = diagnose(main, env)
    clash = finding(report, "cdp-port-clash")
    assert "the gateway's own allocation" in clash.message
    apply(report.auto_plans, env, None)
    assert read_allocations(inst) == {}
    moved = json.loads(rescue.config_path.read_text())["browser"]["profiles"]["work"]["cdpPort"]
    assert moved in range(ports[1] + 11, ports[1] + 111)
    assert diagnose(main, env).findings == []


def test_overlapping_cdp_ranges(home: Path, env, ports) -> None:
    """Bases 50 apart: the seed's 20 are respected, but rescue's ports sit in main's CDP range."""
    main = make(home, env, None, ports[0])
    make(home, env, "rescue", ports[0] + 50)
    overlap = finding(diagnose(main, env), "ports-overlap")
    assert overlap.severity == "warning"
    assert "lies in the other's CDP range" in overlap.message
    assert overlap.actions and overlap.actions[0].kind == "move-port"


def test_cdp_ranges_overlapping_only_in_unused_slots_is_info(home: Path, env, ports) -> None:
    main = make(home, env, None, ports[0], browser__controlPort=ports[1] + 200)
    make(home, env, "rescue", ports[1], browser__controlPort=ports[1] + 208)
    report = diagnose(main, env)
    overlap = finding(report, "ports-overlap")
    assert overlap.severity == "info"
    assert "unused slots" in overlap.message
    assert report.errors == 0
    assert report.auto_plans == []  # info is shown, never applied by --fix


def test_shared_workspace(home: Path, env, ports) -> None:
    main = make(home, env, None, ports[0])
    make(home, env, "rescue", ports[1], agents__defaults__workspace=str(home / "clawd"))
    shared = finding(diagnose(main, env), "shared-workspace")
    assert shared.severity == "error"
    assert shared.fix == f"moltbot --profile rescue setup --workspace '{home / 'clawd-rescue'}'"


def test_same_pinned_cdp_url(home: Path, env, ports) -> None:
    main = make(home, env, None, ports[0], browser__cdpUrl=f"http://127.0.0.1:{ports[0] + 11}")
    make(home, env, "rescue", ports[1], browser__cdpUrl=f"http://localhost:{ports[0] + 11}/")
    shared = finding(diagnose(main, env), "shared-cdp-url")
    assert shared.severity == "error"
    # the URL is in main's own CDP range, so it is rescue's pin that goes
    assert shared.fix == "moltbot --profile rescue config unset browser.cdpUrl"
    assert shared.actions[0].key == "browser.cdpUrl"


def test_same_remote_cdp_url_is_reported_without_auto_fix(home: Path, env, ports) -> None:
    main = make(home, env, None, ports[0], browser__profiles__remote__cdpUrl="http://10.0.0.5:9222")
    make(home, env, "rescue", ports[1], browser__profiles__remote__cdpUrl="http://10.0.0.5:9222")
    shared = finding(diagnose(main, env), "shared-cdp-url")
    assert shared.actions == ()
    assert "config unset browser.profiles.remote.cdpUrl" in shared.fix


def test_fix_moves_port_and_workspace_in_one_setup(home: Path, env, ports) -> None:
    main = make(home, env, None, ports[0])
    make(
        home,
        env,
        "rescue",
        ports[1],
        agents__defaults__workspace=str(home / "clawd"),
        gateway__port=ports[0] + 1,
    )
    report = diagnose(main, env)
    assert {"ports-clash", "shared-workspace"} <= set(codes(report, "error"))
    [plan] = report.auto_plans
    assert plan.member.instance.profile == "rescue"
    assert plan.workspace == home / "clawd-rescue"
    # every fix line shows the one combined command for rescue
    combined = finding(report, "ports-clash").fix
    assert combined == finding(report, "shared-workspace").fix
    assert "--port" in combined and "--workspace" in combined
    apply(report.auto_plans, env, None)
    after = diagnose(main, env)
    assert after.findings == [], [f.as_dict() for f in after.findings]
    rescue_cfg = json.loads((home / ".clawdbot-rescue" / "moltbot.json").read_text())
    assert rescue_cfg["gateway"]["port"] == plan.port
    assert abs(plan.port - ports[0]) >= 111
    assert (home / "clawd-rescue" / "AGENTS.md").is_file()


def test_env_aliases_that_disagree(home: Path, env, ports) -> None:
    main = make(home, env, None, ports[0])
    noisy = {**env, "MOLTBOT_GATEWAY_TOKEN": "a", "CLAWDBOT_GATEWAY_TOKEN": "b"}
    found = finding(diagnose(main, noisy), "env-aliases-disagree")
    assert found.fix == "unset CLAWDBOT_GATEWAY_TOKEN"
    assert "=a" not in found.message and "***" in found.message  # secrets are masked


def test_invalid_config_and_missing_auth(home: Path, env, ports) -> None:
    main = make(home, env, None, ports[0])
    config = main.config_path
    data = json.loads(config.read_text())
    del data["gateway"]["auth"]
    config.write_text(json.dumps(data))
    assert "auth-missing" in codes(diagnose(main, env), "error")
    config.write_text('{"gateway": {"port": "nope"}}')
    report = diagnose(main, env)
    assert "config-invalid" in codes(report, "error")


def test_stale_service_and_missing_interpreter(home: Path, env, ports, shim) -> None:
    main = make(home, env, None, ports[0])
    make(home, env, "rescue", ports[1])
    manager = get_manager(env, home, "systemd")
    from moltbot.instance import load

    rescue_instance, _ = load(Invocation(profile="rescue"), env, home)
    install(rescue_instance, manager)
    unit = home / ".config" / "systemd" / "user" / "moltbot-gateway-rescue.service"
    unit.write_text(unit.read_text().replace(sys.executable, "/gone/venv/bin/python"))
    report = diagnose(main, env)
    missing = finding(report, "service-interpreter-missing")
    assert missing.severity == "error"
    assert missing.fix == "moltbot --profile rescue gateway install --force"
    assert "service-stale" in codes(report, "warning")
    apply(report.auto_plans, env, manager)
    assert sys.executable in unit.read_text()
    assert diagnose(main, env).findings == []


def test_orphaned_and_legacy_services(home: Path, env, ports) -> None:
    main = make(home, env, None, ports[0])
    from moltbot.instance import load

    instance, _ = load(Invocation(), env, home)
    units = home / ".config" / "systemd" / "user"
    install(instance, get_manager(env, home, "systemd"))
    legacy = units / "clawdbot-gateway.service"
    legacy.write_text("[Service]\nExecStart=/usr/bin/node /opt/clawdbot/dist/index.js gateway\n")
    ghost = units / "moltbot-gateway-ghost.service"
    ghost.write_text(
        (units / "moltbot-gateway.service")
        .read_text()
        .replace(str(instance.state_dir), str(home / ".clawdbot-ghost"))
    )
    report = diagnose(main, env, host=True)
    legacy_finding = finding(report, "legacy-service")
    assert legacy_finding.severity == "error"  # same (default) instance as moltbot-gateway
    assert legacy_finding.fix.startswith("systemctl --user disable --now clawdbot-gateway.service")
    assert str(legacy) in legacy_finding.fix
    orphan = finding(report, "service-orphaned")
    assert "moltbot-gateway-ghost.service" in orphan.message
    # the ghost is not compared with the living instances
    assert not [f for f in report.findings if f.code == "shared-workspace"]
    assert "moltbot-gateway.service " not in orphan.fix  # never advises about another unit
