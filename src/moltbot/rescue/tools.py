"""The agent tool ``rescue``: the rescue agent looks at and repairs its targets.

Offered only when ``rescue.targets`` grants something, and it acts only for an owner:
the session's last inbound message must come from a sender on
``rescue.owners.<channel>``, or the session is an operator's (WebChat, ``moltbot
agent``: no channel origin). Reads answer at once. A change is never made by the
agent: it is registered for confirmation by the owner's own conversation, and the
owner's ``yes`` (or code) there — handled before any model — makes it.
"""

from __future__ import annotations

from typing import Literal

from moltbot.agents.tools.base import Tool, ToolContext, ToolError, ToolParams
from moltbot.config.schema import Config
from moltbot.errors import MoltbotError
from moltbot.rescue.audit import Actor
from moltbot.rescue.ops import OPS
from moltbot.sessions.origin import Origin
from moltbot.subsystems import RESCUE
from moltbot.validation import Field

Op = Literal[OPS]  # type: ignore[valid-type]  # the operations' names, as given


class RescueParams(ToolParams):
    target: str = Field(description="The instance (profile name) to act on, e.g. main.")
    op: Op = Field(description="What to do.")
    key: str | None = Field(default=None, description="config get/set: the dotted key.")
    value: str | None = Field(default=None, description="config set: the value (JSON5).")
    version: int | None = Field(
        default=None, ge=1, description="config diff/restore: history version (default: last good)."
    )
    lines: int | None = Field(default=None, ge=1, le=200, description="logs: how many lines.")
    grep: str | None = Field(
        default=None, max_length=200, description="logs: only lines with this text."
    )


class RescueTool(Tool):
    name = "rescue"
    description = (
        "Diagnose and repair another moltbot instance this one may act on (rescue.targets): "
        "status (running? config valid, with file:line:col?), logs, doctor, config "
        "validate/get/diff (against the last good config)/history; and changes (config "
        "restore [version], config set, restart, stop, start) that only the owner can "
        "confirm, in the chat."
    )
    Params = RescueParams

    def enabled(self, config: Config) -> bool:
        return bool(config.rescue.targets)

    async def run(self, ctx: ToolContext, params: RescueParams) -> str:
        service = ctx.lookup(RESCUE)
        if service is None:
            raise ToolError("rescue is not running in this gateway")
        origin = await _origin(ctx)
        if origin is not None and origin.channel and origin.channel != "webchat":
            _check_owner(ctx.config, origin)
            confirm_key = ":".join(
                (origin.channel, origin.account_id or "", origin.to or "", origin.sender_id or "")
            )
            who = f"{origin.channel}:{origin.sender_id}"
        else:
            confirm_key, who = f"webchat:{ctx.session_key}", "an operator"
        actor = Actor("agent", confirm_key, f"agent {ctx.agent_id} for {who}")
        from moltbot.rescue.operations import Request  # with the first call: see service

        try:
            request = Request(
                params.target,
                params.op,
                key=params.key,
                value=params.value,
                number=params.version,
                lines=params.lines,
                grep=params.grep,
            )
            return await service.tool_call(actor, confirm_key, request)
        except MoltbotError as exc:
            raise ToolError(exc.message + (f" ({exc.hint})" if exc.hint else "")) from None


async def _origin(ctx: ToolContext) -> Origin | None:
    from moltbot.subsystems import AGENTS

    agents = ctx.lookup(AGENTS)
    if agents is None:
        return None
    entry = await agents.store(ctx.agent_id).get(ctx.session_key)
    return entry.origin if entry is not None else None


def _check_owner(config: Config, origin: Origin) -> None:
    from moltbot.channels.registry import channel_class
    from moltbot.rescue.targets import check_owner

    channel, sender = origin.channel or "", origin.sender_id or ""
    try:
        normalize = channel_class(channel).normalize_allow_entry
    except MoltbotError:
        raise ToolError(f"rescue: unknown channel {channel}") from None
    keys = {normalize(sender)}
    if origin.sender_username:
        keys.add(normalize(f"@{origin.sender_username}"))
    try:
        check_owner(config.rescue.owners, channel, keys, normalize, f"{channel}:{sender}")
    except MoltbotError as exc:
        raise ToolError(exc.message) from None


__all__ = ["RescueParams", "RescueTool"]
