"""Status views of the browser service: one profile, every profile, the whole service.

Read-only: nothing here launches a browser. A profile counts as running when its
DevTools answers (whoever started it); ``pid`` and ``launchedByService`` tell
whether this service launched it.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from moltbot.browser import chrome
from moltbot.browser import ports as cdp_ports
from moltbot.browser.errors import BrowserError

if TYPE_CHECKING:
    from moltbot.browser.service import BrowserService
    from moltbot.instance.registry import KnownInstance


async def profile_status(
    service: BrowserService, name: str, known: list[KnownInstance] | None = None
) -> dict[str, Any]:
    settings = service.settings
    spec = settings.profile(name)
    out: dict[str, Any] = {**spec.as_dict(), "isDefault": spec.name == settings.default_profile}
    if spec.managed:
        out["userDataDir"] = str(service.context.instance.browser_user_data(spec.name))
    endpoint = spec.endpoint
    devtools = service.devtools
    version = await devtools.version(endpoint, 0.5) if endpoint else None
    out["running"] = version is not None
    out["browser"] = version.get("Browser") if version else None
    out["tabCount"] = 0
    if version and endpoint:
        with contextlib.suppress(Exception):
            out["tabCount"] = len(await devtools.targets(endpoint, 1.0))
    own = service.supervisor.launched(spec.name)
    out["pid"] = own.pid if own else None
    out["launchedByService"] = own is not None
    if own:
        out["startupMs"] = own.startup_ms
    if spec.managed and spec.cdp_port:
        known = known if known is not None else await service.profiles.known()
        try:
            cdp_ports.check(spec, spec.cdp_port, settings, service.context.instance, known)
        except BrowserError as exc:
            out["conflict"] = exc.message
    return out


async def profile_list(service: BrowserService) -> list[dict[str, Any]]:
    known = await service.profiles.known()
    return [await profile_status(service, name, known) for name in service.settings.profiles]


async def full_status(service: BrowserService, profile: str | None) -> dict[str, Any]:
    """``GET /``: the service, the selected profile and every profile."""
    s = service.settings
    spec = s.profile(profile)
    profiles = await profile_list(service)
    selected = next(p for p in profiles if p["name"] == spec.name)
    exe: dict[str, Any] | None
    try:
        exe = chrome.find_executable(s.executable_path, service.context.env).as_dict()
        exe_error = None
    except BrowserError as exc:
        exe, exe_error = None, exc.message
    return {
        "enabled": s.enabled,
        "state": str(service.state),
        "controlPort": s.control_port,
        "controlUrl": service.control_url,
        "cdpRange": [s.cdp_range.start, s.cdp_range.stop - 1],
        "defaultProfile": s.default_profile,
        "profile": spec.name,
        "running": selected["running"],
        "cdpPort": selected["cdpPort"],
        "cdpUrl": selected["cdpUrl"],
        "pid": selected["pid"],
        "executable": exe,
        "executableError": exe_error,
        "headless": s.headless,
        "headlessReason": s.headless_reason,
        "noSandbox": s.no_sandbox,
        "noSandboxReason": s.no_sandbox_reason,
        "profiles": profiles,
    }
