"""The instance resolver: the one place that turns argv + environment + config
into every path, port and name of an instance (DESIGN §2–3).

Precedence everywhere: explicit flag > environment > config > default.
``--profile`` replaces inherited identity variables (state dir, config path,
port) instead of merging with them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from moltbot.errors import UsageError
from moltbot.instance import env as envvars
from moltbot.instance import ports
from moltbot.instance.names import ServiceNames, service_names

if TYPE_CHECKING:  # the schema is imported only by code that validates
    from moltbot.config.schema import Config

PROFILE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
CONFIG_NAME = "moltbot.json"
LEGACY_CONFIG_NAME = "clawdbot.json"
DEFAULT_AGENT_ID = "main"

Source = Literal["flag", "env", "config", "state-dir", "record", "default"]


@dataclass(frozen=True)
class Invocation:
    """What the command line asked for."""

    profile: str | None = None
    dev: bool = False
    port: int | None = None


@dataclass(frozen=True)
class Identity:
    """Who this instance is, known before its config is read."""

    profile: str
    profile_source: Source
    home: Path
    state_dir: Path
    state_dir_source: Source
    config_path: Path
    config_source: Source
    env_port: int | None
    warnings: tuple[str, ...] = ()

    # Files of the state dir that are known before the config is read (client commands
    # find a running gateway through them without validating the config).
    @property
    def lock_file(self) -> Path:
        return self.state_dir / "gateway.lock"

    @property
    def runtime_file(self) -> Path:
        return self.state_dir / "gateway.json"


@dataclass(frozen=True)
class Instance:
    """Every path, port and name of one instance. Build with :func:`resolve_instance`."""

    identity: Identity
    workspace: Path
    workspace_source: Source
    port: int
    port_source: Source
    bind: str
    control_port: int
    canvas_port: int
    canvas_root: Path
    cdp_ports: range
    explicit_cdp_ports: tuple[tuple[str, int], ...] = field(default=())
    # The gateway's own allocations (state dir); filled in by the host registry.
    allocated_cdp_ports: tuple[tuple[str, int], ...] = field(default=())

    @property
    def profile(self) -> str:
        return self.identity.profile

    @property
    def home(self) -> Path:
        return self.identity.home

    @property
    def state_dir(self) -> Path:
        return self.identity.state_dir

    @property
    def config_path(self) -> Path:
        return self.identity.config_path

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def log_file(self) -> Path:
        return self.logs_dir / "gateway.jsonl"

    @property
    def credentials_dir(self) -> Path:
        return self.state_dir / "credentials"

    @property
    def devices_dir(self) -> Path:
        """Paired client devices (WebSocket device identities)."""
        return self.state_dir / "devices"

    @property
    def identity_dir(self) -> Path:
        return self.state_dir / "identity"

    @property
    def nodes_dir(self) -> Path:
        """The gateway's node pairing store (``node.pair.*``) and rename overrides."""
        return self.state_dir / "nodes"

    @property
    def exec_approvals_file(self) -> Path:
        """Exec approval policy and allowlist of this instance (``exec.approvals.*``)."""
        return self.state_dir / "exec-approvals.json"

    @property
    def node_host_file(self) -> Path:
        """``moltbot node run``'s node id, display name and gateway address."""
        return self.state_dir / "node.json"

    @property
    def settings_dir(self) -> Path:
        """Gateway-owned settings changed over the protocol (voice wake words, TTS)."""
        return self.state_dir / "settings"

    @property
    def lock_file(self) -> Path:
        return self.identity.lock_file

    @property
    def runtime_file(self) -> Path:
        return self.identity.runtime_file

    @property
    def identity_file(self) -> Path:
        return identity_file(self.state_dir)

    @property
    def browser_root(self) -> Path:
        return self.state_dir / "browser"

    @property
    def agents_root(self) -> Path:
        return self.state_dir / "agents"

    @property
    def skills_dir(self) -> Path:
        """Managed skills of this instance (``skills.install`` copies them here)."""
        return self.state_dir / "skills"

    @property
    def tools_dir(self) -> Path:
        """Files a skill's ``download`` installer fetched (``tools/<skillKey>/``)."""
        return self.state_dir / "tools"

    def memory_index(self, agent_id: str = DEFAULT_AGENT_ID) -> Path:
        """The agent's memory search index (SQLite)."""
        return self.state_dir / "memory" / f"{agent_id}.sqlite"

    def channel_dir(self, channel: str) -> Path:
        """A messaging channel's own files (``<state>/<channel>/``: offsets, media)."""
        return self.state_dir / channel

    @property
    def cron_dir(self) -> Path:
        """Cron jobs (``jobs.json``) and their run logs (``runs/``), unless ``cron.store``."""
        return self.state_dir / "cron"

    @property
    def service(self) -> ServiceNames:
        return service_names(self.profile)

    def sessions_dir(self, agent_id: str = DEFAULT_AGENT_ID) -> Path:
        return self.agents_root / agent_id / "sessions"

    def browser_user_data(self, browser_profile: str) -> Path:
        return self.browser_root / browser_profile / "user-data"

    @property
    def used_ports(self) -> tuple[int, ...]:
        """Ports this instance binds or has allocated: base, +2, +4, assigned CDP ports."""
        return (
            self.port,
            self.control_port,
            self.canvas_port,
            *(port for _, port in self.explicit_cdp_ports),
            *(port for _, port in self.allocated_cdp_ports),
        )

    @property
    def port_block(self) -> range:
        return range(
            min(self.port, self.control_port, self.canvas_port),
            max(self.canvas_port, self.cdp_ports.stop - 1) + 1,
        )

    def facts(self) -> dict[str, Any]:
        """Profile, paths and ports with the JSON keys of ``status`` and ``setup``."""
        return {
            "profile": self.profile,
            "stateDir": str(self.state_dir),
            "configPath": str(self.config_path),
            "workspace": str(self.workspace),
            "port": self.port,
            "controlPort": self.control_port,
            "canvasPort": self.canvas_port,
            "cdpRange": [self.cdp_ports.start, self.cdp_ports.stop - 1],
        }


def identity_file(state_dir: Path) -> Path:
    """``<state>/instance.json``: which config and profile this state dir belongs to, so
    the host registry finds an instance whose config lives elsewhere (set by env)."""
    return state_dir / "instance.json"


def read_identity_file(state_dir: Path) -> dict[str, str]:
    """The identity record of ``state_dir`` (``{}`` when absent or unreadable)."""
    import json

    try:
        data = json.loads(identity_file(state_dir).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)}


def recorded_config_path(state_dir: Path) -> Path | None:
    """The config path ``state_dir``'s identity record names, if any (an instance started
    the seed's manual way keeps its config outside the state dir)."""
    recorded = read_identity_file(state_dir).get("configPath")
    return Path(recorded) if recorded and Path(recorded).is_absolute() else None


def write_identity_file(identity: Identity) -> None:
    from moltbot.fsutil import write_json_atomic

    record = {"profile": identity.profile, "configPath": str(identity.config_path)}
    if read_identity_file(identity.state_dir) != record:
        write_json_atomic(identity_file(identity.state_dir), record, mode=0o644, sync=False)


def validate_profile(name: str, *, source: str = "--profile") -> str:
    """``name`` if it is a valid profile name (``default`` in any case → ``default``),
    else :class:`UsageError` naming ``source``."""
    if not name:
        raise UsageError(f"{source} requires a value")
    if not PROFILE_PATTERN.match(name):
        raise UsageError(
            f"invalid profile {name!r} from {source}: use letters, digits, '_' and '-' only "
            "(at most 64 characters, starting with a letter or digit)"
        )
    return "default" if name.lower() == "default" else name


def default_state_dir(home: Path, profile: str) -> Path:
    if profile.lower() == "default":
        primary, alternate = home / ".clawdbot", home / ".moltbot"
        return alternate if alternate.is_dir() and not primary.exists() else primary
    return home / f".clawdbot-{profile}"


def default_workspace(home: Path, profile: str) -> Path:
    return home / "clawd" if profile.lower() == "default" else home / f"clawd-{profile}"


def config_in(state_dir: Path) -> Path:
    primary, legacy = state_dir / CONFIG_NAME, state_dir / LEGACY_CONFIG_NAME
    return legacy if legacy.is_file() and not primary.exists() else primary


def profile_from_state_dir(state_dir: Path) -> str | None:
    """The profile a state dir implies: ``~/.clawdbot-rescue`` → ``rescue``.

    Used when a state dir is given by environment without a profile (the seed's
    manual example), so that workspace, default port and service names still
    differ from the default instance's.
    """
    name = state_dir.name.lstrip(".")
    for stem in ("clawdbot", "moltbot", "openclaw"):
        if name == stem:
            return "default"
        if name.startswith(stem + "-"):
            name = name[len(stem) + 1 :]
            break
    name = re.sub(r"[^A-Za-z0-9_-]", "-", name).strip("-_")[:64]
    return name if name and PROFILE_PATTERN.match(name) else None


def _expand(value: str, home: Path) -> Path:
    if value == "~" or value.startswith("~/"):
        return (home / value[2:]).resolve() if value != "~" else home
    return Path(value).resolve()


def _parse_port(value: str, variable: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise UsageError(f"{variable}={value!r} is not a port number") from None
    if not 1 <= port <= 65535:
        raise UsageError(f"{variable}={value} is outside 1..65535")
    return port


def resolve_identity(invocation: Invocation, env: Mapping[str, str], home: Path) -> Identity:
    flag_profile = invocation.profile
    if invocation.dev:
        if flag_profile not in (None, "dev"):
            raise UsageError("--dev cannot be combined with --profile other than dev")
        flag_profile = "dev"
    if flag_profile is not None:
        return _identity_from_profile_flag(validate_profile(flag_profile), env, home)

    env_profile = envvars.lookup(env, "PROFILE")
    env_state = envvars.lookup(env, "STATE_DIR")
    env_config = envvars.lookup(env, "CONFIG_PATH")
    env_port = envvars.lookup(env, "GATEWAY_PORT")

    profile: str | None = None
    profile_source: Source = "default"
    if env_profile:
        profile = validate_profile(env_profile[0], source=env_profile[1])
        profile_source = "env"
    if env_state:
        state_dir, state_source = _expand(env_state[0], home), "env"
        if profile is None:
            profile = profile_from_state_dir(state_dir)
            profile_source = "state-dir" if profile not in (None, "default") else "default"
    else:
        state_dir, state_source = default_state_dir(home, profile or "default"), "default"
    profile = profile or "default"
    recorded = recorded_config_path(state_dir)
    if env_config:
        config_path, config_source = _expand(env_config[0], home), "env"
    elif recorded:
        config_path, config_source = recorded, "record"
    else:
        config_path, config_source = config_in(state_dir), "default"
    return Identity(
        profile=profile,
        profile_source=profile_source,
        home=home,
        state_dir=state_dir,
        state_dir_source=state_source,  # type: ignore[arg-type]
        config_path=config_path,
        config_source=config_source,  # type: ignore[arg-type]
        env_port=_parse_port(*env_port) if env_port else None,
    )


def _identity_from_profile_flag(profile: str, env: Mapping[str, str], home: Path) -> Identity:
    state_dir = default_state_dir(home, profile)
    recorded = recorded_config_path(state_dir)
    config_path, config_source = (
        (recorded, "record") if recorded else (config_in(state_dir), "flag")
    )
    overridden = []
    for name, expected in (
        ("PROFILE", profile),
        ("STATE_DIR", str(state_dir)),
        ("CONFIG_PATH", str(config_path)),
        ("GATEWAY_PORT", None),
    ):
        found = envvars.lookup(env, name)
        if not found:
            continue
        value, variable = found
        same = expected is not None and (
            value == expected or (name != "PROFILE" and _expand(value, home) == Path(expected))
        )
        if not same:
            overridden.append(f"{variable}={value}")
    warnings = ()
    if overridden:
        warnings = (f"--profile {profile} overrides inherited {', '.join(overridden)}",)
    return Identity(
        profile, "flag", home, state_dir, "flag", config_path, config_source, None, warnings
    )


def resolve_instance(
    identity: Identity,
    config: Config,
    env: Mapping[str, str],
    invocation: Invocation | None = None,
) -> Instance:
    home = identity.home
    flag_port = invocation.port if invocation else None
    if flag_port is not None:
        port, port_source = flag_port, "flag"
    elif identity.env_port is not None:
        port, port_source = identity.env_port, "env"
    elif config.gateway.port:
        port, port_source = config.gateway.port, "config"
    else:
        port, port_source = ports.profile_default_port(identity.profile), "default"

    if config.agents.defaults.workspace:
        workspace, workspace_source = _expand(config.agents.defaults.workspace, home), "config"
    else:
        workspace, workspace_source = default_workspace(home, identity.profile), "default"

    control = config.browser.control_port or ports.control_port(port)
    env_canvas = envvars.lookup(env, "CANVAS_HOST_PORT")
    if env_canvas:
        canvas = _parse_port(*env_canvas)
    else:
        canvas = config.canvas_host.port or ports.canvas_port(port)
    canvas_root = (
        _expand(config.canvas_host.root, home) if config.canvas_host.root else workspace / "canvas"
    )
    explicit = tuple(
        (name, profile.cdp_port)
        for name, profile in sorted(config.browser.profiles.items())
        if profile.cdp_port is not None
    )
    return Instance(
        identity=identity,
        workspace=workspace,
        workspace_source=workspace_source,  # type: ignore[arg-type]
        port=port,
        port_source=port_source,  # type: ignore[arg-type]
        bind=config.gateway.bind,
        control_port=control,
        canvas_port=canvas,
        canvas_root=canvas_root,
        cdp_ports=ports.cdp_range(control),
        explicit_cdp_ports=explicit,
    )
