"""Where a client command finds this instance's gateway, and with which secret.

URL: ``--url`` > the runtime file of the running gateway (its real port) >
``gateway.remote.url`` when ``gateway.mode=remote`` > the instance's configured
port on loopback. Secrets: flag > MOLTBOT_/CLAWDBOT_/OPENCLAW_GATEWAY_TOKEN|PASSWORD >
config. Never another profile's port.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from moltbot.config.schema import Config
from moltbot.gateway.lock import is_locked
from moltbot.instance import env as envvars
from moltbot.instance.resolve import Instance


@dataclass(frozen=True)
class Target:
    url: str
    source: str
    host: str
    port: int
    token: str | None
    password: str | None
    runtime: dict[str, Any] | None

    @property
    def running(self) -> bool:
        return self.runtime is not None


def running_gateway(instance: Instance) -> dict[str, Any] | None:
    """The runtime file, if a live gateway holds this instance's lock."""
    try:
        data = json.loads(instance.runtime_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not is_locked(instance.lock_file):
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
) -> Target:
    runtime = running_gateway(instance)
    remote = config.gateway.mode == "remote"
    if url:
        source = "cli --url"
    elif runtime and isinstance(runtime.get("port"), int):
        host = runtime.get("host") or "127.0.0.1"
        host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        url, source = f"ws://{_bracket(host)}:{runtime['port']}", "runtime file"
    elif remote and config.gateway.remote.url:
        url, source = config.gateway.remote.url, "config gateway.remote.url"
    else:
        url, source = f"ws://127.0.0.1:{instance.port}", f"{instance.port_source} port"
    token = (
        token
        or envvars.get(env, "GATEWAY_TOKEN")
        or (config.gateway.remote.token if remote else config.gateway.auth.token)
    )
    password = (
        password
        or envvars.get(env, "GATEWAY_PASSWORD")
        or (config.gateway.remote.password if remote else config.gateway.auth.password)
    )
    host, port = _host_port(url)
    return Target(url, source, host, port, token, password, runtime)


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _host_port(url: str) -> tuple[str, int]:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    default = 443 if parts.scheme == "wss" else 80
    return (parts.hostname or "127.0.0.1"), (parts.port or default)
