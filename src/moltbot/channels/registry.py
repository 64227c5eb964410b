"""The channels this build knows, imported only when used (name → "module:Class")."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from moltbot.channels.config import ResolvedAccount, account_ids, resolve_account
from moltbot.channels.errors import ChannelConfigError, UnknownChannel

CHANNELS: dict[str, str] = {
    "telegram": "moltbot.channels.telegram.channel:TelegramChannel",
    "slack": "moltbot.channels.slack.channel:SlackChannel",
}

LABELS: dict[str, str] = {"telegram": "Telegram", "slack": "Slack"}

# The environment variable that configures a channel's default account on its own.
ENV_TOKEN: dict[str, str] = {"telegram": "TELEGRAM_BOT_TOKEN", "slack": "SLACK_BOT_TOKEN"}


def channel_class(name: str) -> type[Any]:
    """The Channel class of ``name``. Raises UnknownChannel, or a clear error
    when the channel's library is not installed."""
    target = CHANNELS.get(name.lower())
    if target is None:
        known = ", ".join(sorted(CHANNELS))
        raise UnknownChannel(f"unsupported channel: {name}", hint=f"known channels: {known}")
    module_name, attr = target.split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and not exc.name.startswith("moltbot"):
            raise UnknownChannel(
                f"channel {name} needs the Python package {exc.name!r}, which is not installed",
                hint=f"pip install {exc.name}",
            ) from None
        raise
    return getattr(module, attr)  # type: ignore[no-any-return]


def configured_channels(channels: Mapping[str, Any]) -> list[str]:
    """Channel names with a config section, known ones first in registry order."""
    names = [name for name in CHANNELS if isinstance(channels.get(name), dict)]
    return names


def resolve_accounts(
    name: str, channels: Mapping[str, Any], env: Mapping[str, str]
) -> list[ResolvedAccount[Any]]:
    """Every account of channel ``name``, validated. Raises ChannelConfigError."""
    section = channels.get(name)
    if section is None:
        section = {}
    if not isinstance(section, dict):
        raise ChannelConfigError(f"channels.{name} must be an object")
    cls = channel_class(name)
    return [
        resolve_account(name, cls.config_model, section, account_id, env, cls.env_tokens)
        for account_id in account_ids(section, env_token=env_configured(name, env))
    ]


def env_configured(name: str, env: Mapping[str, str]) -> bool:
    """True when the environment supplies the channel's main token (e.g. TELEGRAM_BOT_TOKEN)."""
    variable = ENV_TOKEN.get(name)
    return bool(variable) and bool(env.get(variable or "", "").strip())


def active_channels(channels: Mapping[str, Any], env: Mapping[str, str]) -> list[str]:
    """Channels to start: those with a config section, plus those configured by env alone."""
    return [
        name
        for name in CHANNELS
        if isinstance(channels.get(name), dict) or env_configured(name, env)
    ]
