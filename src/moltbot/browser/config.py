"""The browser section of the config, resolved for one instance (pure, no I/O).

Profiles: ``moltbot`` always exists (the default, managed locally); others come
from ``browser.profiles``. A profile either launches a local Chromium on its
``cdpPort`` (allocated from the instance's CDP range when unset, see
:mod:`moltbot.browser.ports`) or attaches to a Chrome someone else started at
``cdpUrl`` and never launches one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from moltbot.browser.errors import bad_request
from moltbot.config.schema import Config
from moltbot.instance.resolve import Instance

DEFAULT_PROFILE = "moltbot"
PROFILE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
PALETTE = (
    "#FF4500",
    "#0066CC",
    "#00AA00",
    "#9933FF",
    "#FF6699",
    "#00CCCC",
    "#FF9900",
    "#6666FF",
    "#CC3366",
    "#339966",
)
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]", "0.0.0.0", "::", "[::]"})
_COLOR = re.compile(r"^#?[0-9A-Fa-f]{6}$")


@dataclass(frozen=True)
class ProfileSpec:
    """One browser profile. ``cdp_port`` is ``None`` for a managed profile whose
    port is not allocated yet; ``cdp_url`` set means attach-only. ``allocated``: the
    port is the gateway's own allocation (state dir), not the user's ``cdpPort``."""

    name: str
    cdp_port: int | None
    cdp_url: str | None
    color: str
    configured: bool
    allocated: bool = False

    @property
    def managed(self) -> bool:
        return self.cdp_url is None

    @property
    def endpoint(self) -> str | None:
        """The DevTools HTTP endpoint (``http://host:port``), or ``None`` if unallocated."""
        if self.cdp_url:
            return self.cdp_url
        return f"http://127.0.0.1:{self.cdp_port}" if self.cdp_port else None

    @property
    def remote(self) -> bool:
        return bool(self.cdp_url) and not is_loopback_url(self.cdp_url or "")

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "cdpPort": self.cdp_port,
            "cdpUrl": self.endpoint,
            "color": self.color,
            "managed": self.managed,
            "isRemote": self.remote,
            "configured": self.configured,
            "cdpPortSource": self.port_source,
        }

    @property
    def port_source(self) -> str | None:
        """``config`` (the user's ``cdpPort``), ``allocated`` (the gateway's), or ``None``."""
        if self.cdp_port is None:
            return None
        return "allocated" if self.allocated else "config"


@dataclass(frozen=True)
class BrowserSettings:
    enabled: bool
    control_port: int
    cdp_range: range
    executable_path: str | None
    headless: bool
    headless_reason: str
    no_sandbox: bool
    no_sandbox_reason: str | None
    default_profile: str
    profiles: Mapping[str, ProfileSpec]

    def profile(self, name: str | None) -> ProfileSpec:
        from moltbot.browser.errors import not_found

        key = name or self.default_profile
        try:
            return self.profiles[key]
        except KeyError:
            raise not_found(
                f'browser profile "{key}" not found; available: {", ".join(self.profiles)}',
                hint="create it with `moltbot browser create-profile NAME`",
            ) from None


def validate_profile_name(name: str) -> str:
    if not PROFILE_NAME.match(name or ""):
        raise bad_request(
            f"invalid browser profile name {name!r}: use lowercase letters, digits and '-' "
            "(at most 64 characters, starting with a letter or digit)"
        )
    return name


def normalize_color(value: str | None) -> str | None:
    if not value or not _COLOR.match(value.strip()):
        return None
    text = value.strip().upper()
    return text if text.startswith("#") else "#" + text


def next_color(used: set[str]) -> str:
    taken = {c.upper() for c in used}
    for color in PALETTE:
        if color not in taken:
            return color
    return PALETTE[len(taken) % len(PALETTE)]


def normalize_cdp_url(url: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https", "ws", "wss") or not parts.hostname:
        raise bad_request(f"cdpUrl {url!r} must be an http(s):// or ws(s):// URL with a host")
    return url.strip().rstrip("/")


def is_loopback_url(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return host in LOOPBACK_HOSTS or host.startswith("127.")


def url_port(url: str) -> int | None:
    parts = urlsplit(url)
    try:
        return parts.port or (443 if parts.scheme in ("https", "wss") else 80)
    except ValueError:
        return None


def resolve(
    instance: Instance,
    config: Config,
    env: Mapping[str, str],
    *,
    euid: int | None = None,
    allocations: Mapping[str, int] | None = None,
) -> BrowserSettings:
    """Settings for ``instance``: ports from the instance, everything else from config.

    ``allocations`` are the gateway's own CDP allocations (see
    :mod:`moltbot.instance.cdp`); a profile's ``cdpPort`` in the config wins over them.
    ``euid`` (default: the process's) decides the automatic ``--no-sandbox``:
    Chromium refuses to start its sandbox as root.
    """
    import os

    section = config.browser
    if section.headless is not None:
        headless = section.headless
        headless_reason = "browser.headless"
    elif env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"):
        headless, headless_reason = False, "display available"
    else:
        headless, headless_reason = True, "no DISPLAY"
    if euid is None:
        euid = os.geteuid() if hasattr(os, "geteuid") else -1
    if section.no_sandbox:
        no_sandbox, reason = True, "browser.noSandbox"
    elif euid == 0:
        no_sandbox, reason = True, "running as root, where Chromium's sandbox cannot start"
    else:
        no_sandbox, reason = False, None

    profiles: dict[str, ProfileSpec] = {}
    used_colors = {normalize_color(p.color) or "" for p in section.profiles.values()}
    for name, entry in sorted(section.profiles.items()):
        color = normalize_color(entry.color) or next_color(used_colors)
        used_colors.add(color)
        cdp_url = normalize_cdp_url(entry.cdp_url) if entry.cdp_url else None
        port, allocated = _port(entry.cdp_port, allocations, name)
        profiles[name] = ProfileSpec(
            name, None if cdp_url else port, cdp_url, color, True, allocated and not cdp_url
        )
    if DEFAULT_PROFILE not in profiles:
        legacy = normalize_cdp_url(section.cdp_url) if section.cdp_url else None
        port, allocated = _port(None, allocations, DEFAULT_PROFILE)
        profiles[DEFAULT_PROFILE] = ProfileSpec(
            DEFAULT_PROFILE,
            None if legacy else port,
            legacy,
            next_color(used_colors),
            False,
            allocated and not legacy,
        )
    default = section.default_profile if section.default_profile in profiles else DEFAULT_PROFILE
    ordered = {DEFAULT_PROFILE: profiles.pop(DEFAULT_PROFILE), **profiles}
    return BrowserSettings(
        enabled=section.enabled,
        control_port=instance.control_port,
        cdp_range=instance.cdp_ports,
        executable_path=section.executable_path,
        headless=headless,
        headless_reason=headless_reason,
        no_sandbox=no_sandbox,
        no_sandbox_reason=reason,
        default_profile=default or DEFAULT_PROFILE,
        profiles=ordered,
    )


def _port(
    explicit: int | None, allocations: Mapping[str, int] | None, name: str
) -> tuple[int | None, bool]:
    if explicit is not None:
        return explicit, False
    allocated = (allocations or {}).get(name)
    return allocated, allocated is not None
