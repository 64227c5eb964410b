"""The contract every service manager (systemd, launchd, Task Scheduler) fulfils.

A manager renders a :class:`~moltbot.service.spec.ServiceSpec` into its own file
format, reads such files back, and drives the OS service manager through a
:class:`~moltbot.service.runner.Runner`. It knows nothing about the CLI.

Errors: :class:`Unavailable` when there is no usable service manager here
(a container, WSL without systemd); any other :class:`ServiceError` when the
manager is present but a command failed.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

from moltbot.errors import ServiceError
from moltbot.service.runner import Runner
from moltbot.service.spec import ServiceCommand, ServiceSpec


class Unavailable(ServiceError):
    """No service manager can be reached on this host (e.g. a container without systemd)."""


@dataclass(frozen=True)
class ServiceRuntime:
    status: Literal["running", "stopped", "unknown"]
    pid: int | None = None
    state: str | None = None
    sub_state: str | None = None
    last_exit: int | None = None
    detail: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


class ServiceManager(ABC):
    name: ClassVar[str]
    title: ClassVar[str]
    loaded_text: ClassVar[str] = "loaded"
    not_loaded_text: ClassVar[str] = "not loaded"
    platform: ClassVar[str]

    def __init__(self, runner: Runner, home: Path) -> None:
        self.runner = runner
        self.home = home

    # files --------------------------------------------------------------------

    @abstractmethod
    def service_name(self, spec: ServiceSpec) -> str:
        """The unit file name / launchd label / task name."""

    @abstractmethod
    def primary_file(self, spec: ServiceSpec) -> Path:
        """The file whose presence means "installed"."""

    @abstractmethod
    def files(self, spec: ServiceSpec) -> dict[Path, bytes]:
        """Every file the service consists of, primary first, rendered."""

    @abstractmethod
    def read(self, path: Path) -> ServiceCommand | None:
        """Parse a service file back (``None`` when unreadable or not a service file)."""

    # the OS service manager ---------------------------------------------------

    @abstractmethod
    def unavailable_reason(self) -> str | None:
        """Why this manager cannot be used here, or ``None`` when it can."""

    def require(self) -> None:
        reason = self.unavailable_reason()
        if reason:
            raise Unavailable(reason)

    @abstractmethod
    def activate(self, spec: ServiceSpec) -> None:
        """After the files are written: register, enable and (re)start the service."""

    @abstractmethod
    def deactivate(self, spec: ServiceSpec) -> None:
        """Before the files are removed: stop and unregister (tolerates "not loaded")."""

    def after_remove(self, spec: ServiceSpec) -> None:  # noqa: B027 - optional hook
        """After the files are removed (systemd: daemon-reload)."""

    @abstractmethod
    def start(self, spec: ServiceSpec) -> None: ...

    @abstractmethod
    def stop(self, spec: ServiceSpec) -> None: ...

    @abstractmethod
    def restart(self, spec: ServiceSpec) -> None: ...

    @abstractmethod
    def is_loaded(self, spec: ServiceSpec) -> bool:
        """Registered with the manager (systemd: enabled; launchd: loaded; schtasks: exists)."""

    @abstractmethod
    def runtime(self, spec: ServiceSpec) -> ServiceRuntime: ...

    def install_warnings(self, spec: ServiceSpec, *, enable_linger: bool) -> list[str]:
        """Host checks after an install (systemd: lingering). May act when asked to."""
        return []

    @abstractmethod
    def manual_commands(self, spec: ServiceSpec) -> list[str]:
        """What to run by hand to enable and start the written files."""

    @abstractmethod
    def removal_commands(self, path: Path, name: str) -> list[str]:
        """How to stop and delete service ``name`` defined by ``path`` (for doctor hints)."""

    @abstractmethod
    def start_command(self, spec: ServiceSpec) -> str: ...

    @abstractmethod
    def stop_command(self, spec: ServiceSpec) -> str: ...

    @abstractmethod
    def restart_command(self, spec: ServiceSpec) -> str: ...

    @abstractmethod
    def log_hint(self, spec: ServiceSpec) -> str: ...
