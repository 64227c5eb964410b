"""Gather facts for doctor and run the checks: this instance, and (with ``host``)
every instance on the host.

Host mode is on with ``--all`` and automatically when more than one instance
exists. Facts are gathered without calling the service manager (file contents
and processes only), so doctor works the same in containers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moltbot.config.schema import Config
from moltbot.config.store import read_config
from moltbot.doctor import checks, fixes
from moltbot.doctor.checks import Finding, Member, ServiceFile
from moltbot.errors import MoltbotError
from moltbot.instance.registry import KnownInstance, discover, service_dirs
from moltbot.instance.resolve import Identity, Instance, resolve_instance
from moltbot.service.base import ServiceManager
from moltbot.service.inspect import Listening
from moltbot.service.spec import build_spec, differences

OURS = {"systemd": ("moltbot-gateway*.service",), "launchd": ("bot.molt.*.plist",)}
LEGACY = {
    "systemd": ("clawdbot-gateway*.service", "openclaw-gateway*.service"),
    "launchd": ("com.clawdbot.*.plist", "ai.openclaw.*.plist"),
}


@dataclass
class Report:
    instance: Instance
    host: bool
    members: list[Member]
    findings: list[Finding]
    plans: list[fixes.InstancePlan] = field(default_factory=list)
    auto_plans: list[fixes.InstancePlan] = field(default_factory=list)
    exists: bool = True  # False: the instance asked about does not exist (host-only report)

    def count(self, severity: str) -> int:
        return sum(1 for f in self.findings if f.severity == severity)

    @property
    def errors(self) -> int:
        return self.count("error")

    def as_dict(self) -> dict[str, Any]:
        return {
            "instance": {
                "profile": self.instance.profile,
                "stateDir": str(self.instance.state_dir),
                "configPath": str(self.instance.config_path),
                "port": self.instance.port,
                "exists": self.exists,
            },
            "host": self.host,
            "instances": [m.label for m in self.members],
            "findings": [f.as_dict() for f in self.findings],
            "fixes": [p.as_dict() for p in self.auto_plans],
            "summary": {s: self.count(s) for s in ("error", "warning", "info")},
            "ok": self.errors == 0,
        }


def _managers(env: Mapping[str, str], home: Path) -> dict[str, ServiceManager]:
    from moltbot.service import get_manager

    return {name: get_manager(env, home, name) for name in ("systemd", "launchd")}


def host_manager(env: Mapping[str, str], home: Path) -> ServiceManager | None:
    from moltbot.service import get_manager

    try:
        return get_manager(env, home)
    except MoltbotError:
        return None


def service_files(home: Path, env: Mapping[str, str]) -> list[ServiceFile]:
    managers = _managers(env, home)
    found = []
    for kind, directory in zip(("systemd", "launchd"), service_dirs(home), strict=True):
        manager = managers[kind]
        for legacy, patterns in ((False, OURS[kind]), (True, LEGACY[kind])):
            for pattern in patterns:
                for path in sorted(directory.glob(pattern)):
                    name = path.name if kind == "systemd" else path.stem
                    found.append(
                        ServiceFile(
                            path,
                            name,
                            kind,
                            manager.read(path),
                            legacy,
                            tuple(manager.removal_commands(path, name)),
                        )
                    )
    return found


def member_for(
    known: KnownInstance,
    env: Mapping[str, str],
    manager: ServiceManager | None,
    sockets: Listening | None = None,
) -> Member:
    from moltbot.service.inspect import process_facts

    try:
        config: Config | None = read_config(known.instance.config_path, env, strict=False).config
    except MoltbotError:
        config = None
    member = Member(known, config, running=process_facts(known.instance, sockets)["alive"])
    identity = known.instance.identity
    if (
        config is not None
        and config.gateway.port
        and identity.env_port not in (None, config.gateway.port)
    ):
        # A service file pins another port than the config: check what the config says
        # (what the next start or reinstall uses); the stale service is reported below.
        member.configured = resolve_instance(
            dataclasses.replace(identity, env_port=None), config, {}
        )
    if manager is not None:
        spec = build_spec(member.instance, platform=manager.platform)
        path = manager.primary_file(spec)
        if path.exists():
            member.service_installed = True
            files = manager.files(spec)
            member.service_current = all(
                p.exists() and p.read_bytes() == c for p, c in files.items()
            )
            if not member.service_current:
                member.service_changes = differences(spec, manager.read(path))
    return member


def diagnose(identity: Identity, env: Mapping[str, str], *, host: bool | None = None) -> Report:
    """Run every check for the instance ``identity`` names (and the host, see module doc)."""
    from moltbot.doctor.rescue import check_rescue
    from moltbot.service.inspect import listening, port_owner, process_facts

    home = identity.home
    manager = host_manager(env, home)
    error: str | None = None
    exists = False
    try:
        snapshot = read_config(identity.config_path, env)
        config: Config | None = snapshot.config
        exists = snapshot.exists
    except MoltbotError as exc:
        config, error = None, exc.message
    instance = resolve_instance(identity, config or Config(), env)

    known = discover(home, env)
    sockets = listening()  # one look at the host's sockets for every instance
    members = [member_for(k, env, manager, sockets) for k in known]
    me = next((m for m in members if checks._same(m.instance.state_dir, instance.state_dir)), None)
    # `moltbot doctor` on a host whose instances are all named profiles: the default
    # instance does not exist and nothing points at it, so there is nothing to report
    # about it (proposing `onboard` would put a default instance next to the others).
    absent = (
        me is None
        and not exists
        and error is None
        and bool(members)
        and identity.profile_source == "default"
        and identity.state_dir_source == "default"
        and identity.config_source == "default"
    )

    findings: list[Finding] = [
        Finding("info", "env-overridden", warning, (f"profile {identity.profile}",))
        for warning in identity.warnings
    ]
    findings += checks.check_environment(env, checks.cli_prefix(instance))
    if not absent:
        findings += checks.check_config(instance, config, error, exists)
        findings += check_rescue(instance, config, known)
    if me is not None:
        findings += checks.check_cdp_ports(me, members)
        findings += checks.check_drift(me)
    if exists:
        findings += checks.check_directories(instance)
        process = process_facts(instance, sockets)
        owners = {
            port: port_owner(port, sockets)
            for port in (instance.port, instance.control_port, instance.canvas_port)
        }
        suggestion = None
        if any(owners.values()):
            from moltbot.instance import ports

            others = [
                k.instance
                for k in known
                if not checks._same(k.instance.state_dir, instance.state_dir)
            ]
            name = (
                identity.profile
                if identity.profile not in ("default", "dev")
                else (f"{identity.profile}-moved")
            )
            suggestion = ports.choose_free_base(
                name,
                [o.port for o in others],
                [*(p for o in others for p in o.port_block), *sockets],
            )
        findings += checks.check_ports_owned(instance, owners, process["pid"], suggestion)
    if me is not None:
        findings += checks.check_service(me)

    host = (len(known) > 1 or absent) if host is None else host
    if host:
        # an instance known only from a service file whose state dir is gone is not a
        # neighbour (it is reported as an orphaned service below)
        findings += checks.check_pairs([m for m in members if m.instance.state_dir.is_dir()])
        findings += checks.check_service_files(service_files(home, env), members)
        for member in members:
            findings += checks.check_service(member)
            findings += checks.check_cdp_ports(member, members)
            findings += checks.check_drift(member)

    findings = checks.sort_findings(findings)
    plans = fixes.plan(findings, members)
    fixes.attach_commands(findings, plans)
    auto = fixes.automatic(plans)
    return Report(instance, host, members, findings, plans, auto, exists=not absent)
