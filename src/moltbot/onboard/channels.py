"""Channels in onboarding: flags, checks, writes and summary rows, all generated
from the channel manifests (:mod:`moltbot.channels.manifest`).

A manifest's setup fields marked ``onboard`` become ``--<channel>-<flag>``
options (a secret also ``--<channel>-<flag>-env VAR``, which stores
``"${VAR}"``); fields with a ``prompt`` are the wizard's questions. Channels are
written exactly as ``moltbot channels add`` writes them
(:func:`moltbot.channels.setup.add_channel`), after the same checks.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from moltbot.channels import registry
from moltbot.channels.manifest import ChannelManifest, SetupField
from moltbot.errors import MoltbotError, UsageError
from moltbot.onboard.plan import ChannelPlan, Flags, Plan, Proposal

if TYPE_CHECKING:
    from moltbot.instance.resolve import Instance

VAR_REF = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)\}")


@dataclass(frozen=True)
class ChannelFlag:
    """One ``onboard`` option generated from a manifest's setup field."""

    manifest: ChannelManifest
    field: SetupField

    @property
    def flag(self) -> str:
        return self.field.onboard_flag(self.manifest.id)

    @property
    def param(self) -> str:
        return self.field.onboard_param(self.manifest.id)

    @property
    def env_param(self) -> str:
        return self.param + "_env"

    @property
    def secret(self) -> bool:
        return self.manifest.secret(self.field.key) is not None

    @property
    def help(self) -> str:
        text = self.field.help
        label = self.manifest.label
        return text if text.startswith(label) else f"{label}: {text}"


def channel_flags() -> list[ChannelFlag]:
    """Every generated option, channel by channel in registry order."""
    return [
        ChannelFlag(manifest, field)
        for manifest in registry.manifests().values()
        for field in manifest.setup
        if field.onboard
    ]


def onboard_flag_of(manifest: ChannelManifest) -> Callable[[SetupField], str]:
    """How onboard's hints name a field: its onboard option when it has one."""
    return lambda field: field.onboard_flag(manifest.id) if field.onboard else field.flag


def configured_channels(snapshot: Any, env: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """Known channels with a config section: name -> the row of its default (else
    first) account from ``list_accounts``."""
    from moltbot.channels.setup import list_accounts

    sections = snapshot.data.get("channels") if isinstance(snapshot.data, dict) else None
    present = [n for n in registry.names() if isinstance((sections or {}).get(n), dict)]
    rows: dict[str, dict[str, Any]] = {}
    for row in list_accounts(snapshot.config, env):
        name = row["channel"]
        if name in present and (name not in rows or row.get("accountId") == "default"):
            rows[name] = row
    return {name: rows.get(name, {"channel": name, "accountId": None}) for name in present}


# from flags ---------------------------------------------------------------------


def secret_from_flag(
    value: str | None, var: str | None, flag: str, env: Mapping[str, str]
) -> str | None:
    """A secret given as ``flag`` (the value) or ``flag-env`` (stored as ``${VAR}``)."""
    if value and var:
        raise UsageError(f"give {flag} or {flag}-env, not both")
    if var is None:
        return value
    if not VAR_REF.fullmatch("${" + var + "}"):
        raise UsageError(f"{flag}-env {var}: use an upper-case variable name (A-Z, 0-9, _)")
    if not env.get(var):
        raise UsageError(
            f"{flag}-env {var}: that variable is not set", hint=f"export {var}=... first"
        )
    return "${" + var + "}"


def _infer_mode(manifest: ChannelManifest, answers: dict[str, Any]) -> None:
    """Set the connection mode the given fields imply, or refuse fields of two modes."""
    mode_answer = manifest.mode_answer
    if not mode_answer or answers.get(mode_answer):
        return
    fields = [f for name in answers if (f := manifest.field_for(name)) and f.mode]
    modes = sorted({f.mode for f in fields if f.mode})
    if len(modes) > 1:
        mode_field = manifest.field_for(mode_answer)
        choose = (
            f" (or choose with {mode_field.onboard_flag(manifest.id)} {'|'.join(modes)})"
            if mode_field and mode_field.onboard
            else ""
        )
        uses = ", ".join(f"{f.onboard_flag(manifest.id)} is for {f.mode} mode" for f in fields)
        raise UsageError(f"{uses}: give one{choose}")
    if modes:
        answers[mode_answer] = modes[0]


def allow_from_answer(
    policy: str | None, given: list[str] | None, current: list[Any]
) -> list[str] | None:
    """allowFrom to write: the given ids, else the current ones without the "*" that
    only ``open`` needs (leaving open must not leave the bot open), else unchanged."""
    if given is not None:
        return given
    if policy and policy != "open" and "*" in current:
        return [str(a) for a in current if a != "*"]
    return None


def channels_from_flags(
    env: Mapping[str, str], proposal: Proposal, flags: Flags
) -> tuple[list[ChannelPlan], list[str]]:
    """The channel flags as add_channel answers (no flags: no channel changes), and
    the channels to remove.

    ``--dm-policy``/``--allow-from`` apply to the channels the flags set up,
    else to every configured channel.
    """
    values = flags.channel_values
    by_channel: dict[str, dict[str, Any]] = {}
    for option in channel_flags():
        value = values.get(option.param)
        if option.secret:
            value = secret_from_flag(value, values.get(option.env_param), option.flag, env)
        if value:
            by_channel.setdefault(option.manifest.id, {})[option.field.answer] = value
    plans = []
    for name, answers in by_channel.items():
        _infer_mode(registry.manifest(name), answers)
        plans.append(ChannelPlan(name, answers))
    removals = list(dict.fromkeys(flags.remove_channels))
    for name in removals:
        if name in by_channel:
            raise UsageError(f"--remove-channel {name} contradicts the {name} flags")
        if name not in proposal.channels:
            raise UsageError(f"--remove-channel {name}: {name} is not configured")
    if flags.dm_policy or flags.allow_from:
        if not plans:
            plans = [ChannelPlan(n, {}) for n in proposal.channels if n not in removals]
        if not plans:
            examples = [
                option.flag for option in channel_flags() if option.secret and not option.field.mode
            ]
            raise UsageError(
                f"--dm-policy/--allow-from need a channel: {', '.join(examples)} "
                "or an already configured channel"
            )
        for plan in plans:
            current = (proposal.channels.get(plan.name) or {}).get("allowFrom") or []
            plan.answers["dm_policy"] = flags.dm_policy
            plan.answers["allow_from"] = allow_from_answer(
                flags.dm_policy, list(flags.allow_from) or None, current
            )
    return plans, removals


# checks -------------------------------------------------------------------------


def precheck(instance: Instance, env: Mapping[str, str], plan: ChannelPlan, probe: bool) -> None:
    """add_channel's checks without writing, with the credential probe when ``probe``
    and the answers set a credential; hints name onboard's flags."""
    from moltbot.channels.setup import add_channel

    manifest = registry.manifest(plan.name)
    secrets = [f.answer for f in manifest.setup if manifest.secret(f.key)]
    probe = probe and any(plan.answers.get(answer) for answer in secrets)
    change = add_channel(
        instance,
        env,
        plan.name,
        probe=probe,
        dry_run=True,
        flag_of=onboard_flag_of(manifest),
        **plan.answers,
    )
    plan.checked, plan.probe = True, change.probe


def channel_check(
    instance: Instance, env: Mapping[str, str], probe: bool
) -> Callable[[ChannelPlan], str | None]:
    """Vet a channel's answers with add_channel(dry_run=True): why not, or None."""

    def check(plan: ChannelPlan) -> str | None:
        try:
            precheck(instance, env, plan, probe)
        except MoltbotError as exc:
            return exc.message + (f" ({exc.hint})" if exc.hint else "")
        return None

    return check


def secret_problem(
    channel: str, key: str, env: Mapping[str, str], optional: bool
) -> Callable[[str], bool | str]:
    """A prompt validator: a token (format checked) or ``${VAR}`` naming a set variable."""
    from moltbot.channels.setup import token_problem

    def ok(text: str) -> bool | str:
        value = text.strip()
        if not value:
            return True if optional else "required (or ${VAR} to read it from the environment)"
        ref = VAR_REF.fullmatch(value)
        if ref:
            if not env.get(ref.group(1)):
                return f"{ref.group(1)} is not set in this environment"
            value = env[ref.group(1)]
        return token_problem(channel, key, value) or True

    return ok


# applying -----------------------------------------------------------------------


def apply_channels(instance: Instance, env: Mapping[str, str], plan: Plan) -> list[dict[str, Any]]:
    """Write the channel answers (checked before anything was written); the summary rows."""
    from moltbot.channels.setup import add_channel, remove_channel
    from moltbot.config.store import read_config

    actions: dict[str, str] = {}
    for name in plan.remove_channels:
        actions[name] = remove_channel(instance, env, name).action
    for channel in plan.channels:
        actions[channel.name] = add_channel(
            instance, env, channel.name, probe=False, **channel.answers
        ).action
    snapshot = read_config(instance.config_path, env)
    probes = {channel.name: channel.probe for channel in plan.channels}
    rows: list[dict[str, Any]] = [
        {"channel": name, "accountId": None, "action": "removed"} for name in plan.remove_channels
    ]
    for name, row in configured_channels(snapshot, env).items():
        rows.append(
            summary_row(name, row, snapshot.data, actions.get(name, "kept"), probes.get(name))
        )
    return rows


def summary_row(
    name: str, row: dict[str, Any], data: dict[str, Any], action: str, probe: dict[str, Any] | None
) -> dict[str, Any]:
    """One configured channel for the summary: secrets shown as ``${VAR}`` or "(hidden)"."""
    from moltbot.channels.setup import merged_account_data

    manifest = registry.manifest(name)
    section = merged_account_data(data["channels"][name], row.get("accountId") or "default")
    secrets = {}
    for secret in manifest.secrets:
        value = section.get(secret.key)
        if isinstance(value, str) and value:
            secrets[secret.key] = value if VAR_REF.fullmatch(value.strip()) else "(hidden)"
    bot = ((probe or {}).get("bot") or {}).get("username")
    return {
        "channel": name,
        "accountId": row.get("accountId"),
        "action": action,
        "mode": row.get("mode"),
        "dmPolicy": row.get("dmPolicy"),
        "allowFrom": row.get("allowFrom") or [],
        "tokenSource": row.get("tokenSource"),
        "secrets": secrets,
        "bot": bot,
        "error": row.get("error"),
    }


def secret_label(channel: str, key: str) -> str:
    secret = registry.manifest(channel).secret(key)
    return secret.label if secret else key


def channel_warnings(rows: list[dict[str, Any]], service_installed: bool, cli: str) -> list[str]:
    """What the user should know about the channels onboard leaves configured."""
    warnings = []
    for row in rows:
        refs = [v for v in (row.get("secrets") or {}).values() if v.startswith("${")]
        if refs and service_installed:
            warnings.append(
                f"{row['channel']} reads {', '.join(refs)} from the environment, which the user "
                f"service does not inherit: its gateway cannot load the config; run "
                f"`{cli} gateway` where the variable is set, or store the token itself"
            )
        if row.get("dmPolicy") == "allowlist" and not row.get("allowFrom"):
            warnings.append(
                f"{row['channel']}: dm policy allowlist with no allowFrom: only "
                f"senders approved earlier may DM the bot (--allow-from ID)"
            )
    return warnings
