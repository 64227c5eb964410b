"""What a gateway service runs: one plan per instance, rendered by each manager.

The plan is built only from the resolved :class:`~moltbot.instance.Instance`:
``<absolute python> -m moltbot gateway --port N`` with the instance's identity
as environment. It never contains a secret: the gateway reads its token or
password from its own config file.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from moltbot import __version__
from moltbot.instance import env as envvars
from moltbot.instance.names import ServiceNames
from moltbot.instance.resolve import Instance

SERVICE_MARKER = "moltbot"
SERVICE_KIND = "gateway"
ENV_PREFIX = "CLAWDBOT_"

# Variables a service must not take from its manager's environment: the other
# aliases of what we set (MOLTBOT_ beats CLAWDBOT_, DESIGN §1), gateway secrets,
# and port overrides. A service's identity comes from its own file only.
FOREIGN_NAMES = (*envvars.IDENTITY_NAMES, *envvars.SECRET_NAMES, "CANVAS_HOST_PORT")

Platform = str  # "linux" | "darwin" | "win32"


@dataclass(frozen=True)
class ServiceSpec:
    """The service of one instance, independent of the service manager."""

    profile: str
    names: ServiceNames
    description: str
    program: tuple[str, ...]
    environment: tuple[tuple[str, str], ...]
    unset: tuple[str, ...]
    working_directory: Path
    state_dir: Path
    config_path: Path
    logs_dir: Path
    port: int
    version: str
    cli: str = field(default="moltbot")

    @property
    def env(self) -> dict[str, str]:
        return dict(self.environment)

    @property
    def interpreter(self) -> str:
        return self.program[0]

    def command(self, verb: str) -> str:
        """This instance's moltbot command, e.g. ``moltbot --profile rescue gateway install``."""
        return f"{self.cli} {verb}"


def cli_prefix(instance: Instance) -> str:
    """How to address ``instance`` on the command line.

    ``moltbot`` for the default instance, ``moltbot --profile P`` for a profile (also
    when its config lives elsewhere but its ``instance.json`` records it, as after the
    seed's manual form); an instance known only by an explicit state dir gets its
    variables in front, so a pasted fix command never lands on another instance.
    """
    from moltbot.instance.resolve import config_in, default_state_dir, recorded_config_path

    profile = instance.profile
    state_dir, config = instance.state_dir, instance.config_path
    default_dir = default_state_dir(instance.home, profile)
    expected = recorded_config_path(state_dir) or config_in(state_dir)
    if _same(state_dir, default_dir) and _same(config, expected):
        return "moltbot" if profile == "default" else f"moltbot --profile {profile}"
    import shlex

    parts = [f"{ENV_PREFIX}STATE_DIR={shlex.quote(str(state_dir))}"]
    if not _same(config, config_in(state_dir)):
        parts.append(f"{ENV_PREFIX}CONFIG_PATH={shlex.quote(str(config))}")
    return " ".join([*parts, "moltbot"])


def _same(a: Path, b: Path) -> bool:
    return a == b or a.resolve() == b.resolve()


def interpreter() -> str:
    """The absolute path of the running Python, as invoked (venv symlinks kept)."""
    return os.path.abspath(sys.executable)


def build_spec(
    instance: Instance,
    *,
    platform: Platform | None = None,
    python: str | None = None,
    version: str = __version__,
) -> ServiceSpec:
    """The plan for ``instance``'s service on ``platform`` (default: this host)."""
    platform = platform or sys.platform
    python = python or interpreter()
    program = (python, "-m", "moltbot", "gateway", "--port", str(instance.port))
    env: list[tuple[str, str]] = []
    if platform != "win32":
        env.append(("HOME", str(instance.home)))
        env.append(("PATH", _service_path(python, platform)))
    env += [
        (ENV_PREFIX + "PROFILE", instance.profile),
        (ENV_PREFIX + "STATE_DIR", str(instance.state_dir)),
        (ENV_PREFIX + "CONFIG_PATH", str(instance.config_path)),
        (ENV_PREFIX + "GATEWAY_PORT", str(instance.port)),
        (ENV_PREFIX + "SERVICE_MARKER", SERVICE_MARKER),
        (ENV_PREFIX + "SERVICE_KIND", SERVICE_KIND),
        (ENV_PREFIX + "SERVICE_VERSION", version),
    ]
    ours = {name for name, _ in env}
    unset = tuple(p + n for n in FOREIGN_NAMES for p in envvars.PREFIXES if p + n not in ours)
    label = (
        "Moltbot Gateway"
        if instance.profile == "default"
        else (f"Moltbot Gateway (profile {instance.profile})")
    )
    return ServiceSpec(
        profile=instance.profile,
        names=instance.service,
        description=f"{label}, port {instance.port}",
        program=program,
        environment=tuple(env),
        unset=unset,
        working_directory=instance.state_dir,
        state_dir=instance.state_dir,
        config_path=instance.config_path,
        logs_dir=instance.logs_dir,
        port=instance.port,
        version=version,
        cli=cli_prefix(instance),
    )


def _service_path(python: str, platform: Platform) -> str:
    """A small, fixed PATH: the interpreter's directory, then the system's."""
    dirs = [os.path.dirname(python)]
    if platform == "darwin":
        dirs += ["/opt/homebrew/bin", "/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin"]
    else:
        dirs += ["/usr/local/bin", "/usr/bin", "/bin"]
    return os.pathsep.join(dict.fromkeys(dirs))


@dataclass(frozen=True)
class ServiceCommand:
    """A service file read back: what it would run, with which environment."""

    path: Path
    program: tuple[str, ...]
    environment: dict[str, str]

    @property
    def interpreter(self) -> str | None:
        return self.program[0] if self.program else None

    @property
    def port(self) -> int | None:
        args = list(self.program)
        for index, arg in enumerate(args):
            if arg == "--port" and index + 1 < len(args) and args[index + 1].isdigit():
                return int(args[index + 1])
            if arg.startswith("--port=") and arg[7:].isdigit():
                return int(arg[7:])
        value = envvars.get(self.environment, "GATEWAY_PORT")
        return int(value) if value and value.isdigit() else None

    @property
    def state_dir(self) -> str | None:
        return envvars.get(self.environment, "STATE_DIR")

    @property
    def profile(self) -> str | None:
        return envvars.get(self.environment, "PROFILE")

    def identity_environment(self) -> dict[str, str]:
        """The environment without anything that could be secret (for status output)."""
        keep = (
            "PROFILE",
            "STATE_DIR",
            "CONFIG_PATH",
            "GATEWAY_PORT",
            "SERVICE_MARKER",
            "SERVICE_KIND",
            "SERVICE_VERSION",
        )
        return {
            k: v
            for k, v in self.environment.items()
            if any(k == p + n for p in envvars.PREFIXES for n in keep)
        }


def differences(spec: ServiceSpec, found: ServiceCommand | None) -> list[str]:
    """What an installed service file does differently from ``spec`` (human-readable)."""
    if found is None:
        return ["the service file cannot be read"]
    changes: list[str] = []

    def compare(what: str, old: object, new: object) -> None:
        if old != new:
            changes.append(f"{what}: {old if old is not None else '(unset)'} -> {new}")

    compare("interpreter", found.interpreter, spec.interpreter)
    compare("port", found.port, spec.port)
    compare("profile", found.profile, spec.profile)
    compare("state dir", found.state_dir, str(spec.state_dir))
    compare("config", envvars.get(found.environment, "CONFIG_PATH"), str(spec.config_path))
    compare("version", envvars.get(found.environment, "SERVICE_VERSION"), spec.version)
    if not changes and tuple(found.program) != spec.program:
        compare("command", " ".join(found.program), " ".join(spec.program))
    if not changes:
        for key, value in spec.environment:
            compare(f"environment {key}", found.environment.get(key), value)
    if not changes:
        changes.append("service file layout (generated by another moltbot version)")
    return changes
