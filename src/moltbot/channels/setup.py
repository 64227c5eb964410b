"""Configuring channels from the CLI and the onboarding wizard.

:func:`add_channel` is the one entry point both ``moltbot channels add`` and
``moltbot onboard`` use: it validates the answers, optionally checks the
credentials against the platform, then writes ``channels.<name>`` (or
``channels.<name>.accounts.<id>``) with the config store's atomic, locked
write. A running gateway picks the change up through its config reload.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moltbot.channels import registry
from moltbot.channels.base import ChannelContext
from moltbot.channels.config import (
    ACCOUNT_ID_PATTERN,
    DEFAULT_ACCOUNT_ID,
    ResolvedAccount,
    account_ids,
    merged_account_data,
    resolve_account,
)
from moltbot.channels.errors import ChannelConfigError, UnknownChannel
from moltbot.channels.types import AccountStatus, OutboundMessage, SendResult
from moltbot.errors import NotFoundError, UsageError

log = logging.getLogger(__name__)

# answer name -> config key, per channel (answers not listed are refused)
ANSWERS: dict[str, dict[str, str]] = {
    "telegram": {
        "token": "botToken",
        "bot_token": "botToken",
        "token_file": "tokenFile",
        "api_root": "apiRoot",
        "mode": "mode",
        "webhook_url": "webhookUrl",
        "webhook_secret": "webhookSecret",
    },
    "slack": {
        "bot_token": "botToken",
        "token": "botToken",
        "app_token": "appToken",
        "signing_secret": "signingSecret",
        "mode": "mode",
        "api_url": "apiUrl",
    },
}
COMMON = {
    "name": "name",
    "dm_policy": "dmPolicy",
    "allow_from": "allowFrom",
    "group_policy": "groupPolicy",
    "group_allow_from": "groupAllowFrom",
    "enabled": "enabled",
}
GROUPS_KEY = {"telegram": "groups", "slack": "channels"}
# config key -> (pattern, label, what it looks like); checked for the values a call sets
TOKEN_FORMATS: dict[str, dict[str, tuple[str, str, str]]] = {
    "telegram": {
        "botToken": (
            r"\d+:[A-Za-z0-9_-]+",
            "Telegram bot token",
            "<digits>:<letters> from @BotFather",
        ),
    },
    "slack": {
        "botToken": (r"xoxb-\S+", "Slack bot token", "xoxb-... (Bot User OAuth Token)"),
        "appToken": (r"xapp-\S+", "Slack app token", "xapp-... (App-Level Token, Socket Mode)"),
    },
}
_SLACK_KINDS = {"xoxb-": "a bot token", "xapp-": "an app token", "xoxp-": "a user token"}


@dataclass(frozen=True)
class ChannelChange:
    channel: str
    account_id: str
    action: str  # added | updated | removed | disabled
    config_path: Path
    probe: dict[str, Any] | None = None
    warnings: tuple[str, ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "accountId": self.account_id,
            "action": self.action,
            "configPath": str(self.config_path),
            "probe": self.probe,
            "warnings": list(self.warnings),
        }


def _section_path(name: str, account_id: str) -> list[str]:
    return (
        ["channels", name]
        if account_id == DEFAULT_ACCOUNT_ID
        else ["channels", name, "accounts", account_id]
    )


def _answers_to_keys(name: str, answers: Mapping[str, Any]) -> dict[str, Any]:
    table = {**ANSWERS.get(name, {}), **COMMON}
    out: dict[str, Any] = {}
    for key, value in answers.items():
        if value is None or (isinstance(value, list | tuple) and not value and key != "allow_from"):
            continue
        if key == "groups":
            out[GROUPS_KEY[name]] = {str(group): {"requireMention": True} for group in value}
            continue
        config_key = table.get(key)
        if config_key is None:
            raise UsageError(f"unknown setting {key!r} for channel {name}")
        out[config_key] = list(value) if isinstance(value, list | tuple) else value
    if out.get("dmPolicy") == "open":
        allow = [str(x) for x in out.get("allowFrom", [])]
        out["allowFrom"] = allow if "*" in allow else [*allow, "*"]
    return out


def add_channel(
    instance: Any,
    env: Mapping[str, str],
    name: str,
    /,
    *,
    account: str = DEFAULT_ACCOUNT_ID,
    probe: bool = True,
    probe_timeout: float = 15.0,
    dry_run: bool = False,
    **answers: Any,
) -> ChannelChange:
    """Add or update one channel account from ``answers``.

    Answers (all optional; existing values are kept): Telegram ``token``,
    ``token_file``, ``api_root``, ``mode`` (polling|webhook), ``webhook_url``,
    ``webhook_secret``; Slack ``bot_token``, ``app_token``, ``signing_secret``,
    ``mode`` (socket|http), ``api_url``; both ``name``, ``dm_policy``,
    ``allow_from`` (list), ``group_policy``, ``group_allow_from``, ``groups``
    (ids answered only when mentioned). ``name`` is positional-only, so the
    ``name=`` answer sets the account's display name. Synchronous (runs its own
    event loop for the probe): call it from synchronous code.

    With ``probe`` the credentials are checked against the platform first
    (getMe / auth.test); a refused token raises
    :class:`~moltbot.channels.errors.ChannelAuthFailed` and nothing is written.
    Raises :class:`ChannelConfigError` when the result would be invalid, and
    :class:`UsageError` for a token that does not look like one (see
    :func:`token_problem`). ``${VAR}`` answers are stored as written and checked
    (and probed) with ``env``'s value. ``dry_run`` checks and probes, writes nothing.
    """
    import re

    from moltbot.config import keypath
    from moltbot.config.envsubst import substitute
    from moltbot.config.store import read_raw, update_config

    name = name.lower()
    cls = registry.channel_class(name)
    if not re.match(ACCOUNT_ID_PATTERN, account):
        raise UsageError(f"invalid account id {account!r}: use a-z, 0-9, '-' and '_'")
    keys = _answers_to_keys(name, answers)
    path = _section_path(name, account)
    source = str(instance.config_path)
    for key, value in keys.items():
        if isinstance(value, str):
            problem = token_problem(name, key, substitute(value, env, source, (*path, key)))
            if problem:
                raise UsageError(problem)
    _, data = read_raw(instance.config_path)
    current = keypath.get(data, path) if _exists(data, path) else None
    action = "updated" if isinstance(current, dict) else "added"

    def mutate(doc: dict[str, Any]) -> None:
        section = doc
        for part in path:
            nxt = section.get(part)
            if not isinstance(nxt, dict):
                nxt = section[part] = {}
            section = nxt
        section.update(keys)

    preview = _deepcopy(data)
    mutate(preview)
    section = substitute(preview["channels"][name], env, source, ("channels", name))
    resolved = resolve_account(name, cls.config_model, section, account, env, cls.env_tokens)
    missing = resolved.config.missing()
    if missing:
        raise ChannelConfigError(
            f"{name} account {account} is missing {', '.join(missing)}",
            hint=_missing_hint(name, missing),
        )
    result = None
    if probe:
        result = asyncio.run(_probe(instance, resolved, probe_timeout))
    if not dry_run:
        update_config(instance.config_path, mutate, env)
    return ChannelChange(name, account, action, instance.config_path, result)


def token_problem(channel: str, key: str, value: str) -> str | None:
    """Why ``value`` cannot be ``channel``'s ``key`` (a config key such as ``botToken``),
    or ``None``. The message never quotes the value."""
    import re

    known = TOKEN_FORMATS.get(channel, {}).get(key)
    if known is None or re.fullmatch(known[0], value.strip()):
        return None
    _, label, looks = known
    kind = next((k for p, k in _SLACK_KINDS.items() if value.strip().startswith(p)), None)
    seems = f"; this one looks like {kind}" if channel == "slack" and kind else ""
    return f"that {label} does not look right: expected {looks}{seems}"


def remove_channel(
    instance: Any,
    env: Mapping[str, str],
    name: str,
    *,
    account: str | None = None,
    disable: bool = False,
) -> ChannelChange:
    """Remove (or with ``disable`` only switch off) a channel or one of its accounts.

    Pairing approvals under the credentials dir are kept. Raises NotFoundError.
    """
    from moltbot.config.store import read_raw, update_config

    name = name.lower()
    _, data = read_raw(instance.config_path)
    section = (data.get("channels") or {}).get(name)
    if not isinstance(section, dict):
        raise NotFoundError(f"channel {name} is not configured")
    target = account or DEFAULT_ACCOUNT_ID
    if account and account != DEFAULT_ACCOUNT_ID and account not in (section.get("accounts") or {}):
        raise NotFoundError(f"{name} has no account {account!r}")

    def mutate(doc: dict[str, Any]) -> None:
        channel = doc["channels"][name]
        if account and account != DEFAULT_ACCOUNT_ID:
            if disable:
                channel["accounts"][account]["enabled"] = False
            else:
                del channel["accounts"][account]
                if not channel["accounts"]:
                    del channel["accounts"]
        elif disable:
            channel["enabled"] = False
        else:
            del doc["channels"][name]

    update_config(instance.config_path, mutate, env)
    return ChannelChange(name, target, "disabled" if disable else "removed", instance.config_path)


def list_accounts(config: Any, env: Mapping[str, str]) -> list[dict[str, Any]]:
    """One row per configured account, from the config alone (no network)."""
    rows = []
    channels = config.channels or {}
    for name in registry.active_channels(channels, env):
        section = channels.get(name) if isinstance(channels.get(name), dict) else {}
        try:
            accounts = registry.resolve_accounts(name, channels, env)
        except (ChannelConfigError, UnknownChannel) as exc:
            rows.append({"channel": name, "accountId": None, "error": exc.message})
            continue
        for resolved in accounts:
            cfg = resolved.config
            rows.append(
                {
                    "channel": name,
                    "accountId": resolved.account_id,
                    "name": cfg.name,
                    "enabled": cfg.enabled and section.get("enabled") is not False,
                    "configured": not cfg.missing(),
                    "missing": cfg.missing(),
                    "mode": getattr(cfg, "mode", None),
                    "tokenSource": resolved.token_source,
                    "dmPolicy": cfg.dm_policy,
                    "groupPolicy": cfg.group_policy,
                    "allowFrom": list(cfg.allow_from),
                }
            )
    return rows


def resolve_one(
    config: Any, env: Mapping[str, str], name: str, account: str | None = None
) -> ResolvedAccount[Any]:
    channels = config.channels or {}
    name = name.lower()
    registry.channel_class(name)
    if name not in registry.active_channels(channels, env):
        raise UnknownChannel(
            f"channel {name} is not configured", hint=f"moltbot channels add {name}"
        )
    accounts = {a.account_id: a for a in registry.resolve_accounts(name, channels, env)}
    wanted = account or (
        DEFAULT_ACCOUNT_ID if DEFAULT_ACCOUNT_ID in accounts else next(iter(accounts))
    )
    if wanted not in accounts:
        raise UnknownChannel(f"{name} has no account {wanted!r}")
    return accounts[wanted]


async def _probe(instance: Any, account: ResolvedAccount[Any], timeout: float) -> dict[str, Any]:
    channel = _standalone(instance, account)
    try:
        await asyncio.wait_for(channel.start(), timeout)
        return await asyncio.wait_for(channel.probe(), timeout)
    except TimeoutError:
        from moltbot.channels.errors import ChannelNotReady

        raise ChannelNotReady(f"{account.channel} did not answer within {timeout:.0f}s") from None
    finally:
        await channel.stop()


def probe_account(
    instance: Any, account: ResolvedAccount[Any], timeout: float = 15.0
) -> dict[str, Any]:
    """Check one account's credentials now, without a gateway."""
    return asyncio.run(_probe(instance, account, timeout))


def send_direct(
    instance: Any,
    account: ResolvedAccount[Any],
    target: str,
    message: OutboundMessage,
    timeout: float = 30.0,
) -> SendResult:
    """Send without a gateway: open the account's client, send, close."""

    async def run() -> SendResult:
        channel = _standalone(instance, account)
        try:
            await asyncio.wait_for(channel.start(), timeout)
            return await asyncio.wait_for(channel.send(target, message), timeout)
        finally:
            await channel.stop()

    return asyncio.run(run())


def _standalone(instance: Any, account: ResolvedAccount[Any]) -> Any:
    cls = registry.channel_class(account.channel)
    status = AccountStatus(channel=account.channel, account_id=account.account_id)

    async def ignore(message: Any) -> None:
        return None

    logger = logging.LoggerAdapter(logging.getLogger(f"moltbot.channels.{account.channel}"), {})
    context = ChannelContext(
        account=account,
        status=status,
        on_inbound=ignore,
        state_dir=instance.state_dir / account.channel,
        logger=logger,
    )
    return cls(context)


def _missing_hint(name: str, missing: Sequence[str]) -> str:
    flags = {
        "botToken": "--token" if name == "telegram" else "--bot-token",
        "appToken": "--app-token",
        "signingSecret": "--signing-secret",
        "webhookUrl": "--webhook-url",
        "webhookSecret": "--webhook-secret",
    }
    return "give " + ", ".join(flags.get(key, key) for key in missing)


def _exists(data: Mapping[str, Any], path: Sequence[str]) -> bool:
    node: Any = data
    for part in path:
        if not isinstance(node, Mapping) or part not in node:
            return False
        node = node[part]
    return True


def _deepcopy(data: Any) -> Any:
    import json

    return json.loads(json.dumps(data))


__all__ = [
    "ChannelChange",
    "account_ids",
    "add_channel",
    "list_accounts",
    "merged_account_data",
    "probe_account",
    "remove_channel",
    "resolve_one",
    "send_direct",
    "token_problem",
]
