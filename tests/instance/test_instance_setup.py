"""setup's pure parts: the plan of settings and the clash checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from moltbot.config.schema import Config
from moltbot.errors import ConflictError
from moltbot.instance.registry import KnownInstance
from moltbot.instance.resolve import Invocation, resolve_identity, resolve_instance
from moltbot.instance.running import Running
from moltbot.instance.setup import Setting, check_paths, check_port, choose_port, setup_instance


def known(home: Path, profile: str, config: dict | None = None) -> KnownInstance:
    identity = resolve_identity(Invocation(profile=profile), {}, home)
    instance = resolve_instance(identity, Config.model_validate(config or {}), {})
    return KnownInstance(instance=instance, sources=("state-dir",))


@pytest.mark.parametrize(
    ("setting", "action"),
    [
        (Setting("k", None, 1), "create"),
        (Setting("k", 1, 2), "keep"),
        (Setting("k", 1, 2, force=True), "change"),
        (Setting("k", 2, 2, force=True), "keep"),
    ],
)
def test_setting_actions(setting: Setting, action: str) -> None:
    assert setting.action == action


def test_check_port(home: Path) -> None:
    main = known(home, "main", {"gateway": {"port": 18789}})
    check_port(18789 + 20, [main])
    check_port(18789 - 20, [main])
    with pytest.raises(ConflictError) as err:
        check_port(18789 + 19, [main])
    assert err.value.message == (
        f"port 18808 clashes with profile main ({home}/.clawdbot-main, port 18789): "
        "base ports 18808 and 18789 are closer than 20"
    )
    assert err.value.exit_code == 3
    cdp = known(
        home,
        "work",
        {"gateway": {"port": 20000}, "browser": {"profiles": {"w": {"cdpPort": 20950}}}},
    )
    with pytest.raises(ConflictError, match="port 20950 would be used by both"):
        check_port(20946, [cdp])  # my canvas port is their explicit CDP port


def test_live_port_of_a_running_neighbour_counts(home: Path) -> None:
    main = known(home, "main", {"gateway": {"port": 18789}})
    live = Running.from_record({"pid": 1, "port": 21000})
    running = KnownInstance(main.instance, main.sources, running=live)
    with pytest.raises(ConflictError, match="closer than 20"):
        check_port(21010, [running])
    assert (
        abs(choose_port(resolve_identity(Invocation(profile="x"), {}, home), [running]) - 21000)
        >= 111
    )


def test_check_paths(home: Path) -> None:
    main = known(home, "main")
    me = resolve_instance(resolve_identity(Invocation(profile="rescue"), {}, home), Config(), {})
    check_paths(me, [main])
    shared = resolve_instance(
        resolve_identity(Invocation(profile="rescue"), {}, home),
        Config.model_validate(
            {"agents": {"defaults": {"workspace": str(home / "clawd-main" / "sub")}}}
        ),
        {},
    )
    with pytest.raises(ConflictError) as err:
        check_paths(shared, [main])
    assert err.value.message.startswith(
        f"workspace {home}/clawd-main/sub overlaps the workspace of profile main"
    )
    assert err.value.hint == f"use a workspace of its own, e.g. {home}/clawd-rescue"


def test_setup_instance_reports_created_kept_changed(home: Path) -> None:
    identity = resolve_identity(Invocation(profile="main"), {}, home)
    first = setup_instance(identity, {})
    assert first.created[:4] == [
        "config gateway.mode",
        "config gateway.port",
        "config gateway.auth.token",
        "config agents.defaults.workspace",
    ]
    second = setup_instance(identity, {}, port=20000)
    assert second.changed == [f"gateway.port: {first.instance.port} -> 20000"]
    assert second.created == []
    assert "config gateway.mode" in second.kept
