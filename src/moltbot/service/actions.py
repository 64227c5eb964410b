"""install / uninstall / start / stop / restart one instance's gateway service.

Only the instance's own service name is ever touched. Results are
:class:`ActionResult`; failures are :class:`~moltbot.errors.ServiceError`
(exit 8) or, for an installed file that differs from what this instance
would install, :class:`~moltbot.errors.ConflictError` (exit 3, use ``--force``).

- ``install`` is idempotent: identical files are not rewritten (the service is
  only enabled if it was not); a changed interpreter, port or profile is listed
  and needs ``force``. Without a reachable service manager (a container, WSL
  without systemd) the files are still written and the result says so.
- ``start``/``stop``/``restart`` need an installed service and a service manager
  (``stop`` of a service that is not installed is an error too: a gateway run in the
  foreground is not stopped by it, and the error names its pid); ``uninstall`` of
  something not installed succeeds as a no-op.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moltbot.errors import ConflictError, ServiceError
from moltbot.fsutil import write_atomic
from moltbot.instance.resolve import Instance
from moltbot.service.base import ServiceManager, Unavailable
from moltbot.service.spec import ServiceSpec, build_spec, differences


@dataclass
class ActionResult:
    action: str
    result: str
    manager: str
    service: str
    file: Path
    message: str
    changes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    hints: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": True,
            "action": self.action,
            "result": self.result,
            "service": {"manager": self.manager, "name": self.service, "file": str(self.file)},
            "message": self.message,
            "changes": self.changes,
            "warnings": self.warnings,
            "hints": self.hints,
        }


def _result(
    action: str, result: str, manager: ServiceManager, spec: ServiceSpec, message: str, **extra: Any
) -> ActionResult:
    return ActionResult(
        action,
        result,
        manager.name,
        manager.service_name(spec),
        manager.primary_file(spec),
        message,
        **extra,
    )


def foreground_hint(spec: ServiceSpec) -> str:
    return f"run the gateway in the foreground instead: `{spec.command('gateway')}`"


def install(
    instance: Instance,
    manager: ServiceManager,
    *,
    force: bool = False,
    enable_linger: bool = False,
    python: str | None = None,
) -> ActionResult:
    spec = build_spec(instance, platform=manager.platform, python=python)
    files = manager.files(spec)
    primary = manager.primary_file(spec)
    name = manager.service_name(spec)
    identical = all(p.exists() and p.read_bytes() == content for p, content in files.items())
    changes: list[str] = []
    if primary.exists() and not identical:
        changes = differences(spec, manager.read(primary))
        if not force:
            listed = "\n".join(f"  - {change}" for change in changes)
            raise ConflictError(
                f"{manager.title} {name} is installed but differs from this instance:\n{listed}",
                hint=f"rewrite it with `{spec.command('gateway install --force')}`",
            )
    reason = manager.unavailable_reason()

    if identical and not force:
        if reason:
            return _result(
                "install",
                "unchanged",
                manager,
                spec,
                f"{manager.title} {name} is up to date: {primary}",
                warnings=[f"{reason}; the service is not enabled here"],
                hints=[*manager.manual_commands(spec), foreground_hint(spec)],
            )
        warnings = manager.install_warnings(spec, enable_linger=enable_linger)
        if manager.is_loaded(spec):
            return _result(
                "install",
                "unchanged",
                manager,
                spec,
                f"{manager.title} {name} is already installed and up to date: {primary}",
                warnings=warnings,
            )
        manager.activate(spec)
        return _result(
            "install",
            "installed",
            manager,
            spec,
            f"Enabled and started {manager.title} {name}: {primary}",
            warnings=warnings,
        )

    for path, content in files.items():
        write_atomic(path, content, mode=0o644, dir_mode=0o777)
    verb = "Reinstalled" if changes or (force and identical) else "Installed"
    if reason:
        return _result(
            "install",
            "written",
            manager,
            spec,
            f"Wrote {manager.title} {name}: {primary}",
            changes=changes,
            warnings=[f"{reason}; the file is written but the service is not enabled"],
            hints=[*manager.manual_commands(spec), foreground_hint(spec)],
        )
    manager.activate(spec)
    warnings = manager.install_warnings(spec, enable_linger=enable_linger)
    return _result(
        "install",
        "reinstalled" if verb == "Reinstalled" else "installed",
        manager,
        spec,
        f"{verb} {manager.title} {name}: {primary}",
        changes=changes,
        warnings=warnings,
        hints=[f"logs: {manager.log_hint(spec)}"],
    )


def uninstall(instance: Instance, manager: ServiceManager) -> ActionResult:
    spec = build_spec(instance, platform=manager.platform)
    primary = manager.primary_file(spec)
    name = manager.service_name(spec)
    reason = manager.unavailable_reason()
    if not primary.exists():
        if reason is None and manager.is_loaded(spec):
            manager.deactivate(spec)
            manager.after_remove(spec)
            return _result(
                "uninstall",
                "uninstalled",
                manager,
                spec,
                f"Unloaded {manager.title} {name} (its file was already gone)",
            )
        return _result(
            "uninstall",
            "not-installed",
            manager,
            spec,
            f"{manager.title} {name} is not installed ({primary})",
        )
    warnings: list[str] = []
    if reason is None:
        manager.deactivate(spec)
    else:
        warnings.append(f"{reason}; removed the file only")
    for path in manager.files(spec):
        path.unlink(missing_ok=True)
    if reason is None:
        manager.after_remove(spec)
        if manager.is_loaded(spec):
            raise ServiceError(
                f"{manager.title} {name} is still {manager.loaded_text} after removing its file",
                hint=manager.removal_commands(primary, name)[0],
            )
    return _result(
        "uninstall",
        "uninstalled",
        manager,
        spec,
        f"Removed {manager.title} {name}: {primary}",
        warnings=warnings,
    )


def _installed_spec(instance: Instance, manager: ServiceManager, action: str) -> ServiceSpec:
    spec = build_spec(instance, platform=manager.platform)
    if not manager.primary_file(spec).exists():
        raise ServiceError(
            f"cannot {action}: the gateway service of {_who(spec)} is not installed "
            f"({manager.primary_file(spec)})",
            hint=f"install it with `{spec.command('gateway install')}`, or {foreground_hint(spec)}",
        )
    reason = manager.unavailable_reason()
    if reason:
        raise Unavailable(
            f"cannot {action} {manager.service_name(spec)}: {reason}",
            hint=f"{foreground_hint(spec)} (or under your own supervisor)",
        )
    return spec


def _who(spec: ServiceSpec) -> str:
    return "the default instance" if spec.profile == "default" else f"profile {spec.profile}"


def start(instance: Instance, manager: ServiceManager) -> ActionResult:
    spec = _installed_spec(instance, manager, "start")
    manager.start(spec)
    return _result(
        "start",
        "started",
        manager,
        spec,
        f"Started {manager.title} {manager.service_name(spec)}",
        hints=[f"logs: {manager.log_hint(spec)}"],
    )


def restart(instance: Instance, manager: ServiceManager) -> ActionResult:
    spec = _installed_spec(instance, manager, "restart")
    manager.restart(spec)
    return _result(
        "restart",
        "restarted",
        manager,
        spec,
        f"Restarted {manager.title} {manager.service_name(spec)}",
    )


def stop(instance: Instance, manager: ServiceManager) -> ActionResult:
    leftover = _foreground_gateway(instance)
    try:
        spec = _installed_spec(instance, manager, "stop")
    except ServiceError as exc:
        if leftover:
            exc.hint = (
                f"the gateway of this instance runs outside a service (pid {leftover}): stop "
                f"it with Ctrl-C in its terminal or `kill {leftover}`"
            )
        raise
    manager.stop(spec)
    result = _result(
        "stop",
        "stopped",
        manager,
        spec,
        f"Stopped {manager.title} {manager.service_name(spec)}",
    )
    if leftover:
        result.warnings.append(
            f"a gateway of {_who(spec)} is still running outside the service manager "
            f"(pid {leftover}); stop it with Ctrl-C in its terminal or `kill {leftover}`"
        )
    return result


def _foreground_gateway(instance: Instance) -> int | None:
    from moltbot.service.inspect import process_facts

    facts = process_facts(instance)
    return facts["pid"] if facts["alive"] else None
