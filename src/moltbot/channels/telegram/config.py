"""``channels.telegram`` (and ``channels.telegram.accounts.<id>``)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from moltbot.channels.config import AccountConfig, GroupConfig
from moltbot.validation import Field, field_validator

DEFAULT_API_ROOT = "https://api.telegram.org"


class TelegramAccountConfig(AccountConfig):
    bot_token: str | None = Field(
        default=None,
        description="Bot token from @BotFather (secret). "
        "TELEGRAM_BOT_TOKEN supplies it for the default account.",
    )
    token_file: str | None = Field(default=None, description="Read the bot token from this file.")
    api_root: str = Field(
        default=DEFAULT_API_ROOT,
        description="Bot API server root (a local Bot API server, a test fake).",
    )
    mode: Literal["polling", "webhook"] = Field(
        default="polling",
        description="polling: getUpdates long polling; webhook: Telegram "
        "POSTs updates to webhookUrl, served by the gateway at /telegram-webhook[/<account>].",
    )
    webhook_url: str | None = Field(default=None, description="Public HTTPS URL Telegram calls.")
    webhook_secret: str | None = Field(
        default=None, description="Secret Telegram sends in X-Telegram-Bot-Api-Secret-Token."
    )
    poll_timeout_seconds: int = Field(default=30, ge=0, le=50)
    stream_mode: Literal["off", "partial", "block"] = Field(
        default="off",
        description="Show replies while they are written: one message, edited as the text "
        'grows ("partial", at most once a second) or as each paragraph ends ("block").',
    )
    groups: dict[str, GroupConfig] = Field(
        default_factory=dict,
        description='Per-group settings by chat id or "*"; when set, '
        "also the list of groups the bot answers in.",
    )

    @field_validator("api_root")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("groups", mode="before")
    @classmethod
    def _group_keys(cls, value: object) -> object:
        if isinstance(value, dict):
            return {str(key): item for key, item in value.items()}
        return value

    def token(self) -> str | None:
        if self.bot_token:
            return self.bot_token.strip()
        if self.token_file:
            try:
                text = Path(self.token_file).expanduser().read_text(encoding="utf-8")
                return text.strip() or None
            except OSError:
                return None
        return None

    def group_entries(self) -> Mapping[str, GroupConfig] | None:
        return self.groups if "groups" in self.model_fields_set else None

    def missing(self) -> list[str]:
        missing = []
        if not self.bot_token and not self.token_file:
            missing.append("botToken")
        if self.mode == "webhook":
            missing += [
                key
                for key, value in (
                    ("webhookUrl", self.webhook_url),
                    ("webhookSecret", self.webhook_secret),
                )
                if not value
            ]
        return missing
