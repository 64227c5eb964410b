"""Gateway credentials: where they come from and how a connect is checked."""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass

from moltbot.config.schema import Config
from moltbot.instance import env as envvars

LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})
PROXY_HEADERS = ("forwarded", "x-forwarded-for", "x-real-ip", "x-forwarded-host")


@dataclass(frozen=True)
class AuthSettings:
    mode: str  # "token" | "password"
    token: str | None
    password: str | None

    @property
    def configured(self) -> bool:
        return bool(self.token if self.mode == "token" else self.password)


def resolve_auth(
    config: Config, env: Mapping[str, str], *, token: str | None = None, password: str | None = None
) -> AuthSettings:
    """Flag > environment (MOLTBOT_/CLAWDBOT_/OPENCLAW_GATEWAY_TOKEN) > config."""
    token = token or envvars.get(env, "GATEWAY_TOKEN") or config.gateway.auth.token
    password = password or envvars.get(env, "GATEWAY_PASSWORD") or config.gateway.auth.password
    mode = config.gateway.auth.mode or ("password" if password and not token else "token")
    return AuthSettings(mode, token or None, password or None)


def check_shared(settings: AuthSettings, token: str | None, password: str | None) -> str | None:
    """``None`` when the presented secret matches, else the reason."""
    if settings.mode == "password":
        if not settings.password:
            return "gateway password not configured"
        if not password:
            return "gateway password missing"
        return (
            None
            if hmac.compare_digest(settings.password, password)
            else "gateway password mismatch"
        )
    if not settings.token:
        return "gateway token not configured"
    if not token:
        return "gateway token missing"
    return None if hmac.compare_digest(settings.token, token) else "gateway token mismatch"


def is_loopback(address: str | None) -> bool:
    if not address:
        return False
    try:
        return ipaddress.ip_address(address.split("%")[0]).is_loopback
    except ValueError:
        return False


def is_local_request(remote: str | None, headers: Mapping[str, str]) -> bool:
    """Loopback peer, a local Host, and no proxy headers (DNS rebinding, proxies).

    ``headers`` must look names up case-insensitively (aiohttp's request headers do).
    """
    if not is_loopback(remote):
        return False
    if any(h in headers for h in PROXY_HEADERS):
        return False
    host = headers.get("Host", "")
    hostname = host.rsplit(":", 1)[0] if not host.startswith("[") else host.split("]")[0] + "]"
    return hostname.lower() in LOCAL_HOSTS
