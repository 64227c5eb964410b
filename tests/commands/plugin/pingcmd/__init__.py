"""A chat-command plugin from another distribution: declared through the
``moltbot.commands`` entry point (see ``pingcmd-0.1.dist-info/entry_points.txt``),
registered without any change to moltbot."""

from __future__ import annotations

from moltbot.commands import CommandContext, CommandRegistry, command


@command("pingtest", help="Answer pong (a plugin's command)", usage="/pingtest [text]")
async def ping(ctx: CommandContext) -> str:
    owner = "owner" if ctx.is_owner else "guest"
    return f"pong {ctx.args} ({ctx.surface}, {owner}, {ctx.session_key})"


def register(registry: CommandRegistry) -> None:
    """The function form of the entry point: register into the registry loading it."""

    @registry.command("rescuetest", help="Owner-only plugin command", owner_only=True)
    async def rescue(ctx: CommandContext) -> str:
        return f"rescued {ctx.args or 'nothing'}"
