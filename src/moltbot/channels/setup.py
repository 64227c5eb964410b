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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moltbot.channels import registry
from moltbot.channels.base import channel_context
from moltbot.channels.config import (
    ACCOUNT_ID_PATTERN,
    DEFAULT_ACCOUNT_ID,
    ResolvedAccount,
    account_ids,
    merged_account_data,
    resolve_account,
)
from moltbot.channels.errors import ChannelConfigError, UnknownChannel
from moltbot.channels.manifest import ChannelManifest, SetupField
from moltbot.channels.types import AccountStatus, OutboundMessage, SendResult
from moltbot.errors import NotFoundError, UsageError

log = logging.getLogger(__name__)

COMMON = {
    "name": "name",
    "dm_policy": "dmPolicy",
    "allow_from": "allowFrom",
    "group_policy": "groupPolicy",
    "group_allow_from": "groupAllowFrom",
    "enabled": "enabled",
}
"""Answers every channel takes (the keys of ``AccountConfig``)."""


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


def _answers_to_keys(manifest: ChannelManifest, answers: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in answers.items():
        if value is None or (isinstance(value, list | tuple) and not value and key != "allow_from"):
            continue
        if key == "groups":
            out[manifest.groups_key] = {str(group): {"requireMention": True} for group in value}
            continue
        field = manifest.field_for(key)
        config_key = field.key if field else COMMON.get(key)
        if config_key is None:
            raise UsageError(f"unknown setting {key!r} for channel {manifest.id}")
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
    flag_of: Callable[[SetupField], str] | None = None,
    **answers: Any,
) -> ChannelChange:
    """Add or update one channel account from ``answers``.

    Answers (all optional; existing values are kept): the channel manifest's
    setup fields (``SetupField.answer`` or a flag's name: Telegram ``token``,
    ``mode``, ``webhook_url``...; Slack ``bot_token``, ``app_token``...), and for
    every channel ``name``, ``dm_policy``, ``allow_from`` (list),
    ``group_policy``, ``group_allow_from``, ``groups`` (ids answered only when
    mentioned). ``name`` is positional-only, so the ``name=`` answer sets the
    account's display name. Synchronous (runs its own event loop for the probe):
    call it from synchronous code. ``flag_of`` names a setup field's flag in
    hints (default: the ``channels add`` flag).

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

    manifest = registry.manifest(name)
    name = manifest.id
    if not re.match(ACCOUNT_ID_PATTERN, account):
        raise UsageError(f"invalid account id {account!r}: use a-z, 0-9, '-' and '_'")
    keys = _answers_to_keys(manifest, answers)
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
    resolved = resolve_account(
        name, manifest.load_config_model(), section, account, env, manifest.env_tokens
    )
    missing = resolved.config.missing()
    if missing:
        raise ChannelConfigError(
            f"{name} account {account} is missing {', '.join(missing)}",
            hint=_missing_hint(manifest, missing, flag_of or (lambda field: field.flag)),
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

    manifest = registry.manifest(channel)
    secret = manifest.secret(key)
    if secret is None or secret.pattern is None or re.fullmatch(secret.pattern, value.strip()):
        return None
    kind = next((k for p, k in manifest.token_kinds if value.strip().startswith(p)), None)
    seems = f"; this one looks like {kind}" if kind else ""
    return (
        f"that {manifest.label} {secret.label} does not look right: "
        f"expected {secret.looks_like}{seems}"
    )


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


async def logout_account(
    instance: Any, env: Mapping[str, str], account: ResolvedAccount[Any]
) -> dict[str, Any]:
    """Log ``account`` out: the platform side first (the channel's ``logout``: Matrix
    invalidates its access token and forgets its device), then its credentials are
    removed from the config (the manifest's secret keys of that account's section;
    an environment variable cannot be cleared, ``envToken`` says so). The account
    must not be running. Returns upstream's ``{channel, accountId, cleared,
    loggedOut, envToken}``."""
    manifest = registry.manifest(account.channel)
    channel = _standalone(instance, account)
    try:
        platform = await channel.logout()
    finally:
        await channel.stop()
    cleared = await asyncio.to_thread(_clear_secrets, instance, env, manifest, account.account_id)
    env_token = account.token_source.startswith("env:")
    return {
        "channel": manifest.id,
        "accountId": account.account_id,
        "cleared": bool(cleared),
        "clearedKeys": cleared,
        "loggedOut": bool(platform.get("loggedOut")) or bool(cleared),
        "envToken": env_token,
    }


def _clear_secrets(
    instance: Any, env: Mapping[str, str], manifest: ChannelManifest, account_id: str
) -> list[str]:
    from moltbot.config.store import read_raw, update_config

    path = _section_path(manifest.id, account_id)
    keys = [secret.key for secret in manifest.secrets]
    _, data = read_raw(instance.config_path)
    section = _get(data, path)
    present = [key for key in keys if isinstance(section, dict) and key in section]
    if not present:
        return []

    def mutate(doc: dict[str, Any]) -> None:
        target = _get(doc, path)
        for key in present:
            target.pop(key, None)

    update_config(instance.config_path, mutate, env)
    return present


def _get(data: Any, path: Sequence[str]) -> Any:
    node = data
    for part in path:
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


def list_accounts(config: Any, env: Mapping[str, str]) -> list[dict[str, Any]]:
    """One row per configured account, from the config alone (no network)."""
    rows: list[dict[str, Any]] = []
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
    for name in registry.unknown_sections(channels):
        rows.append(
            {"channel": name, "accountId": None, "error": registry.unknown_section_warning(name)}
        )
    return rows


def resolve_one(
    config: Any, env: Mapping[str, str], name: str, account: str | None = None
) -> ResolvedAccount[Any]:
    channels = config.channels or {}
    name = registry.manifest(name).id
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

    return cls(channel_context(instance, account, status, ignore))


def _missing_hint(
    manifest: ChannelManifest, missing: Sequence[str], flag_of: Callable[[SetupField], str]
) -> str:
    flags = []
    for key in missing:
        field = manifest.field_for_key(key)
        flags.append(flag_of(field) if field else key)
    return "give " + ", ".join(flags)


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
    "logout_account",
    "merged_account_data",
    "probe_account",
    "remove_channel",
    "resolve_one",
    "send_direct",
    "token_problem",
]
