"""What can be said about an instance's browser setup without its gateway running.

Used by ``moltbot browser status`` when the control service does not answer:
the ports, the CDP range, each profile with its port or URL (and a clash with
another instance, if any), the executable that would be launched, headless and
sandbox decisions. Same field names as the service's ``GET /``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from moltbot.browser import chrome
from moltbot.browser import ports as cdp_ports
from moltbot.browser.config import resolve
from moltbot.browser.errors import BrowserError
from moltbot.config.schema import Config
from moltbot.instance.resolve import Instance


def configured_status(
    instance: Instance, config: Config, env: Mapping[str, str], *, control_port: int | None = None
) -> dict[str, Any]:
    from moltbot.instance.cdp import read_allocations
    from moltbot.instance.registry import discover

    settings = resolve(instance, config, env, allocations=read_allocations(instance))
    port = control_port or settings.control_port
    try:
        exe: dict[str, Any] | None = chrome.find_executable(settings.executable_path, env).as_dict()
        exe_error = None
    except BrowserError as exc:
        exe, exe_error = None, exc.message
    known = discover(instance.home, env)
    profiles = []
    for spec in settings.profiles.values():
        row: dict[str, Any] = {
            **spec.as_dict(),
            "isDefault": spec.name == settings.default_profile,
            "running": None,
        }
        if spec.managed:
            row["userDataDir"] = str(instance.browser_user_data(spec.name))
            if spec.cdp_port is None:
                row["note"] = "CDP port allocated when the gateway first starts the service"
            else:
                try:
                    cdp_ports.check(spec, spec.cdp_port, settings, instance, known)
                except BrowserError as exc:
                    row["conflict"] = exc.message
        profiles.append(row)
    default = settings.profiles[settings.default_profile]
    return {
        "enabled": settings.enabled,
        "reachable": False,
        "controlPort": port,
        "controlUrl": f"http://127.0.0.1:{port}",
        "cdpRange": [settings.cdp_range.start, settings.cdp_range.stop - 1],
        "defaultProfile": settings.default_profile,
        "profile": default.name,
        "running": False,
        "cdpPort": default.cdp_port,
        "cdpUrl": default.endpoint,
        "executable": exe,
        "executableError": exe_error,
        "headless": settings.headless,
        "headlessReason": settings.headless_reason,
        "noSandbox": settings.no_sandbox,
        "noSandboxReason": settings.no_sandbox_reason,
        "profiles": profiles,
    }
