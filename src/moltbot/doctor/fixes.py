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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from moltbot.doctor.checks import Finding, Member, free_port
from moltbot.instance.resolve import resolve_instance
from moltbot.service.base import ServiceManager

AUTO_LEVELS = ("error", "warning")


@dataclass
class InstancePlan:
    member: Member
    port: int | None = None
    workspace: Path | None = None
    reinstall: bool = False
    unset: list[str] = field(default_factory=list)
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
        )
        if part.commands():
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
    """Carry out ``plans``; returns one line per step. Raises on the first failure."""
    from moltbot.config import keypath
    from moltbot.config.store import read_config, update_config
    from moltbot.instance.setup import setup_instance
    from moltbot.service import actions

    done: list[str] = []
    for entry in plans:
        # the instance as its files say, not as an inherited port variable says
        identity = dataclasses.replace(entry.member.instance.identity, env_port=None)
        if entry.port is not None or entry.workspace is not None:
            report = setup_instance(identity, env, port=entry.port, workspace=entry.workspace)
            done.append(
                f"{' && '.join(entry.commands()[:1])}: {'; '.join(report.changed) or 'updated'}"
            )
        for key in entry.unset:
            keys = keypath.parse(key)
            update_config(identity.config_path, lambda data, k=keys: keypath.unset(data, k), env)
            done.append(f"{entry.member.cli} config unset {key}: done")
        if entry.reinstall:
            if manager is None:
                done.append(
                    f"cannot reinstall the service of profile {identity.profile}: "
                    "no service manager on this platform"
                )
                continue
            instance = resolve_instance(
                identity, read_config(identity.config_path, env).config, env
            )
            result = actions.install(instance, manager, force=True)
            done.append(f"{entry.member.cli} gateway install --force: {result.message}")
            done.extend(f"  warning: {w}" for w in result.warnings)
        if entry.port is not None and entry.member.running and not entry.reinstall:
            done.append(
                f"restart the running gateway of profile {identity.profile} to use its new port"
            )
    return done
