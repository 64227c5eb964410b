"""``channels.matrix`` (and ``channels.matrix.accounts.<id>``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from moltbot.channels.config import AccountConfig, GroupConfig
from moltbot.validation import Field, field_validator


class MatrixAccountConfig(AccountConfig):
    homeserver: str | None = Field(default=None, description="Homeserver URL.")
    user_id: str | None = Field(
        default=None, description="The bot's user id (@bot:server); optional with accessToken."
    )
    access_token: str | None = Field(
        default=None, description="Access token (secret). MATRIX_ACCESS_TOKEN for the default."
    )
    password: str | None = Field(
        default=None,
        description="Password (secret): logged in once, the access token is kept in the state dir.",
    )
    device_name: str = Field(default="moltbot", description="Device display name.")
    encryption: bool = Field(
        default=False,
        description="End-to-end encryption (needs matrix-nio's e2e extra); without it, "
        "encrypted rooms get a notice.",
    )
    auto_join: Literal["always", "allowlist", "off"] = Field(
        default="always", description="Invites: join always, only autoJoinAllowlist, or never."
    )
    auto_join_allowlist: list[str] = Field(
        default_factory=list, description="Room ids/aliases (or inviters) auto-joined."
    )
    thread_replies: Literal["off", "inbound", "always"] = Field(
        default="inbound",
        description="off: never in a thread; inbound: answer in the thread a message came "
        "from; always: open a thread on the message.",
    )
    groups: dict[str, GroupConfig] = Field(
        default_factory=dict,
        description='Per-room settings by room id, alias or "*"; when set, also the rooms '
        "the bot answers in.",
    )
    sync_timeout_seconds: int = Field(default=30, ge=0, le=120)
    streaming: bool = Field(
        default=False,
        description="Show replies while they are written: one message, edited (m.replace) "
        "as the text grows.",
    )

    @field_validator("homeserver")
    @classmethod
    def _strip_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else value

    @field_validator("encryption", mode="before")
    @classmethod
    def _on_off(cls, value: Any) -> Any:
        return {"on": True, "off": False}.get(value, value) if isinstance(value, str) else value

    def group_entries(self) -> Mapping[str, GroupConfig] | None:
        return self.groups if "groups" in self.model_fields_set else None

    def missing(self) -> list[str]:
        missing = [] if self.homeserver else ["homeserver"]
        if not self.access_token:
            if not self.password:
                missing.append("accessToken")
            elif not self.user_id:
                missing.append("userId")
        return missing
