"""doctor on an instance's rescue settings: grants that reach nothing, owners who could
never use /rescue (real instances in a temporary HOME, diagnose() in-process)."""

from __future__ import annotations

from pathlib import Path

from netkit import free_block
from tests.doctor.test_checks import codes, finding, make

from moltbot.doctor import diagnose


def test_a_sound_rescue_setup_has_no_findings(home: Path, env) -> None:
    main = free_block()
    make(home, env, "main", main)
    rescue = make(
        home,
        env,
        "rescue",
        free_block(avoid=(main,)),
        rescue__targets=["main"],
        rescue__owners={"telegram": ["4242"]},
        channels__telegram={"botToken": "1:x", "allowFrom": ["4242"]},
    )
    assert not [c for c in codes(diagnose(rescue, env)) if c.startswith("rescue-")]


def test_grants_and_owners_that_reach_nothing(home: Path, env) -> None:
    main = free_block()
    make(home, env, "main", main)
    rescue = make(
        home,
        env,
        "rescue",
        free_block(avoid=(main,)),
        rescue__targets=["mian", "rescue", "main"],
        rescue__owners={"telegram": ["4242"]},
        commands__text=False,
    )
    report = diagnose(rescue, env)
    missing = finding(report, "rescue-target-missing")
    assert "mian" in missing.message and "known: main" in missing.message
    assert finding(report, "rescue-target-self").severity == "warning"
    no_channel = finding(report, "rescue-owners-no-channel")
    assert "channels.telegram is not configured" in no_channel.message
    assert finding(report, "rescue-commands-off").fix == (
        "moltbot --profile rescue config set commands.text true"
    )
    assert "rescue-no-owners" not in codes(report)


def test_targets_without_owners_is_only_information(home: Path, env) -> None:
    main = free_block()
    make(home, env, "main", main)
    rescue = make(home, env, "rescue", free_block(avoid=(main,)), rescue__targets=["*"])
    report = diagnose(rescue, env)
    assert [c for c in codes(report) if c.startswith("rescue-")] == ["rescue-no-owners"]
    assert finding(report, "rescue-no-owners").severity == "info"
    plain = make(home, env, "plain", free_block(avoid=(main,)), rescue__owners={"slack": ["U1"]})
    assert codes(diagnose(plain, env), "info").count("rescue-no-targets") == 1
