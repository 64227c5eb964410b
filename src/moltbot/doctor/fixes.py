"""Safe fixes: move a port (with whole-block spacing), move a workspace to a
suffixed path, reinstall a stale service.

Findings carry :class:`~moltbot.doctor.checks.FixAction` s; :func:`plan` merges
them into one :class:`InstancePlan` per instance (a port and a workspace move
of one instance are one ``setup`` call, because ``setup`` refuses a change
while the other clash remains), and :func:`apply` carries the plans out through
the same code as ``setup`` and ``gateway install --force``.
"""

from __future__ import annotations

import dataclasses
import shlex
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from moltbot.doctor.checks import Finding, Member, free_cdp_port, free_port
from moltbot.errors import MoltbotError
from moltbot.instance.resolve import Identity, resolve_instance
from moltbot.service.base import ServiceManager

AUTO_LEVELS = ("error", "warning")


@dataclass
class InstancePlan:
    member: Member
    port: int | None = None
    workspace: Path | None = None
    reinstall: bool = False
    unset: list[str] = field(default_factory=list)
    # browser profile -> new explicit cdpPort (None: drop the gateway's own allocation)
    cdp_moves: dict[str, int | None] = field(default_factory=dict)
    levels: dict[str, set[str]] = field(default_factory=dict)

    @property
    def state_dir(self) -> Path:
        return self.member.instance.state_dir

    def commands(self) -> list[str]:
        cli = self.member.cli
        out = []
        args = ""
        if self.port is not None:
            args += f" --port {self.port}"
        if self.workspace is not None:
            args += f" --workspace {shlex.quote(str(self.workspace))}"
        if args:
            out.append(f"{cli} setup{args}")
        out += [f"{cli} config unset {key}" for key in self.unset]
        out += [
            f"{cli} config set browser.profiles.{name}.cdpPort {port}"
            for name, port in self.cdp_moves.items()
            if port is not None
        ]
        if self.reinstall:
            out.append(f"{cli} gateway install --force")
        return out

    def describe(self) -> list[str]:
        inst = self.member.instance
        lines = []
        if self.port is not None:
            lines.append(f"move {self.member.label} to base port {self.port} (was {inst.port})")
        if self.workspace is not None:
            lines.append(
                f"move the workspace of profile {inst.profile} to {self.workspace} "
                f"(was {inst.workspace}; files are not copied)"
            )
        lines += [
            f"unpin {key} of profile {inst.profile} (it points at another instance's browser)"
            for key in self.unset
        ]
        lines += [
            f"move the CDP port of browser profile {name!r} of profile {inst.profile} to {port}"
            if port is not None
            else f"drop the CDP port allocation of browser profile {name!r} of profile "
            f"{inst.profile} (the gateway allocates a free one)"
            for name, port in self.cdp_moves.items()
        ]
        if self.reinstall:
            lines.append(f"reinstall the service of profile {inst.profile}")
        return lines

    def as_dict(self) -> dict[str, object]:
        return {
            "profile": self.member.instance.profile,
            "stateDir": str(self.state_dir),
            "port": self.port,
            "workspace": str(self.workspace) if self.workspace else None,
            "unset": self.unset,
            "cdpPorts": self.cdp_moves,
            "reinstallService": self.reinstall,
            "commands": self.commands(),
        }


def plan(findings: Iterable[Finding], members: Sequence[Member]) -> list[InstancePlan]:
    """One plan per instance that any finding wants changed (every severity)."""
    by_dir = {m.instance.state_dir: m for m in members}
    plans: dict[Path, InstancePlan] = {}
    for finding in findings:
        for action in finding.actions:
            member = by_dir.get(action.state_dir)
            if member is None:
                continue
            entry = plans.setdefault(action.state_dir, InstancePlan(member))
            entry.levels.setdefault(action.kind, set()).add(finding.severity)
            if action.kind == "move-port":
                entry.port = -1  # chosen below, one after another
            elif action.kind == "move-workspace":
                entry.workspace = action.workspace
            elif action.kind == "reinstall-service":
                entry.reinstall = True
            elif action.kind == "unset-key" and action.key and action.key not in entry.unset:
                entry.unset.append(action.key)
            elif action.kind == "move-cdp-port" and action.browser_profile:
                entry.cdp_moves[action.browser_profile] = -1 if action.key else None
    promised_cdp: list[int] = []
    for entry in plans.values():
        for name, port in entry.cdp_moves.items():
            if port == -1:  # chosen here, so two moves never pick the same free port
                chosen = free_cdp_port(entry.member, members, promised_cdp)
                entry.cdp_moves[name] = chosen
                if chosen is not None:
                    promised_cdp.append(chosen)
    promised: list[int] = []
    for entry in plans.values():
        if entry.port == -1:
            entry.port = free_port(entry.member, members, promised)
            promised.append(entry.port)
            if entry.member.service_installed:
                entry.reinstall = True
                entry.levels.setdefault("reinstall-service", set()).update(
                    entry.levels["move-port"]
                )
    return list(plans.values())


def automatic(
    plans: Sequence[InstancePlan], levels: Sequence[str] = AUTO_LEVELS
) -> list[InstancePlan]:
    """The parts of ``plans`` that ``doctor --fix`` applies: those an error or a warning
    asked for (info-level moves are only shown). Ports stay as shown."""
    out = []
    for entry in plans:
        wanted = {kind for kind, sev in entry.levels.items() if sev & set(levels)}
        part = InstancePlan(
            entry.member,
            port=entry.port if "move-port" in wanted else None,
            workspace=entry.workspace if "move-workspace" in wanted else None,
            reinstall=entry.reinstall and "reinstall-service" in wanted,
            unset=list(entry.unset) if "unset-key" in wanted else [],
            cdp_moves=dict(entry.cdp_moves) if "move-cdp-port" in wanted else {},
        )
        if part.commands() or part.cdp_moves:
            out.append(part)
    return out


def attach_commands(findings: Iterable[Finding], plans: Sequence[InstancePlan]) -> None:
    """Show each fixable finding with the complete command(s) for the instance it moves."""
    by_dir = {p.state_dir: p for p in plans}
    for finding in findings:
        for action in finding.actions:
            entry = by_dir.get(action.state_dir)
            if entry and entry.commands():
                finding.fix = " && ".join(entry.commands())
                break


def apply(
    plans: Sequence[InstancePlan], env: Mapping[str, str], manager: ServiceManager | None
) -> list[str]:
    """Carry out ``plans``; returns one line per step. A step that fails is reported
    (``failed: ...``) and the others still run: one instance's problem never holds back
    the fixes of another."""
    done: list[str] = []
    for entry in plans:
        for label, step in _steps(entry, env, manager):
            try:
                result = step()
            except MoltbotError as exc:
                done.append(f"{label}: failed: {exc.message}")
            except OSError as exc:
                done.append(f"{label}: failed: {exc}")
            else:
                done.extend([f"{label}: {result[0]}", *result[1:]])
        if entry.port is not None and entry.member.running and not entry.reinstall:
            done.append(
                f"restart the running gateway of profile {entry.member.instance.profile} "
                "to use its new port"
            )
    return done


Step = Callable[[], list[str]]


def _steps(
    entry: InstancePlan, env: Mapping[str, str], manager: ServiceManager | None
) -> list[tuple[str, Step]]:
    from moltbot.config import keypath
    from moltbot.instance.cdp import record_allocation

    # the instance as its files say, not as an inherited port variable says
    identity = dataclasses.replace(entry.member.instance.identity, env_port=None)
    cli = entry.member.cli
    steps: list[tuple[str, Step]] = []
    if entry.port is not None or entry.workspace is not None:
        steps.append((entry.commands()[0], partial(_setup, identity, env, entry)))
    for key in entry.unset:
        change = partial(keypath.unset, keys=keypath.parse(key))
        steps.append((f"{cli} config unset {key}", partial(_edit, identity, env, change)))
    for name, port in entry.cdp_moves.items():
        if port is None:
            drop = partial(record_allocation, entry.member.instance, name, None)
            steps.append((f"drop the CDP allocation of browser profile {name!r}", _done(drop)))
            continue
        keys = ["browser", "profiles", name, "cdpPort"]
        change = partial(keypath.set_, keys=keys, value=port)
        label = f"{cli} config set browser.profiles.{name}.cdpPort {port}"
        steps.append((label, partial(_edit, identity, env, change)))
    if entry.reinstall:
        steps.append(
            (f"{cli} gateway install --force", partial(_reinstall, identity, env, manager))
        )
    return steps


def _done(action: Callable[[], object]) -> Step:
    def run() -> list[str]:
        action()
        return ["done"]

    return run


def _setup(identity: Identity, env: Mapping[str, str], entry: InstancePlan) -> list[str]:
    from moltbot.instance.setup import setup_instance

    report = setup_instance(identity, env, port=entry.port, workspace=entry.workspace)
    return ["; ".join(report.changed) or "updated"]


def _edit(
    identity: Identity, env: Mapping[str, str], change: Callable[[dict[str, Any]], object]
) -> list[str]:
    from moltbot.config.store import update_config

    update_config(identity.config_path, change, env)
    return ["done"]


def _reinstall(
    identity: Identity, env: Mapping[str, str], manager: ServiceManager | None
) -> list[str]:
    from moltbot.config.store import read_config
    from moltbot.service import actions

    if manager is None:
        return ["skipped: no service manager on this platform"]
    instance = resolve_instance(identity, read_config(identity.config_path, env).config, env)
    result = actions.install(instance, manager, force=True)
    return [result.message, *(f"  warning: {w}" for w in result.warnings)]
