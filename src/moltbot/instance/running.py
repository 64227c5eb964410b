"""What runs: the runtime file of a live gateway, typed (DESIGN §2, "two truths").

A gateway writes ``<state>/gateway.json`` once it has bound its port: its pid and
every port it actually uses. The file is believed only while the gateway's lock
(``<state>/gateway.lock``) is held — after ``kill -9`` the file may remain, the lock
never does. The config says what is *configured*; :func:`drift` names the
difference in one line, which every view prints when the two disagree.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moltbot.fsutil import is_locked
from moltbot.instance.resolve import Identity, Instance


@dataclass(frozen=True)
class Running:
    """A live gateway's own account of itself."""

    pid: int
    host: str
    port: int
    control_port: int
    canvas_port: int
    cdp_ports: range
    config_path: Path | None
    version: str | None
    started_at_ms: int | None
    record: Mapping[str, Any]

    @classmethod
    def from_record(cls, data: Mapping[str, Any]) -> Running | None:
        """``None`` when the record lacks a pid or the gateway port (not a runtime file)."""

        def number(key: str) -> int | None:
            value = data.get(key)
            ok = isinstance(value, int) and not isinstance(value, bool) and 0 < value < 65536
            return value if ok else None  # type: ignore[return-value]

        pid, port = data.get("pid"), number("port")
        if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0 or port is None:
            return None
        cdp = data.get("cdpRange")
        if isinstance(cdp, list) and len(cdp) == 2 and all(isinstance(p, int) for p in cdp):
            cdp_ports = range(cdp[0], cdp[1] + 1)
        else:
            cdp_ports = range(0)
        config_path = data.get("configPath")
        started = data.get("startedAt")
        return cls(
            pid=pid,
            host=str(data.get("host") or "127.0.0.1"),
            port=port,
            control_port=number("controlPort") or 0,
            canvas_port=number("canvasPort") or 0,
            cdp_ports=cdp_ports,
            config_path=Path(config_path) if isinstance(config_path, str) else None,
            version=data.get("version") if isinstance(data.get("version"), str) else None,
            started_at_ms=started if isinstance(started, int) else None,
            record=dict(data),
        )

    @property
    def used_ports(self) -> tuple[int, ...]:
        return tuple(p for p in (self.port, self.control_port, self.canvas_port) if p)


def read_record(identity: Identity | Instance) -> dict[str, Any] | None:
    """The runtime file as written, live or not (``None`` when absent or unreadable)."""
    try:
        data = json.loads(identity.runtime_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def read_running(identity: Identity | Instance) -> Running | None:
    """The live gateway of this instance, or ``None`` when none holds its lock."""
    record = read_record(identity)
    if record is None or not is_locked(identity.lock_file):
        return None
    return Running.from_record(record)


def as_running(instance: Instance, running: Running | None) -> Instance:
    """``instance`` with the ports its gateway actually uses, when it runs."""
    if running is None:
        return instance
    return dataclasses.replace(
        instance,
        port=running.port,
        control_port=running.control_port or instance.control_port,
        canvas_port=running.canvas_port or instance.canvas_port,
        cdp_ports=running.cdp_ports or instance.cdp_ports,
    )


def port_changes(configured: Instance, running: Running) -> list[str]:
    """``["gateway 18789 (configured 27960)", ...]`` for each port that differs."""
    pairs = (
        ("gateway", running.port, configured.port),
        ("browser control", running.control_port, configured.control_port),
        ("canvas", running.canvas_port, configured.canvas_port),
    )
    out = [f"{what} {now} (configured {conf})" for what, now, conf in pairs if now and now != conf]
    if running.cdp_ports and running.cdp_ports != configured.cdp_ports:
        out.append(f"CDP {_span(running.cdp_ports)} (configured {_span(configured.cdp_ports)})")
    return out


def drift(configured: Instance, running: Running | None) -> str | None:
    """One line naming how the running gateway differs from its configuration, or
    ``None`` when they agree: ``running on 18789, configured 27960 (restart to apply)``.
    Derived ports that moved with the base port are not repeated."""
    if running is None:
        return None
    shift = running.port - configured.port
    changes = [
        change
        for change, (now, conf) in zip(
            port_changes(configured, running),
            _changed_pairs(configured, running),
            strict=True,
        )
        if now - conf != shift or change.startswith("gateway ")
    ]
    if running.config_path and running.config_path != configured.config_path:
        changes.append(f"config {running.config_path} (configured {configured.config_path})")
    if not changes:
        return None
    if shift:
        rest = [c for c in changes if not c.startswith("gateway ")]
        head = f"running on {running.port}, configured {configured.port}"
        return head + "".join(f"; {c}" for c in rest) + " (restart to apply)"
    return "running with " + "; ".join(changes) + " (restart to apply)"


def _changed_pairs(configured: Instance, running: Running) -> list[tuple[int, int]]:
    """(running, configured) of each entry :func:`port_changes` returns, in its order."""
    pairs = [
        (running.port, configured.port),
        (running.control_port, configured.control_port),
        (running.canvas_port, configured.canvas_port),
    ]
    out = [(now, conf) for now, conf in pairs if now and now != conf]
    if running.cdp_ports and running.cdp_ports != configured.cdp_ports:
        out.append((running.cdp_ports.start, configured.cdp_ports.start))
    return out


def _span(ports: range) -> str:
    return f"{ports.start}-{ports.stop - 1}"
