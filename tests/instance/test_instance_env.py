"""Environment variables with three prefixes, and service names per profile."""

from __future__ import annotations

from moltbot.instance import env as envvars
from moltbot.instance.names import service_names


def test_lookup_precedence_and_empty_values() -> None:
    env = {"MOLTBOT_X": "", "CLAWDBOT_X": "c", "OPENCLAW_X": "o"}
    assert envvars.lookup(env, "X") == ("c", "CLAWDBOT_X")
    assert envvars.get({"OPENCLAW_X": " o "}, "X") == "o"
    assert envvars.get({"MOLTBOT_X": "m", "CLAWDBOT_X": "c"}, "X") == "m"
    assert envvars.lookup({}, "X") is None


def test_disagreements_for_doctor() -> None:
    assert envvars.disagreements({"MOLTBOT_X": "a", "OPENCLAW_X": "b"}, "X") == [
        ("MOLTBOT_X", "a"),
        ("OPENCLAW_X", "b"),
    ]
    assert envvars.disagreements({"MOLTBOT_X": "a", "OPENCLAW_X": "a"}, "X") == []
    assert envvars.disagreements({"CLAWDBOT_X": "a"}, "X") == []


def test_children_do_not_inherit_identity_or_secrets() -> None:
    env = {
        f"{p}{n}": "v"
        for p in envvars.PREFIXES
        for n in (
            "PROFILE",
            "STATE_DIR",
            "CONFIG_PATH",
            "GATEWAY_PORT",
            "GATEWAY_TOKEN",
            "GATEWAY_PASSWORD",
            "SERVICE_MARKER",
            "SERVICE_KIND",
        )
    }
    env |= {"PATH": "/bin", "CLAWDBOT_OTHER": "kept", "HOME": "/h"}
    assert envvars.without_identity(env) == {"PATH": "/bin", "CLAWDBOT_OTHER": "kept", "HOME": "/h"}


def test_service_names() -> None:
    default = service_names("default")
    assert (
        default.systemd_unit,
        default.systemd_file,
        default.launchd_label,
        default.windows_task,
    ) == ("moltbot-gateway", "moltbot-gateway.service", "bot.molt.gateway", "Moltbot Gateway")
    rescue = service_names("rescue")
    assert (rescue.systemd_unit, rescue.launchd_label, rescue.windows_task) == (
        "moltbot-gateway-rescue",
        "bot.molt.rescue",
        "Moltbot Gateway (rescue)",
    )


def test_flag_is_set_only_by_a_true_value() -> None:
    for value in ("1", "true", "YES", "On"):
        assert envvars.flag({"CLAWDBOT_SKIP_X": value}, "SKIP_X") == f"CLAWDBOT_SKIP_X={value}"
    for value in ("0", "false", "no", "off", "", "2"):
        assert envvars.flag({"CLAWDBOT_SKIP_X": value}, "SKIP_X") is None, value
    assert envvars.flag({}, "SKIP_X") is None
    # The winning alias decides, even when a later one would say yes.
    assert envvars.flag({"MOLTBOT_SKIP_X": "0", "OPENCLAW_SKIP_X": "1"}, "SKIP_X") is None
