"""``channels.discord`` (and ``channels.discord.accounts.<id>``).

Guild rules follow upstream: ``guilds.<guildId|"*">`` with ``requireMention``,
``allowFrom``, ``systemPrompt`` and an optional ``channels.<channelId>`` map (when
present, only those channels of the guild are answered). A thread inherits its
parent channel's entry unless it has its own.
"""

from __future__ import annotations

from collections.abc import Mapping

from moltbot.channels.config import AccountConfig, GroupConfig
from moltbot.validation import Field, field_validator

DEFAULT_API_ROOT = "https://discord.com/api"


class DiscordGuildConfig(GroupConfig):
    channels: dict[str, GroupConfig] = Field(
        default_factory=dict,
        description="Per-channel settings by channel id; when set, only these channels.",
    )


class DiscordAccountConfig(AccountConfig):
    token: str | None = Field(
        default=None,
        description="Bot token (secret). DISCORD_BOT_TOKEN supplies it for the default account.",
    )
    api_root: str = Field(
        default=DEFAULT_API_ROOT,
        description="REST API root (the gateway URL is asked from it: GET /gateway/bot).",
    )
    guilds: dict[str, DiscordGuildConfig] = Field(
        default_factory=dict,
        description='Per-guild settings by guild id or "*"; when set, also the guilds the bot '
        "answers in.",
    )
    history_limit: int = Field(default=20, ge=0, le=500)
    media_max_mb: float = Field(default=8.0, gt=0, le=500)
    max_lines_per_message: int = Field(
        default=17, ge=3, le=500, description="Tall replies are split after this many lines."
    )
    ack_reaction: str | None = Field(
        default="👀",
        description="Reaction added to a message the agent takes on (empty: none).",
    )

    @field_validator("api_root")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("guilds", mode="before")
    @classmethod
    def _guild_keys(cls, value: object) -> object:
        if isinstance(value, dict):
            return {str(key): item for key, item in value.items()}
        return value

    def group_entries(self) -> Mapping[str, GroupConfig] | None:
        """Guild rules flattened for the shared access rules: a listed channel under its
        id (guild settings with the channel's own laid over), a guild without a channel
        list under ``guild:<id>``, and ``"*"``."""
        if "guilds" not in self.model_fields_set:
            return None
        flat: dict[str, GroupConfig] = {}
        for guild_id, guild in self.guilds.items():
            base = guild.model_dump(exclude={"channels", "topics"}, exclude_unset=True)
            if guild.channels:
                for channel_id, channel in guild.channels.items():
                    own = channel.model_dump(exclude={"topics"}, exclude_unset=True)
                    flat[str(channel_id)] = GroupConfig.model_validate({**base, **own})
            elif guild_id == "*":
                flat["*"] = GroupConfig.model_validate(base)
            else:
                flat[f"guild:{guild_id}"] = GroupConfig.model_validate(base)
        return flat

    def missing(self) -> list[str]:
        return [] if self.token else ["token"]
