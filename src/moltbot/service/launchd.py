"""macOS: a LaunchAgent, ``~/Library/LaunchAgents/bot.molt.<gateway|P>.plist``.

The plist is written with :mod:`plistlib`, so every string is escaped by the
XML writer and ``ProgramArguments`` is an array: no shell quoting is involved.
``KeepAlive`` restarts the gateway only after an unsuccessful exit, throttled
by ``ThrottleInterval``. (launchd cannot exempt one exit code, so an invalid
config, exit 78, is retried every ``ThrottleInterval`` seconds; ``gateway status``
shows the last exit code.) Restarts use ``launchctl kickstart -k``, never
bootout + bootstrap, which can leave the agent unloaded.
"""

from __future__ import annotations

import os
import plistlib
import shlex
from pathlib import Path
from typing import Any

from moltbot.instance.registry import service_dirs
from moltbot.service.base import ServiceManager, ServiceRuntime
from moltbot.service.runner import Completed, failure
from moltbot.service.spec import ServiceCommand, ServiceSpec

THROTTLE_INTERVAL_S = 10
REQUIRED_KEYS = ("Label", "ProgramArguments", "RunAtLoad", "KeepAlive", "EnvironmentVariables")


def plist_data(spec: ServiceSpec) -> dict[str, Any]:
    return {
        "Label": spec.names.launchd_label,
        "ProgramArguments": list(spec.program),
        "EnvironmentVariables": dict(spec.environment),
        "WorkingDirectory": str(spec.working_directory),
        "RunAtLoad": True,
        "KeepAlive": {"SuccessfulExit": False},
        "ThrottleInterval": THROTTLE_INTERVAL_S,
        "StandardOutPath": str(spec.logs_dir / "gateway.out.log"),
        "StandardErrorPath": str(spec.logs_dir / "gateway.err.log"),
    }


def render_plist(spec: ServiceSpec) -> bytes:
    return plistlib.dumps(plist_data(spec), fmt=plistlib.FMT_XML, sort_keys=False)


def read_plist(path: Path) -> ServiceCommand | None:
    try:
        with path.open("rb") as handle:
            data = plistlib.load(handle)
    except (OSError, plistlib.InvalidFileException, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    args = data.get("ProgramArguments") or ([data["Program"]] if data.get("Program") else [])
    env = data.get("EnvironmentVariables") or {}
    if not args:
        return None
    environment = {str(k): str(v) for k, v in env.items()}
    return ServiceCommand(path, tuple(str(a) for a in args), environment)


class LaunchdManager(ServiceManager):
    name = "launchd"
    title = "LaunchAgent"
    loaded_text = "loaded"
    not_loaded_text = "not loaded"
    platform = "darwin"

    @property
    def domain(self) -> str:
        return f"gui/{os.getuid()}"

    def target(self, spec: ServiceSpec) -> str:
        return f"{self.domain}/{spec.names.launchd_label}"

    def service_name(self, spec: ServiceSpec) -> str:
        return spec.names.launchd_label

    def primary_file(self, spec: ServiceSpec) -> Path:
        return service_dirs(self.home)[1] / f"{spec.names.launchd_label}.plist"

    def files(self, spec: ServiceSpec) -> dict[Path, bytes]:
        return {self.primary_file(spec): render_plist(spec)}

    def read(self, path: Path) -> ServiceCommand | None:
        return read_plist(path)

    def _launchctl(self, *args: str, check: bool = True, what: str | None = None) -> Completed:
        done = self.runner.run(["launchctl", *args], check=False)
        if check and not done.ok:
            raise failure(done, what)
        return done

    def unavailable_reason(self) -> str | None:
        if self.runner.which("launchctl") is None:
            return "launchctl not found: this host does not run launchd"
        return None

    def activate(self, spec: ServiceSpec) -> None:
        spec.logs_dir.mkdir(parents=True, exist_ok=True)
        target = self.target(spec)
        self._launchctl("bootout", target, check=False)  # an older definition, if loaded
        self._launchctl("enable", target, what=f"cannot enable {target}")
        self._launchctl(
            "bootstrap",
            self.domain,
            str(self.primary_file(spec)),
            what=f"cannot load {self.primary_file(spec)}",
        )

    def deactivate(self, spec: ServiceSpec) -> None:
        done = self._launchctl("bootout", self.target(spec), check=False)
        if not done.ok and not _is_not_loaded(done):
            raise failure(done, f"cannot unload {self.target(spec)}")

    def start(self, spec: ServiceSpec) -> None:
        if self.is_loaded(spec):
            self._launchctl("kickstart", self.target(spec))
        else:
            spec.logs_dir.mkdir(parents=True, exist_ok=True)
            self._launchctl("bootstrap", self.domain, str(self.primary_file(spec)))

    def stop(self, spec: ServiceSpec) -> None:
        # Unloading is the only stop launchd honours with KeepAlive; `start` loads it again.
        self.deactivate(spec)

    def restart(self, spec: ServiceSpec) -> None:
        if self.is_loaded(spec):
            self._launchctl("kickstart", "-k", self.target(spec))
        else:
            self.start(spec)

    def is_loaded(self, spec: ServiceSpec) -> bool:
        return self._launchctl("print", self.target(spec), check=False).ok

    def runtime(self, spec: ServiceSpec) -> ServiceRuntime:
        done = self._launchctl("print", self.target(spec), check=False)
        if not done.ok:
            return ServiceRuntime("stopped", detail="not loaded")
        fields: dict[str, str] = {}
        for line in done.stdout.splitlines():
            key, sep, value = line.strip().partition(" = ")
            if sep and key not in fields:
                fields[key] = value.strip()
        state = fields.get("state")
        pid = fields.get("pid", "")
        last = fields.get("last exit code", "")
        return ServiceRuntime(
            "running" if state == "running" else "stopped",
            pid=int(pid) if pid.isdigit() else None,
            state=state,
            last_exit=int(last) if last.lstrip("-").isdigit() else None,
        )

    def manual_commands(self, spec: ServiceSpec) -> list[str]:
        return [f"launchctl bootstrap {self.domain} {shlex.quote(str(self.primary_file(spec)))}"]

    def removal_commands(self, path: Path, name: str) -> list[str]:
        return [f"launchctl bootout {self.domain}/{name}", f"rm {shlex.quote(str(path))}"]

    def start_command(self, spec: ServiceSpec) -> str:
        return self.manual_commands(spec)[0]

    def stop_command(self, spec: ServiceSpec) -> str:
        return f"launchctl bootout {self.target(spec)}"  # KeepAlive would undo a kill

    def restart_command(self, spec: ServiceSpec) -> str:
        return f"launchctl kickstart -k {self.target(spec)}"

    def log_hint(self, spec: ServiceSpec) -> str:
        return f"tail -n 200 {shlex.quote(str(spec.logs_dir / 'gateway.err.log'))}"


def _is_not_loaded(done: Completed) -> bool:
    text = done.output.lower()
    return done.returncode in (3, 113) or "no such process" in text or "not find" in text


__all__ = ["REQUIRED_KEYS", "LaunchdManager", "plist_data", "read_plist", "render_plist"]
