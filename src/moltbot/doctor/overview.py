"""``status --all``: one row per instance on the host.

:func:`host_overview` gathers, for every instance the registry knows, its
paths and ports, its own service's state (queried by its own service name
only), the gateway process from its runtime file, and whether its port
answers ``/health``. :func:`render_host_table` prints the rows as a table.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from moltbot.instance.registry import discover

if TYPE_CHECKING:
    from moltbot.instance.resolve import Instance


def host_overview(home: Path, env: Mapping[str, str]) -> list[dict[str, Any]]:
    """Every instance on the host, sorted by base port. JSON-ready rows with keys
    ``profile, stateDir, configPath, workspace, running, port, controlPort, canvasPort,
    cdpRange`` (the ports in use when running, else the configured ones), ``configured``
    (the configured ports), ``drift`` (one line when running and configured differ),
    ``service, serviceName, serviceFile, reachable, healthy, pid, version, uptimeSeconds,
    configError, portOwner, foreignListener`` (the port is held, but not by this
    instance's gateway), ``commands`` (:func:`service_commands`)."""
    from moltbot.doctor.diagnose import host_manager
    from moltbot.service.inspect import listening, probe_health, process_facts, service_facts

    manager = host_manager(env, home)
    sockets = listening()  # one look at the host's sockets for every instance
    rows = []
    for known in discover(home, env):
        inst, live = known.instance, known.effective
        process = process_facts(inst, sockets)
        service = (
            service_facts(inst, env, manager=manager)
            if manager
            else {"installed": False, "available": False}
        )
        health = probe_health(live.port)
        rows.append(
            {
                "profile": inst.profile,
                "stateDir": str(inst.state_dir),
                "configPath": str(inst.config_path),
                "workspace": str(inst.workspace),
                "running": known.running is not None,
                "port": live.port,
                "controlPort": live.control_port,
                "canvasPort": live.canvas_port,
                "cdpRange": [live.cdp_ports.start, live.cdp_ports.stop - 1],
                "configured": {
                    "port": inst.port,
                    "controlPort": inst.control_port,
                    "canvasPort": inst.canvas_port,
                    "cdpRange": [inst.cdp_ports.start, inst.cdp_ports.stop - 1],
                },
                "drift": known.drift,
                "service": service_state(service),
                "serviceName": service.get("name"),
                "serviceFile": service.get("file") if service.get("installed") else None,
                "reachable": health["reachable"],
                "healthy": health["ok"],
                "pid": process["pid"],
                "version": process["version"],
                "uptimeSeconds": process["uptimeSeconds"],
                "configError": known.config_error,
                "portOwner": process["portOwner"],
                "foreignListener": bool(process["portOwner"]) and not process["alive"],
                "commands": service_commands(inst, service),
            }
        )
    return rows


def service_commands(instance: Instance, service: Mapping[str, Any]) -> list[dict[str, str]]:
    """What to run in a shell to drive this instance's service, as ``[{action, command}]``:
    the service manager's own start / stop / restart / logs commands when the service is
    installed, else how to install it. Text to copy, never run by the gateway."""
    from moltbot.service.spec import cli_prefix

    if not service.get("installed") or not service.get("startCommand"):
        return [{"action": "install", "command": f"{cli_prefix(instance)} gateway install"}]
    keys = (
        ("start", "startCommand"),
        ("stop", "stopCommand"),
        ("restart", "restartCommand"),
        ("logs", "logHint"),
    )
    return [{"action": action, "command": str(service[key])} for action, key in keys]


def service_state(facts: Mapping[str, Any]) -> str:
    """One word (or two) for a service: not installed / running / stopped / disabled / ..."""
    if not facts.get("installed"):
        return "not installed"
    if not facts.get("available"):
        return "installed (no manager)"
    state = "running" if facts.get("running") else "stopped"
    if not facts.get("loaded"):
        state += ", " + str(facts.get("loadedText") or "not loaded")
    if facts.get("current") is False:
        state += ", stale"
    return state


COLUMNS = (
    ("PROFILE", "profile"),
    ("STATE DIR", "stateDir"),
    ("PORT", "port"),
    ("+2", "controlPort"),
    ("+4", "canvasPort"),
    ("CDP", "cdpRange"),
    ("SERVICE", "service"),
    ("REACHABLE", "reachable"),
    ("PID", "pid"),
    ("VERSION", "version"),
    ("UPTIME", "uptimeSeconds"),
)


def render_host_table(rows: list[dict[str, Any]], home: Path | None = None) -> str:
    """A plain-text table of :func:`host_overview` rows (no colour; safe to paste)."""
    if not rows:
        return "No moltbot instances on this host. Create one with `moltbot onboard`."
    table = [[title for title, _ in COLUMNS]]
    for row in rows:
        cells = [_cell(key, row.get(key), home) for _, key in COLUMNS]
        if row.get("foreignListener"):
            cells[[key for _, key in COLUMNS].index("reachable")] += " (foreign)"
        table.append(cells)
    widths = [max(len(line[i]) for line in table) for i in range(len(COLUMNS))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in table
    ]
    notes = [
        f"{row['profile']}: config error: {row['configError'].splitlines()[0]}"
        for row in rows
        if row.get("configError")
    ]
    notes += [f"{row['profile']}: {row['drift']}" for row in rows if row.get("drift")]
    for row in rows:
        if row.get("foreignListener"):
            owner = row.get("portOwner") or {}
            who = (
                f"pid {owner['pid']} ({owner.get('commandLine') or owner.get('name')})"
                if owner.get("pid")
                else "a process whose owner is not visible"
            )
            notes.append(
                f"{row['profile']}: port {row['port']} is held by {who}, "
                "not by this instance's gateway"
            )
    return "\n".join(lines + notes)


def _cell(key: str, value: Any, home: Path | None) -> str:
    if value is None:
        return "-"
    if key == "cdpRange":
        return f"{value[0]}-{value[1]}"
    if key == "reachable":
        return "yes" if value else "no"
    if key == "uptimeSeconds":
        return _duration(int(value))
    if key == "stateDir" and home is not None:
        prefix = str(home).rstrip("/") + "/"
        return "~/" + value[len(prefix) :] if str(value).startswith(prefix) else str(value)
    return str(value)


def _duration(seconds: int) -> str:
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours}h"
    if hours:
        return f"{hours}h{minutes}m"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"
