"""``channels.slack`` (and ``channels.slack.accounts.<id>``).

Upstream's ``dm: {policy, allowFrom, enabled}`` block is accepted (by every
channel, see :class:`~moltbot.channels.config.AccountConfig`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from moltbot.channels.config import AccountConfig, ChannelSection, GroupConfig
from moltbot.validation import Field, field_validator

DEFAULT_API_URL = "https://slack.com/api/"


class SlashCommand(ChannelSection):
    """``slashCommand``: one catch-all slash command, ``/moltbot <message or command>``."""

    enabled: bool = Field(default=False, description="Answer the catch-all slash command.")
    name: str = Field(
        default="moltbot",
        pattern=r"^/?[a-z0-9][a-z0-9_-]{0,31}$",
        description="Its name as created in the Slack app (without the slash).",
    )
    ephemeral: bool = Field(
        default=True,
        description="Answers to slash commands are seen only by the user who sent them; "
        "false: by the whole conversation.",
    )

    @field_validator("name")
    @classmethod
    def _no_slash(cls, value: str) -> str:
        return value.lstrip("/")


class SlackAccountConfig(AccountConfig):
    bot_token: str | None = Field(
        default=None,
        description="Bot token xoxb-... (secret). "
        "SLACK_BOT_TOKEN supplies it for the default account.",
    )
    app_token: str | None = Field(
        default=None,
        description="App-level token xapp-... for "
        "Socket Mode (secret). SLACK_APP_TOKEN for the default account.",
    )
    signing_secret: str | None = Field(
        default=None, description="Signing secret for HTTP Events mode (secret)."
    )
    mode: Literal["socket", "http"] = Field(
        default="socket",
        description="socket: Socket Mode (no public URL needed); http: Events "
        "API requests to the gateway at /slack/events[/<account>].",
    )
    api_url: str = Field(default=DEFAULT_API_URL, description="Web API base URL.")
    slash_command: SlashCommand = Field(default_factory=SlashCommand)
    channels: dict[str, GroupConfig] = Field(
        default_factory=dict,
        description='Per-channel settings by id or "*"; when set, also '
        "the list of channels the bot answers in.",
    )

    @field_validator("api_url")
    @classmethod
    def _trailing_slash(cls, value: str) -> str:
        return value if value.endswith("/") else value + "/"

    def group_entries(self) -> Mapping[str, GroupConfig] | None:
        return self.channels if "channels" in self.model_fields_set else None

    def missing(self) -> list[str]:
        needed = {"botToken": self.bot_token}
        if self.mode == "socket":
            needed["appToken"] = self.app_token
        else:
            needed["signingSecret"] = self.signing_secret
        return [key for key, value in needed.items() if not value]
