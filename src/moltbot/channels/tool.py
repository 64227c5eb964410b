"""The agent tool ``message``: send to a chat on a messaging channel.

Without ``channel``/``target`` it answers the conversation the session belongs
to (the origin recorded when the message came in), so an agent talking on
Telegram cannot leak into another chat by accident.
"""

from __future__ import annotations

from typing import Any, Literal

from moltbot.agents.tools.base import Tool, ToolContext, ToolError, ToolParams
from moltbot.sessions.origin import Origin
from moltbot.validation import Field


class MessageParams(ToolParams):
    action: Literal["send"] = Field(default="send", description="Only 'send' for now.")
    message: str = Field(default="", description="Text to send (Markdown).")
    channel: str | None = Field(
        default=None, description="A channel id (telegram, slack...); default: this conversation's."
    )
    target: str | None = Field(
        default=None,
        description="Chat id (Telegram: 123, -100…:topic:42; "
        "Slack: channel:C…, user:U…); default: this conversation.",
    )
    accountId: str | None = None
    media: list[str] | None = Field(default=None, description="Files (workspace paths) or URLs.")
    replyTo: str | None = Field(default=None, description="Message id to reply to.")
    threadId: str | None = None


class MessageTool(Tool):
    name = "message"
    description = (
        "Send a message (text and/or files) to a chat on a messaging channel. "
        "Without channel and target it goes to the conversation you are in."
    )
    Params = MessageParams

    def enabled(self, config: Any) -> bool:
        return bool(getattr(config, "channels", None))

    async def run(self, ctx: ToolContext, params: MessageParams) -> dict[str, Any]:
        from moltbot.channels.errors import ChannelError
        from moltbot.channels.types import OutboundMessage

        manager = ctx.lookup("channels")
        if manager is None:
            raise ToolError("no messaging channel is running")
        origin = await _origin(ctx) or Origin()
        channel = params.channel or origin.channel
        target = params.target
        account = params.accountId
        thread = params.threadId
        if not target and channel == origin.channel:
            target = origin.to
            account = account or origin.account_id
            thread = thread or origin.thread_id
        if not channel or not target:
            raise ToolError(
                "name a channel and a target: this session has no conversation to answer"
            )
        media = tuple([await _media_path(ctx, item) for item in params.media or []])
        if not params.message.strip() and not media:
            raise ToolError("nothing to send: give message or media")
        try:
            result = await manager.send(
                channel,
                target,
                OutboundMessage(
                    text=params.message, media=media, reply_to_id=params.replyTo, thread_id=thread
                ),
                account_id=account,
            )
        except ChannelError as exc:
            raise ToolError(exc.message) from None
        return {
            "ok": True,
            "channel": result.channel,
            "chatId": result.chat_id,
            "messageIds": list(result.message_ids),
        }


async def _origin(ctx: ToolContext) -> Origin | None:
    """The origin recorded on this session (where its last inbound message came from)."""
    agents = ctx.lookup("agents")
    if agents is None or not hasattr(agents, "store"):
        return None
    try:
        entry = await agents.store(ctx.agent_id).get(ctx.session_key)
    except Exception:
        return None
    return entry.origin if entry is not None else None


async def _media_path(ctx: ToolContext, item: str) -> str:
    """A URL as is; a path only inside the workspace (confined like the file tools)
    or among the session's stored media."""
    agents = ctx.lookup("agents")
    if agents is not None and hasattr(agents, "resolve_media"):
        return str(await agents.resolve_media(ctx.agent_id, item))
    if item.startswith(("http://", "https://")):
        return item
    from moltbot.agents.tools.confine import workspace_confinement

    return str(workspace_confinement(ctx).resolve(item))
