"""CDP ports a gateway allocated for its browser profiles: ``<state>/browser/cdp-ports.json``.

The config holds only the ports a user chose (``browser.profiles.<name>.cdpPort``);
the gateway never writes its own allocations there (DESIGN §2–3). Each record
names the control port its range was derived from. A record made under another
control port (a one-off ``--port``), or whose port lies outside the instance's
current CDP range, is stale: readers ignore it and the next allocation replaces it.

Writes take ``cdp-ports.json.lock`` and replace the file atomically, so two
gateways of one state dir (impossible while the gateway lock holds) or a
gateway and ``doctor --fix`` never tear it.
"""

from __future__ import annotations

import json
from pathlib import Path

from moltbot.fsutil import locked, write_json_atomic
from moltbot.instance.resolve import Instance

LOCK_TIMEOUT_S = 5.0


def allocations_file(instance: Instance) -> Path:
    return instance.browser_root / "cdp-ports.json"


def _read_raw(path: Path) -> tuple[int | None, dict[str, int]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None, {}
    if not isinstance(data, dict):
        return None, {}
    control = data.get("controlPort")
    profiles = data.get("profiles")
    ports = {
        str(name): port
        for name, port in (profiles.items() if isinstance(profiles, dict) else ())
        if isinstance(port, int) and not isinstance(port, bool)
    }
    return (control if isinstance(control, int) else None), ports


def read_allocations(instance: Instance) -> dict[str, int]:
    """Profile name → allocated CDP port, current records only (see the module doc)."""
    control, ports = _read_raw(allocations_file(instance))
    if control != instance.control_port:
        return {}
    return {name: port for name, port in ports.items() if port in instance.cdp_ports}


def record_allocation(instance: Instance, profile: str, port: int | None) -> dict[str, int]:
    """Record (or with ``None`` drop) ``profile``'s allocation; stale records are dropped
    at the same time. Returns the current allocations."""
    path = allocations_file(instance)
    with locked(path.with_name(path.name + ".lock"), LOCK_TIMEOUT_S):
        current = read_allocations(instance)
        if port is None:
            current.pop(profile, None)
        else:
            current[profile] = port
        write_json_atomic(
            path,
            {"controlPort": instance.control_port, "profiles": dict(sorted(current.items()))},
            mode=0o600,
        )
    return current
