"""Config models shared by every channel, and account resolution.

A channel is configured under ``channels.<name>``. Its top-level keys
configure the ``default`` account; ``channels.<name>.accounts.<id>`` adds more
accounts, each inheriting the top-level keys it does not set itself. Tokens
from the environment (the variables the channel's manifest names) apply to
the default account only; the config wins over the environment.

Each channel defines its own account model in ``channels/<name>/config.py``
(a subclass of :class:`AccountConfig`); the gateway's ``Config`` keeps
``channels`` as an open mapping, validated here.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from moltbot.channels.errors import ChannelConfigError
from moltbot.validation import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
    to_camel,
)

DEFAULT_ACCOUNT_ID = "default"
ACCOUNT_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"

DmPolicy = Literal["pairing", "allowlist", "open", "disabled"]
GroupPolicy = Literal["open", "allowlist", "disabled"]
ReplyToMode = Literal["off", "first", "all"]


class ChannelSection(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True, alias_generator=to_camel)


def _as_strings(value: Any) -> Any:
    if isinstance(value, list):
        return [str(item).strip() for item in value if str(item).strip()]
    return value


class GroupConfig(ChannelSection):
    """One group/channel entry (``groups.<id>`` or ``"*"`` for every group)."""

    enabled: bool = True
    require_mention: bool | None = Field(
        default=None, description="Reply only when mentioned (default true)."
    )
    allow_from: list[str] | None = Field(
        default=None, description="Senders allowed to trigger the bot in this group."
    )
    system_prompt: str | None = Field(default=None, description="Extra prompt for this group.")
    topics: dict[str, GroupConfig] = Field(default_factory=dict)

    _strings = field_validator("allow_from", mode="before")(_as_strings)


class RetryConfig(ChannelSection):
    attempts: int = Field(default=3, ge=1, le=10)
    min_delay_ms: int = Field(default=500, ge=0)
    max_delay_ms: int = Field(default=30_000, ge=0)


class ChannelCommands(ChannelSection):
    native: bool | Literal["auto"] | None = Field(
        default=None,
        description="Register the chat commands as this platform's native command menu "
        "(default: commands.native).",
    )


class AccountConfig(ChannelSection):
    """Keys every channel account has."""

    enabled: bool = True
    name: str | None = None
    dm_policy: DmPolicy = Field(
        default="pairing",
        description="pairing: strangers get a code to approve; allowlist: only allowFrom; "
        "open: anyone (allowFrom must contain '*'); disabled: ignore DMs.",
    )
    allow_from: list[str] = Field(default_factory=list, description="Senders allowed to DM.")
    group_policy: GroupPolicy = Field(
        default="allowlist",
        description="open: anyone in an allowed group may trigger the bot; allowlist: only "
        "groupAllowFrom (default: allowFrom + paired senders); disabled: ignore groups.",
    )
    group_allow_from: list[str] | None = None
    text_chunk_limit: int | None = Field(default=None, ge=100)
    reply_to_mode: ReplyToMode | None = None
    history_limit: int = Field(default=50, ge=0, le=500)
    media_max_mb: float = Field(
        default=20.0, gt=0, le=2000, description="Attachments larger than this are refused."
    )
    allow_bots: bool = False
    retry: RetryConfig = Field(default_factory=RetryConfig)
    commands: ChannelCommands = Field(default_factory=ChannelCommands)

    _strings = field_validator("allow_from", "group_allow_from", mode="before")(_as_strings)

    @model_validator(mode="before")
    @classmethod
    def _dm_block(cls, data: Any) -> Any:
        """Upstream's ``dm: {policy, allowFrom, enabled}`` block (Slack, Discord, Matrix)
        is an alias of ``dmPolicy`` / ``allowFrom`` (``enabled: false`` = disabled)."""
        if not isinstance(data, dict) or not isinstance(data.get("dm"), dict):
            return data
        dm = data["dm"]
        merged = dict(data)
        if dm.get("enabled") is False:
            merged.setdefault("dmPolicy", "disabled")
        if dm.get("policy") and "dmPolicy" not in data:
            merged["dmPolicy"] = dm["policy"]
        if dm.get("allowFrom") is not None and "allowFrom" not in data:
            merged["allowFrom"] = dm["allowFrom"]
        return merged

    @model_validator(mode="after")
    def _open_needs_star(self) -> AccountConfig:
        if self.dm_policy == "open" and "*" not in self.allow_from:
            raise ValueError('dmPolicy "open" requires allowFrom to contain "*"')
        return self

    def group_entries(self) -> Mapping[str, GroupConfig] | None:
        """The per-group map (Telegram ``groups``, Slack ``channels``); None when not set."""
        return None

    def missing(self) -> list[str]:
        """Config keys (camelCase) still needed before this account can start."""
        return []


A = TypeVar("A", bound=AccountConfig)


@dataclass(frozen=True)
class ResolvedAccount(Generic[A]):
    """One account of a channel with the inherited keys and env tokens applied."""

    channel: str
    account_id: str
    config: A
    token_source: str  # "config", "env:<VAR>" or "none"

    @property
    def enabled(self) -> bool:
        return self.config.enabled


def account_ids(
    section: Mapping[str, Any], *, env_token: bool = False, credential_keys: Collection[str] = ()
) -> list[str]:
    """Named accounts, plus ``default`` unless only named accounts are configured
    (``default`` exists when there are no named accounts, or the top level sets
    one of ``credential_keys``, or the environment — ``env_token`` — supplies a token)."""
    accounts = section.get("accounts") or {}
    ids = [str(key) for key in accounts] if isinstance(accounts, dict) else []
    top_level = {key for key in section if key not in ("accounts", "enabled")}
    if DEFAULT_ACCOUNT_ID not in ids and (not ids or env_token or top_level & set(credential_keys)):
        ids.insert(0, DEFAULT_ACCOUNT_ID)
    return ids


def merged_account_data(section: Mapping[str, Any], account_id: str) -> dict[str, Any]:
    base = {key: value for key, value in section.items() if key != "accounts"}
    accounts = section.get("accounts") or {}
    own = accounts.get(account_id) if isinstance(accounts, dict) else None
    if isinstance(own, dict):
        base.update(own)
    return base


def resolve_account(
    channel: str,
    model: type[A],
    section: Mapping[str, Any],
    account_id: str,
    env: Mapping[str, str],
    env_tokens: Mapping[str, str],
) -> ResolvedAccount[A]:
    """Validate one account. ``env_tokens`` maps a config key to the environment
    variable that supplies it for the default account (``botToken`` → ``TELEGRAM_BOT_TOKEN``).

    Raises :class:`ChannelConfigError` naming the key path.
    """
    data = merged_account_data(section, account_id)
    sources = []
    for key, variable in env_tokens.items():
        if data.get(key):
            sources.append("config")
        elif account_id == DEFAULT_ACCOUNT_ID and env.get(variable, "").strip():
            data[key] = env[variable].strip()
            sources.append(f"env:{variable}")
        else:
            sources.append("none")
    source = sources[0] if sources else "config"
    try:
        config = model.model_validate(data)
    except ValidationError as exc:
        raise ChannelConfigError(
            describe(exc, channel, account_id, section),
            hint="fix the file, then run `moltbot channels status`",
        ) from None
    return ResolvedAccount(channel, account_id, config, source)


def describe(
    exc: ValidationError, channel: str, account_id: str, section: Mapping[str, Any]
) -> str:
    owned = (section.get("accounts") or {}).get(account_id) or {}
    lines = []
    for error in exc.errors():
        loc = [str(part) for part in error["loc"]]
        in_account = bool(loc) and loc[0] in owned
        prefix = f"channels.{channel}" + (f".accounts.{account_id}" if in_account else "")
        where = ".".join([prefix, *loc]) if loc else prefix
        lines.append(f"  - {where}: {error['msg']}")
    return f"invalid {channel} config:\n" + "\n".join(dict.fromkeys(lines))
