"""Where a client command finds this instance's gateway, and with which secret.

URL: ``--url`` > the runtime file of the running gateway (its real port) >
``gateway.remote.url`` when ``gateway.mode=remote`` > the instance's configured
port on loopback. Secrets: flag > MOLTBOT_/CLAWDBOT_/OPENCLAW_GATEWAY_TOKEN|PASSWORD >
config. Never another profile's port.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from moltbot.gateway.lock import is_locked
from moltbot.instance import env as envvars
from moltbot.instance.resolve import Identity, Instance

if TYPE_CHECKING:
    from moltbot.config.schema import Config


@dataclass(frozen=True)
class Target:
    url: str
    source: str
    host: str
    port: int
    token: str | None
    password: str | None
    runtime: dict[str, Any] | None
    foreign: str | None = None  # another instance whose live gateway serves this port

    @property
    def running(self) -> bool:
        return self.runtime is not None

    def not_running_message(self, profile: str) -> str:
        return (
            f"the gateway of profile {profile} is not running: port {self.port} is served by "
            f"{self.foreign}"
        )


@dataclass(frozen=True)
class ClientSettings:
    """The ``gateway.*`` keys a client needs (from a validated config or the raw file)."""

    remote: bool = False
    remote_url: str | None = None
    token: str | None = None
    password: str | None = None

    @classmethod
    def from_config(cls, config: Config) -> ClientSettings:
        gateway = config.gateway
        remote = gateway.mode == "remote"
        auth = gateway.remote if remote else gateway.auth
        return cls(remote, gateway.remote.url, auth.token, auth.password)

    @classmethod
    def from_raw(cls, data: Mapping[str, Any], env: Mapping[str, str]) -> ClientSettings:
        """From the parsed file (``${VAR}`` substituted where set), without validation."""
        from moltbot.config.envsubst import substitute

        gateway = data.get("gateway") if isinstance(data.get("gateway"), dict) else {}
        gateway = substitute(gateway, env, "config", missing="keep")
        remote = gateway.get("mode") == "remote"
        section = gateway.get("remote" if remote else "auth")
        section = section if isinstance(section, dict) else {}
        remote_section = gateway.get("remote") if isinstance(gateway.get("remote"), dict) else {}

        def text(value: Any) -> str | None:
            return value if isinstance(value, str) and value else None

        return cls(
            remote,
            text(remote_section.get("url")),
            text(section.get("token")),
            text(section.get("password")),
        )


def running_gateway(identity: Identity | Instance) -> dict[str, Any] | None:
    """The runtime file, if a live gateway holds this instance's lock."""
    try:
        data = json.loads(identity.runtime_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not is_locked(identity.lock_file):
        return None
    return data


def resolve_target(
    instance: Instance,
    config: Config,
    env: Mapping[str, str],
    *,
    url: str | None = None,
    token: str | None = None,
    password: str | None = None,
    refuse_foreign: bool = True,
) -> Target:
    """Where this instance's gateway is. When it is not running and its port is served by
    another instance, :class:`GatewayUnreachableError` names that instance (unless
    ``refuse_foreign`` is false: then ``Target.foreign`` does), instead of letting a client
    fail on the other instance's credentials."""
    fallback = (f"ws://127.0.0.1:{instance.port}", f"{instance.port_source} port")
    target = _target(
        instance,
        ClientSettings.from_config(config),
        env,
        fallback,
        url=url,
        token=token,
        password=password,
    )
    if target.source != fallback[1]:
        return target
    from moltbot.instance.registry import discover, others, serving

    other = serving(others(discover(instance.home, env), instance), target.port)
    if other is None:
        return target
    target = dataclasses.replace(target, foreign=other.describe())
    if refuse_foreign:
        from moltbot.errors import GatewayUnreachableError

        flag = "" if other.instance.profile == "default" else f"--profile {other.instance.profile} "
        raise GatewayUnreachableError(
            target.not_running_message(instance.profile),
            hint=f"start this instance first (moltbot{_flag(instance)} gateway), or talk to "
            f"that one with `moltbot {flag}...`",
        )
    return target


def _flag(instance: Instance) -> str:
    return "" if instance.profile == "default" else f" --profile {instance.profile}"


def running_target(
    identity: Identity,
    env: Mapping[str, str],
    *,
    url: str | None = None,
    token: str | None = None,
    password: str | None = None,
) -> Target | None:
    """The target of this instance's *running* gateway, found without validating the
    config (fast path for `status`); ``None`` when no gateway runs for it."""
    from moltbot.config.store import read_raw
    from moltbot.errors import MoltbotError

    if url is None and running_gateway(identity) is None:
        return None
    try:
        _, data = read_raw(identity.config_path)
    except MoltbotError:
        return None
    target = _target(
        identity,
        ClientSettings.from_raw(data, env),
        env,
        None,
        url=url,
        token=token,
        password=password,
    )
    return target if target.running or url else None


def _target(
    where: Identity | Instance,
    settings: ClientSettings,
    env: Mapping[str, str],
    fallback: tuple[str, str] | None,
    *,
    url: str | None,
    token: str | None,
    password: str | None,
) -> Target:
    runtime = running_gateway(where)
    if url:
        source = "cli --url"
    elif runtime and isinstance(runtime.get("port"), int):
        host = runtime.get("host") or "127.0.0.1"
        host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        url, source = f"ws://{_bracket(host)}:{runtime['port']}", "runtime file"
    elif settings.remote and settings.remote_url:
        url, source = settings.remote_url, "config gateway.remote.url"
    elif fallback is not None:
        url, source = fallback
    else:
        url, source = "ws://127.0.0.1:0", "none"
    token = token or envvars.get(env, "GATEWAY_TOKEN") or settings.token
    password = password or envvars.get(env, "GATEWAY_PASSWORD") or settings.password
    try:
        host, port = _host_port(url)
    except ValueError:  # not a port number, no valid host name, an unclosed [IPv6
        from moltbot.errors import UsageError

        raise UsageError(f"invalid gateway URL {url} (from {source})") from None
    return Target(url, source, host, port, token, password, runtime)


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _host_port(url: str) -> tuple[str, int]:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    default = 443 if parts.scheme == "wss" else 80
    host = parts.hostname or "127.0.0.1"
    host.encode("idna")  # UnicodeError (a ValueError) for an empty or overlong label
    return host, (parts.port or default)
