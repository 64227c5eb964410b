"""Browser settings resolved from an instance and its config (pure)."""

from __future__ import annotations

from pathlib import Path

import pytest
from browser_helpers import make_instance

from moltbot.browser.config import (
    DEFAULT_PROFILE,
    PALETTE,
    normalize_color,
    resolve,
    validate_profile_name,
)
from moltbot.browser.errors import BrowserError


def test_default_profile_and_derived_ports(home: Path) -> None:
    made = make_instance(home, "main", 21000)
    settings = resolve(made.instance, made.config, {}, euid=1000)
    assert settings.control_port == 21002
    assert (settings.cdp_range.start, settings.cdp_range.stop - 1) == (21011, 21110)
    assert list(settings.profiles) == [DEFAULT_PROFILE]
    spec = settings.profile(None)
    assert spec.managed and spec.cdp_port is None and not spec.configured
    assert spec.color == PALETTE[0]


def test_headless_and_sandbox_follow_display_root_and_config(home: Path) -> None:
    made = make_instance(home, "main", 21000)
    headless = resolve(made.instance, made.config, {}, euid=1000)
    assert headless.headless and headless.headless_reason == "no DISPLAY"
    assert not headless.no_sandbox
    shown = resolve(made.instance, made.config, {"DISPLAY": ":0"}, euid=0)
    assert not shown.headless
    assert shown.no_sandbox and "root" in (shown.no_sandbox_reason or "")
    forced = make_instance(
        home, "forced", 21200, {"browser": {"headless": True, "noSandbox": True}}
    )
    settings = resolve(forced.instance, forced.config, {"DISPLAY": ":0"}, euid=1000)
    assert settings.headless and settings.headless_reason == "browser.headless"
    assert settings.no_sandbox_reason == "browser.noSandbox"


def test_profiles_from_config(home: Path) -> None:
    made = make_instance(
        home,
        "main",
        21000,
        {
            "browser": {
                "controlPort": 22000,
                "defaultProfile": "work",
                "profiles": {
                    "work": {"cdpPort": 22050, "color": "00aa00"},
                    "remote": {"cdpUrl": "http://10.0.0.5:9222/"},
                },
            }
        },
    )
    settings = resolve(made.instance, made.config, {}, euid=1000)
    assert settings.control_port == 22000
    assert settings.cdp_range.start == 22009
    assert settings.default_profile == "work"
    assert list(settings.profiles) == [DEFAULT_PROFILE, "remote", "work"]
    work = settings.profiles["work"]
    assert work.cdp_port == 22050 and work.color == "#00AA00" and work.configured
    remote = settings.profiles["remote"]
    assert not remote.managed and remote.remote and remote.endpoint == "http://10.0.0.5:9222"
    colors = {spec.color for spec in settings.profiles.values()}
    assert len(colors) == 3


def test_legacy_browser_cdp_url_attaches_default_profile(home: Path) -> None:
    made = make_instance(home, "main", 21000, {"browser": {"cdpUrl": "http://127.0.0.1:9333"}})
    spec = resolve(made.instance, made.config, {}, euid=1000).profile(None)
    assert not spec.managed and spec.endpoint == "http://127.0.0.1:9333" and not spec.remote


def test_unknown_profile_names_available_ones(home: Path) -> None:
    made = make_instance(home, "main", 21000)
    with pytest.raises(BrowserError) as caught:
        resolve(made.instance, made.config, {}).profile("nope")
    assert caught.value.status == 404
    assert "available: moltbot" in caught.value.message


@pytest.mark.parametrize("name", ["", "Work", "-x", "a b", "x" * 65, "a_b"])
def test_invalid_profile_names(name: str) -> None:
    with pytest.raises(BrowserError) as caught:
        validate_profile_name(name)
    assert caught.value.status == 400


def test_colors() -> None:
    assert normalize_color("ff4500") == "#FF4500"
    assert normalize_color("#12345") is None
    assert normalize_color(None) is None
