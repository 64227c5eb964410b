"""Gateway credentials: where they come from and how a connect is checked."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from moltbot.config.schema import Config
from moltbot.instance import env as envvars
from moltbot.security.secrets import secret_equals


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
        return None if secret_equals(password, settings.password) else "gateway password mismatch"
    if not settings.token:
        return "gateway token not configured"
    if not token:
        return "gateway token missing"
    return None if secret_equals(token, settings.token) else "gateway token mismatch"
