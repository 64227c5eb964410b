"""`setup`: create (or complete) an instance: config, state dir, workspace.

Idempotent: existing values and files are kept and reported as kept. Nothing is
written when the chosen port or paths clash with another instance on the host.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moltbot.agents.workspace import ensure_workspace
from moltbot.config.store import read_config, update_config
from moltbot.errors import ConflictError
from moltbot.instance import ports
from moltbot.instance.registry import KnownInstance, discover, others
from moltbot.instance.resolve import Identity, Instance, Invocation, resolve_instance


@dataclass
class SetupReport:
    instance: Instance
    created: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        inst = self.instance
        return {
            "profile": inst.profile,
            "stateDir": str(inst.state_dir),
            "configPath": str(inst.config_path),
            "workspace": str(inst.workspace),
            "port": inst.port,
            "controlPort": inst.control_port,
            "canvasPort": inst.canvas_port,
            "cdpRange": [inst.cdp_ports.start, inst.cdp_ports.stop - 1],
            "created": self.created,
            "kept": self.kept,
            "changed": self.changed,
        }


def new_token() -> str:
    return secrets.token_urlsafe(32)


def describe(known: KnownInstance) -> str:
    inst = known.instance
    return f"profile {inst.profile} ({inst.state_dir}, port {known.live_port})"


def choose_port(identity: Identity, neighbours: list[KnownInstance]) -> int:
    """A new instance's base port: its profile's slot, clear of every known block."""
    return ports.choose_free_base(
        identity.profile,
        [k.instance.port for k in neighbours],
        [p for k in neighbours for p in k.instance.used_ports],
    )


def check_port(port: int, neighbours: list[KnownInstance], me: Instance | None = None) -> None:
    """Refuse a base port within the seed's spacing of another instance, or one whose
    derived ports are used by another instance."""
    mine = set(me.used_ports) if me else {port, ports.control_port(port), ports.canvas_port(port)}
    for other in neighbours:
        theirs = set(other.instance.used_ports)
        close = abs(other.instance.port - port) < ports.MIN_BASE_SPACING
        shared = sorted(mine & theirs)
        if close or shared:
            detail = f"port {shared[0]} is used by both" if shared else (
                f"base ports {port} and {other.instance.port} are closer than "
                f"{ports.MIN_BASE_SPACING}")
            raise ConflictError(
                f"port {port} clashes with {describe(other)}: {detail}",
                hint="choose a base port at least 20 (better 111) away, e.g. "
                f"--port {ports.choose_free_base('x', [k.instance.port for k in neighbours])}",
            )


def check_paths(me: Instance, neighbours: list[KnownInstance]) -> None:
    for other in neighbours:
        inst = other.instance
        if inst.config_path.resolve() == me.config_path.resolve():
            raise ConflictError(f"config {me.config_path} is already used by {describe(other)}")
        if inst.workspace.resolve() == me.workspace.resolve():
            raise ConflictError(
                f"workspace {me.workspace} is already used by {describe(other)}",
                hint=f"pass --workspace {me.workspace}-{me.profile}",
            )
        if _inside(me.workspace, inst.state_dir) or _inside(inst.workspace, me.state_dir):
            raise ConflictError(f"workspace {me.workspace} overlaps the state of {describe(other)}")


def _inside(path: Path, parent: Path) -> bool:
    try:
        path.resolve().relative_to(parent.resolve())
        return True
    except ValueError:
        return False


def setup_instance(
    identity: Identity,
    env: Mapping[str, str],
    *,
    port: int | None = None,
    workspace: Path | None = None,
) -> SetupReport:
    snapshot = read_config(identity.config_path, env)
    neighbours = others(discover(identity.home, env), _provisional(identity, snapshot, env))
    gateway = snapshot.data.get("gateway") if isinstance(snapshot.data.get("gateway"), dict) else {}
    requested_port = port or identity.env_port
    chosen_port = requested_port or gateway.get("port") or choose_port(identity, neighbours)

    updates: dict[str, Any] = {}
    changed: list[str] = []
    kept: list[str] = []

    def want(key: str, current: Any, value: Any, *, replace: bool) -> None:
        if current is None:
            updates[key] = value
        elif replace and current != value:
            updates[key] = value
            changed.append(f"{key}: {current} -> {value}")
        else:
            kept.append(key)

    auth = gateway.get("auth") if isinstance(gateway.get("auth"), dict) else {}
    defaults = (snapshot.data.get("agents") or {}).get("defaults") or {}
    want("gateway.mode", gateway.get("mode"), "local", replace=False)
    want("gateway.port", gateway.get("port"), chosen_port, replace=requested_port is not None)
    if auth.get("token") or auth.get("password"):
        kept.append("gateway.auth")
    else:
        updates["gateway.auth.token"] = new_token()
    workspace_value = str(workspace) if workspace else None
    want("agents.defaults.workspace", defaults.get("workspace"),
         workspace_value or str(_provisional(identity, snapshot, env).workspace),
         replace=workspace_value is not None)

    from moltbot.config.keypath import parse, set_

    planned = dict(snapshot.data)
    merged = _deep_copy(planned)
    for key, value in updates.items():
        set_(merged, parse(key), value)
    from moltbot.config.store import validate

    config, _ = validate(merged, env, str(identity.config_path))
    instance = resolve_instance(identity, config, env, Invocation(port=port))
    check_port(instance.port, neighbours, instance)
    check_paths(instance, neighbours)

    created: list[str] = []
    _ensure_dir(identity.state_dir, created)
    if updates or not snapshot.exists:
        def mutate(data: dict[str, Any]) -> None:
            for key, value in updates.items():
                set_(data, parse(key), value)

        update_config(identity.config_path, mutate, env, base_hash=snapshot.hash or "")
        created.extend(f"config {k}" for k in updates if f"{k}:" not in " ".join(changed))
    for directory in (instance.sessions_dir(), instance.credentials_dir, instance.logs_dir):
        _ensure_dir(directory, created)
    report = ensure_workspace(instance.workspace)
    created.extend(f"workspace {name}" for name in report.created)
    kept.extend(f"workspace {name}" for name in report.kept)
    return SetupReport(instance, created, kept, changed)


def _provisional(identity: Identity, snapshot: Any, env: Mapping[str, str]) -> Instance:
    return resolve_instance(identity, snapshot.config, env)


def _deep_copy(data: dict[str, Any]) -> dict[str, Any]:
    import json

    return json.loads(json.dumps(data))


def _ensure_dir(path: Path, created: list[str]) -> None:
    if path.is_dir():
        return
    path.mkdir(parents=True, mode=0o700, exist_ok=True)
    os.chmod(path, 0o700)
    created.append(str(path))
