"""`setup`: create (or complete) an instance: config, state dir, workspace.

Idempotent: existing values and files are kept and reported as kept; a value
given explicitly (``--port``, ``--workspace``) replaces a different stored one and
is reported as changed. Nothing is written when the chosen port or paths clash
with another instance on the host (:class:`ConflictError`).
"""

from __future__ import annotations

import copy
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moltbot.config import keypath
from moltbot.config.schema import Config
from moltbot.config.store import read_config, update_config, validate
from moltbot.errors import ConflictError, NotFoundError
from moltbot.instance import ports
from moltbot.instance.registry import KnownInstance, discover, others
from moltbot.instance.resolve import (
    Identity,
    Instance,
    Invocation,
    default_workspace,
    resolve_instance,
    write_identity_file,
)
from moltbot.instance.workspace import ensure_workspace


@dataclass
class SetupReport:
    instance: Instance
    created: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.instance.facts(),
            "created": self.created,
            "kept": self.kept,
            "changed": self.changed,
        }


@dataclass(frozen=True)
class Setting:
    """One config value setup wants. ``current`` is the stored value (None: unset);
    ``force`` replaces a different stored value (an explicit flag)."""

    key: str
    current: Any
    wanted: Any
    force: bool = False

    @property
    def action(self) -> str:
        if self.current is None:
            return "create"
        return "change" if self.force and self.current != self.wanted else "keep"


def new_token() -> str:
    return secrets.token_urlsafe(32)


def describe(known: KnownInstance) -> str:
    inst = known.instance
    return f"profile {inst.profile} ({inst.state_dir}, port {known.live_port})"


def choose_port(identity: Identity, neighbours: list[KnownInstance]) -> int:
    """A new instance's base port: its profile's slot, clear of every known block."""
    return ports.choose_free_base(
        identity.profile,
        [base for k in neighbours for base in {k.instance.port, k.live_port}],
        [p for k in neighbours for p in k.instance.used_ports],
    )


def check_port(port: int, neighbours: list[KnownInstance], me: Instance | None = None) -> None:
    """Refuse a base port within the seed's spacing of another instance, or one whose
    derived ports are used by another instance."""
    mine = set(me.used_ports) if me else {port, ports.control_port(port), ports.canvas_port(port)}
    for other in neighbours:
        theirs = set(other.instance.used_ports) | {other.live_port}
        close = [
            base
            for base in {other.instance.port, other.live_port}
            if abs(base - port) < ports.MIN_BASE_SPACING
        ]
        shared = sorted(mine & theirs)
        if not (close or shared):
            continue
        if shared:
            detail = f"port {shared[0]} would be used by both"
        else:
            detail = f"base ports {port} and {close[0]} are closer than {ports.MIN_BASE_SPACING}"
        profile = me.profile if me else "x"
        suggestion = ports.choose_free_base(
            profile if profile not in ("default", "dev") else "x",
            [base for k in neighbours for base in {k.instance.port, k.live_port}],
            [p for k in neighbours for p in k.instance.used_ports],
        )
        raise ConflictError(
            f"port {port} clashes with {describe(other)}: {detail}",
            hint=f"choose a base port at least {ports.MIN_BASE_SPACING} (better "
            f"{ports.BLOCK_SIZE}) away from other instances' base ports, e.g. {suggestion}",
        )


def check_paths(me: Instance, neighbours: list[KnownInstance]) -> None:
    """Refuse a config file, state dir or workspace shared with (or nested in) another
    instance's."""
    for other in neighbours:
        inst = other.instance
        if inst.config_path.resolve() == me.config_path.resolve():
            raise ConflictError(
                f"config {me.config_path} is already used by {describe(other)}",
                hint="use another --profile, or another CLAWDBOT_CONFIG_PATH",
            )
        for mine_label, mine in (("workspace", me.workspace), ("state dir", me.state_dir)):
            for their_label, theirs in (
                ("workspace", inst.workspace),
                ("state dir", inst.state_dir),
            ):
                if mine_label == their_label == "state dir":
                    continue  # distinct by construction (the registry's key)
                if _overlap(mine, theirs):
                    hint = (
                        f"use a workspace of its own, e.g. {_free_workspace(me, neighbours)}"
                        if mine_label == "workspace"
                        else "use another --profile"
                    )
                    relation = "is" if mine.resolve() == theirs.resolve() else "overlaps"
                    raise ConflictError(
                        f"{mine_label} {mine} {relation} the {their_label} of {describe(other)}",
                        hint=hint,
                    )


def _free_workspace(me: Instance, neighbours: list[KnownInstance]) -> Path:
    """A workspace path for ``me`` that no other instance's paths overlap."""
    for suffix in ("", *(f"-{n}" for n in range(2, 100))):
        candidate = default_workspace(me.home, me.profile + suffix)
        if not any(
            _overlap(candidate, other.instance.workspace)
            or _overlap(candidate, other.instance.state_dir)
            for other in neighbours
        ):
            return candidate
    return default_workspace(me.home, me.profile)


def _overlap(a: Path, b: Path) -> bool:
    a, b = a.resolve(), b.resolve()
    return a == b or a.is_relative_to(b) or b.is_relative_to(a)


def _stored(data: dict[str, Any], key: str) -> Any:
    try:
        return keypath.get(data, keypath.parse(key))
    except NotFoundError:
        return None


def setup_instance(
    identity: Identity,
    env: Mapping[str, str],
    *,
    port: int | None = None,
    workspace: Path | None = None,
    dry_run: bool = False,
) -> SetupReport:
    """Create or complete the instance ``identity`` names (see the module doc).

    With ``dry_run`` every check runs and the report says what would be done, but
    nothing is written."""
    snapshot = read_config(identity.config_path, env)
    data = snapshot.data
    current = resolve_instance(identity, snapshot.config, env)
    neighbours = others(discover(identity.home, env), current)

    requested_port = port or identity.env_port
    stored_port = _stored(data, "gateway.port")
    token, password = _stored(data, "gateway.auth.token"), _stored(data, "gateway.auth.password")
    secret = (
        ("gateway.auth.password", password)
        if password and not token
        else ("gateway.auth.token", token)
    )
    plan = [
        Setting("gateway.mode", _stored(data, "gateway.mode"), "local"),
        Setting(
            "gateway.port",
            stored_port,
            requested_port or stored_port or choose_port(identity, neighbours),
            force=requested_port is not None,
        ),
        Setting(secret[0], secret[1], secret[1] or new_token()),
        Setting(
            "agents.defaults.workspace",
            _stored(data, "agents.defaults.workspace"),
            str(workspace) if workspace else str(current.workspace),
            force=workspace is not None,
        ),
    ]
    updates = {s.key: s.wanted for s in plan if s.action != "keep"}

    planned = copy.deepcopy(data)
    for key, value in updates.items():
        keypath.set_(planned, keypath.parse(key), value)
    config, warnings = validate(planned, env, str(identity.config_path))
    instance = resolve_instance(identity, config, env, Invocation(port=port))
    check_port(instance.port, neighbours, instance)
    check_paths(instance, neighbours)

    report = SetupReport(instance, warnings=list(warnings))
    for setting in plan:
        if setting.action == "create":
            report.created.append(f"config {setting.key}")
        elif setting.action == "change":
            report.changed.append(f"{setting.key}: {setting.current} -> {setting.wanted}")
        else:
            report.kept.append(f"config {setting.key}")
    if dry_run:
        return report

    _ensure_dir(identity.state_dir, report)
    if updates or not snapshot.exists:

        def apply(stored: dict[str, Any]) -> None:
            for key, value in updates.items():
                keypath.set_(stored, keypath.parse(key), value)

        update_config(identity.config_path, apply, env, base_hash=snapshot.hash or "")
    for directory in (instance.sessions_dir(), instance.credentials_dir, instance.logs_dir):
        _ensure_dir(directory, report)
    write_identity_file(identity)
    files = ensure_workspace(instance.workspace)
    report.created.extend(f"workspace {name}" for name in files.created)
    report.kept.extend(f"workspace {name}" for name in files.kept)
    return report


def _ensure_dir(path: Path, report: SetupReport) -> None:
    if path.is_dir():
        report.kept.append(str(path))
        return
    path.mkdir(parents=True, mode=0o700, exist_ok=True)
    os.chmod(path, 0o700)
    report.created.append(str(path))


def check_change(
    identity: Identity, env: Mapping[str, str], before: Config | None, after: Config
) -> None:
    """The host checks of ``setup`` for a config write: a change that moves this
    instance's ports or paths must not clash with another instance
    (:class:`ConflictError` naming it). Changes that touch neither are not checked, so a
    clash that already existed never blocks an unrelated edit."""
    new = resolve_instance(identity, after, env)
    old = resolve_instance(identity, before, env) if before is not None else None
    moved_ports = old is None or (set(old.used_ports), old.cdp_ports) != (
        set(new.used_ports),
        new.cdp_ports,
    )
    moved_paths = old is None or (old.workspace, old.canvas_root) != (
        new.workspace,
        new.canvas_root,
    )
    if not (moved_ports or moved_paths):
        return
    neighbours = others(discover(identity.home, env), new)
    if moved_ports:
        check_port(new.port, neighbours, new)
    if moved_paths:
        check_paths(new, neighbours)
