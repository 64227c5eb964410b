"""The host registry: every moltbot/clawdbot instance known on this host.

Instances are found from state dirs in the home directory (``~/.clawdbot*``,
``~/.moltbot*``) and from the state dirs named by installed service files
(systemd user units, LaunchAgents). Each entry is resolved with the same
resolver as the running process, so ports and paths are computed one way only.
Reading is lenient: an instance whose config is broken is still listed, with
the error, and with the ports its defaults imply.
"""

from __future__ import annotations

import dataclasses
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moltbot.config.schema import Config
from moltbot.errors import MoltbotError
from moltbot.instance import env as envvars
from moltbot.instance.cdp import read_allocations
from moltbot.instance.resolve import (
    Identity,
    Instance,
    Invocation,
    resolve_identity,
    resolve_instance,
)
from moltbot.instance.running import Running, as_running, drift, read_running

STATE_DIR_GLOBS = (".clawdbot", ".clawdbot-*", ".moltbot", ".moltbot-*")


@dataclass(frozen=True)
class KnownInstance:
    """One instance: ``instance`` as configured, ``running`` when its gateway is live."""

    instance: Instance
    sources: tuple[str, ...]
    config_error: str | None = None
    running: Running | None = None
    service_files: tuple[Path, ...] = field(default=())
    config: Config | None = None
    """The instance's config as read leniently (defaults when it is broken)."""

    @property
    def key(self) -> Path:
        return self.instance.state_dir

    @property
    def live_port(self) -> int:
        """The port the running gateway bound, else the configured one."""
        return self.running.port if self.running else self.instance.port

    @property
    def effective(self) -> Instance:
        """The instance with the ports its gateway uses now (configured ones when down)."""
        return as_running(self.instance, self.running)

    @property
    def claimed_ports(self) -> frozenset[int]:
        """Every port this instance uses or will use: configured and running."""
        running = self.running.used_ports if self.running else ()
        return frozenset((*self.instance.used_ports, *running))

    @property
    def drift(self) -> str | None:
        return drift(self.instance, self.running)

    def describe(self) -> str:
        return f"profile {self.instance.profile} ({self.instance.state_dir})"


def service_dirs(home: Path) -> tuple[Path, ...]:
    return (home / ".config" / "systemd" / "user", home / "Library" / "LaunchAgents")


def discover(home: Path, env: Mapping[str, str] | None = None) -> list[KnownInstance]:
    """Every instance on the host, sorted by base port then state dir.

    ``env`` is used only to substitute ``${VAR}`` references in the instances'
    config files (a reference to an unset variable is kept as written). A state
    dir that holds nothing of an instance (say ``~/.clawdbot`` holding only the
    seed's ``main.json``) is not an instance.
    """
    env = dict(env or {})
    found: dict[Path, dict[str, Any]] = {}

    def note(state_dir: Path, source: str, identity_env: dict[str, str], unit: Path | None) -> None:
        state_dir = state_dir.resolve()
        entry = found.setdefault(state_dir, {"sources": [], "env": {}, "units": []})
        entry["sources"].append(source)
        entry["env"].update(identity_env)
        if unit is not None:
            entry["units"].append(unit)

    for pattern in STATE_DIR_GLOBS:
        for path in sorted(home.glob(pattern)):
            if path.is_dir() and path.name.count(".") == 1:
                note(path, "state-dir", {}, None)
    for unit in _service_files(home):
        service_env = {
            key: value
            for key, value in read_service_environment(unit).items()
            if _is_identity_variable(key)
        }
        where = {k: v for k, v in service_env.items() if not k.endswith("_GATEWAY_PORT")}
        try:  # the state dir does not depend on the port, which _load checks
            identity = resolve_identity(Invocation(), where, home)
        except MoltbotError:
            continue  # e.g. an invalid profile name: the unit names no instance we can use
        note(identity.state_dir, f"service:{unit.name}", service_env, unit)

    instances = [_load(home, state_dir, entry, env) for state_dir, entry in found.items()]
    instances = [
        known for known in instances if known.service_files or _holds_an_instance(known.instance)
    ]
    return sorted(instances, key=lambda k: (k.instance.port, str(k.instance.state_dir)))


def _is_identity_variable(name: str) -> bool:
    return any(
        name == prefix + variable
        for prefix in envvars.PREFIXES
        for variable in envvars.IDENTITY_NAMES
    )


def _holds_an_instance(instance: Instance) -> bool:
    return any(
        path.exists()
        for path in (
            instance.config_path,
            instance.runtime_file,
            instance.lock_file,
            instance.agents_root,
            instance.credentials_dir,
            instance.identity_dir,
            instance.logs_dir,
        )
    )


def _service_files(home: Path) -> Iterable[Path]:
    systemd_dir, launchd_dir = service_dirs(home)
    for pattern in ("moltbot-gateway*.service", "clawdbot-gateway*.service"):
        yield from sorted(systemd_dir.glob(pattern))
    for pattern in ("bot.molt.*.plist", "com.clawdbot.*.plist"):
        yield from sorted(launchd_dir.glob(pattern))


def read_service_environment(path: Path) -> dict[str, str]:
    """The environment a systemd unit or LaunchAgent plist sets (best effort)."""
    try:
        if path.suffix == ".plist":
            import plistlib  # macOS only: not loaded elsewhere

            with path.open("rb") as handle:
                data = plistlib.load(handle)
            raw = data.get("EnvironmentVariables") or {}
            return {str(k): str(v) for k, v in raw.items()}
        out: dict[str, str] = {}
        for line in path.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if line.startswith("Environment="):
                for assignment in shlex.split(line[len("Environment=") :]):
                    key, _, value = assignment.partition("=")
                    out[key] = value
        return out
    except (OSError, ValueError):  # plistlib.InvalidFileException is a ValueError
        return {}


def _load(
    home: Path, state_dir: Path, entry: dict[str, Any], env: Mapping[str, str]
) -> KnownInstance:
    identity_env = {
        key: value for key, value in entry["env"].items() if not key.endswith("STATE_DIR")
    }
    identity_env["MOLTBOT_STATE_DIR"] = str(state_dir)
    error: str | None = None
    try:
        identity = resolve_identity(Invocation(), identity_env, home)
    except MoltbotError as exc:  # e.g. a malformed port in a service file
        error = exc.message
        identity_env = {"MOLTBOT_STATE_DIR": str(state_dir)}
        identity = resolve_identity(Invocation(), identity_env, home)
    config, config_error = _lenient_config(identity, env)
    instance = resolve_instance(identity, config, identity_env)
    explicit = {name for name, _ in instance.explicit_cdp_ports}
    allocated = tuple(
        (name, port)
        for name, port in sorted(read_allocations(instance).items())
        if name not in explicit
    )
    instance = dataclasses.replace(instance, allocated_cdp_ports=allocated)
    return KnownInstance(
        instance=instance,
        sources=tuple(entry["sources"]),
        config_error=error or config_error,
        running=read_running(instance),
        service_files=tuple(entry["units"]),
        config=config,
    )


def _lenient_config(identity: Identity, env: Mapping[str, str]) -> tuple[Config, str | None]:
    """Another instance's config: unknown keys and unset ``${VAR}`` are tolerated;
    an unreadable or invalid file yields defaults plus the error."""
    from moltbot.config.store import read_raw, validate

    try:
        _, data = read_raw(identity.config_path)
        source = str(identity.config_path)
        config, _ = validate(data, env, source, strict=False, missing_env="keep")
        return config, None
    except MoltbotError as exc:
        return Config(), exc.message
    except OSError as exc:
        return Config(), f"cannot read {identity.config_path}: {exc.strerror}"


def others(known: Iterable[KnownInstance], me: Instance) -> list[KnownInstance]:
    mine = {me.state_dir.resolve()}
    return [k for k in known if k.instance.state_dir.resolve() not in mine]


def serving(known: Iterable[KnownInstance], port: int) -> KnownInstance | None:
    """The instance whose live gateway uses ``port`` (base, +2 or +4), if any."""
    return next((k for k in known if k.running and port in k.running.used_ports), None)
