"""Where a conversation's message came from: the typed ``origin`` of a session.

A channel builds an :class:`Origin` for every inbound message
(:func:`moltbot.channels.dispatch.build_origin`); the agents record it on the
session (``sessions.json`` ``origin``, upstream's camelCase keys) and read it
back to answer in the same conversation (the ``message`` tool) and to add the
group's own system prompt. ``provider`` and ``surface`` are written as
upstream does (equal to ``channel``); an origin read from a file that has only
``provider`` gets its ``channel`` from it. Unknown keys are kept.
"""

from __future__ import annotations

from typing import Any

from moltbot.validation import BaseModel, ConfigDict, Field, model_validator, to_camel


class OriginMedia(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="allow", populate_by_name=True, alias_generator=to_camel
    )

    kind: str
    path: str | None = None
    mime_type: str | None = None


class Origin(BaseModel):
    """One inbound message's origin. Frozen. Every field is optional, since a
    session file written by another version may lack any of them; channels
    always set ``channel``, ``accountId``, ``to`` and ``from``."""

    model_config = ConfigDict(
        frozen=True, extra="allow", populate_by_name=True, alias_generator=to_camel
    )

    channel: str | None = None
    """The channel id (``telegram``, ``slack``...)."""
    provider: str | None = None
    surface: str | None = None
    account_id: str | None = None
    chat_type: str | None = None
    sender: str | None = Field(default=None, alias="from")
    """``<channel>:<sender id>`` (upstream's ``from``)."""
    to: str | None = None
    """The target that answers this conversation (``channel.reply_target``)."""
    sender_id: str | None = None
    sender_name: str | None = None
    sender_username: str | None = None
    message_id: str | None = None
    thread_id: str | None = None
    was_mentioned: bool | None = None
    label: str | None = None
    session_key: str | None = None
    main_session_key: str | None = None
    matched_by: str | None = None
    timestamp: int | None = None
    """Milliseconds since the epoch."""
    group_id: str | None = None
    group_subject: str | None = None
    group_system_prompt: str | None = None
    """The group's (or forum topic's) ``systemPrompt``: added to the agent's system prompt."""
    media: tuple[OriginMedia, ...] | None = None

    @model_validator(mode="before")
    @classmethod
    def _channel_aliases(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        channel = data.get("channel") or data.get("provider") or data.get("surface")
        if not channel:
            return data
        filled = dict(data)
        for key in ("channel", "provider", "surface"):
            filled[key] = filled.get(key) or channel
        return filled

    def dump(self) -> dict[str, Any]:
        """The JSON shape (camelCase, no nulls)."""
        return self.model_dump(by_alias=True, exclude_none=True)
