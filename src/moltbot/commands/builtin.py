"""The built-in chat commands: ``/help``, ``/status``, ``/new``, ``/reset``, ``/stop``,
``/model``, ``/think``, ``/verbose``, ``/compact``, ``/whoami``.

Replies are plain text of a few short lines, so they read well on a phone.
"""

from __future__ import annotations

from moltbot.commands.context import CommandContext, SessionInfo
from moltbot.commands.registry import CommandReply, command, refusal
from moltbot.errors import UsageError

THINK_LEVELS = ("off", "minimal", "low", "medium", "high", "xhigh")
VERBOSE_LEVELS = ("off", "on", "full")


def tokens(value: int | None) -> str:
    """``812``, ``3.4k``, ``1.2M``."""
    if value is None:
        return "?"
    if value < 1000:
        return str(value)
    if value < 1_000_000:
        return f"{value / 1000:.1f}k".replace(".0k", "k")
    return f"{value / 1_000_000:.1f}M".replace(".0M", "M")


@command("help", aliases=("commands",), help="List the chat commands")
async def help_cmd(ctx: CommandContext) -> str:
    lines = ["Commands:"]
    for cmd in ctx.registry.all():
        if cmd.owner_only and not ctx.is_owner:
            continue
        lock = " 🔒" if cmd.owner_only else ""
        lines.append(f"{cmd.usage or '/' + cmd.name} — {cmd.help}{lock}")
    if ctx.agents is not None:
        found = ctx.agents.skill_commands(ctx.agent_id)
        if found:
            lines.append("Skills (/<skill> [request], or /skill <name> [request]):")
            lines += [f"/{name} — {description}" for name, description in found]
    if ctx.is_owner:
        lines.append("🔒 owners only")
    return "\n".join(lines)


@command("whoami", aliases=("id",), help="Show your sender id")
async def whoami(ctx: CommandContext) -> str:
    role = "owner" if ctx.is_owner else "not an owner"
    name = f" ({ctx.sender_name})" if ctx.sender_name else ""
    return f"You are {ctx.sender}{name}, {role}.\nSession: {ctx.session_key}"


def status_text(info: SessionInfo) -> str:
    model = info.model or "none configured"
    if info.model_override:
        model += " (set with /model)"
    lines = [f"Model: {model}"]
    if info.fallbacks:
        lines.append(f"Fallbacks: {', '.join(info.fallbacks)}")
    used = tokens(info.context_tokens)
    if info.context_window:
        share = ""
        if info.context_tokens is not None:
            share = f" ({info.context_tokens * 100 // max(info.context_window, 1)}%)"
        context = f"Context: {used} / {tokens(info.context_window)} tokens{share}"
    else:
        context = f"Context: {used} tokens"
    if info.compactions:
        context += f" · 🧹 {info.compactions} compaction{'s' if info.compactions > 1 else ''}"
    lines.append(context)
    lines.append(f"Usage: {tokens(info.input_tokens)} in / {tokens(info.output_tokens)} out")
    short_id = f" (id {info.session_id[:8]})" if info.session_id else ""
    lines.append(f"Session: {info.session_key}{short_id}")
    if info.running or info.queued:
        queue = "running" if info.running else "idle"
        lines.append(f"Queue: {queue}, {info.queued} waiting")
    else:
        lines.append("Queue: idle")
    lines.append(f"Think: {info.thinking or 'off'} · Verbose: {info.verbose or 'off'}")
    return "\n".join(lines)


@command("status", help="Model, tokens used of the window, session, queue")
async def status(ctx: CommandContext) -> str:
    info = await ctx.need_agents().session_info(ctx.session_key)
    return status_text(info)


@command("new", usage="/new [model]", help="Start a fresh session", owner_only=True)
async def new(ctx: CommandContext) -> CommandReply:
    agents = ctx.need_agents()
    model = agents.parse_model(ctx.args) if ctx.args else None
    note = "Started a new session." + (f" Model: {model}." if model else "")
    session_id = await agents.reset_session(ctx.session_key, note=note)
    if model:
        await agents.update_session(ctx.session_key, model_override=model)
    data = {"reset": True, "sessionKey": ctx.session_key, "sessionId": session_id}
    return CommandReply(note, data=data, record=False)


@command("reset", help="Start a fresh session (same as /new)", owner_only=True)
async def reset(ctx: CommandContext) -> CommandReply:
    return await new(ctx)


@command("stop", aliases=("abort",), help="Stop the current reply", owner_only=True)
async def stop(ctx: CommandContext) -> CommandReply:
    run_ids = await ctx.need_agents().abort(ctx.session_key, reason="stop command")
    text = "⏹ Stopped." if run_ids else "Nothing to stop."
    return CommandReply(text, data={"aborted": bool(run_ids), "runIds": run_ids})


@command("model", aliases=("models",), usage="/model [name|number]", help="Show or switch model")
async def model(ctx: CommandContext) -> str:
    agents = ctx.need_agents()
    choices = agents.model_choices(ctx.agent_id)
    info = await agents.session_info(ctx.session_key)
    if not ctx.args or ctx.args in ("list", "status"):
        lines = [f"Model: {info.model or 'none configured'}"]
        if choices:
            lines.append("Available:")
            lines += [f"{i}) {ref}" for i, ref in enumerate(choices, 1)]
        lines.append("Switch: /model <provider/model or number>; back: /model default")
        return "\n".join(lines)
    if not ctx.is_owner:
        return refusal("model")
    wanted = ctx.args.strip()
    if wanted in ("default", "reset", "off"):
        await agents.update_session(ctx.session_key, model_override=None)
        back = await agents.session_info(ctx.session_key)
        return f"Model: back to the default ({back.model or 'none configured'})."
    if wanted.isdigit():
        index = int(wanted)
        if not 1 <= index <= len(choices):
            raise UsageError(f"no model number {index}; send /model for the list")
        ref = choices[index - 1]
    else:
        ref = agents.parse_model(wanted)
    await agents.update_session(ctx.session_key, model_override=ref)
    return f"Model: {ref} for this session."


@command(
    "think",
    aliases=("thinking", "t"),
    usage="/think <off|minimal|low|medium|high|xhigh>",
    help="Set how hard the model thinks",
    owner_only=True,
)
async def think(ctx: CommandContext) -> str:
    agents = ctx.need_agents()
    if not ctx.args:
        info = await agents.session_info(ctx.session_key)
        return f"Think: {info.thinking or 'off'}. Levels: {', '.join(THINK_LEVELS)}"
    level = ctx.args.lower()
    if level not in THINK_LEVELS:
        raise UsageError(f"unknown level {ctx.args!r}; use one of {', '.join(THINK_LEVELS)}")
    await agents.update_session(ctx.session_key, thinking_level=None if level == "off" else level)
    return f"Think: {level}."


@command(
    "verbose",
    aliases=("v",),
    usage="/verbose [on|off|full]",
    help="Show tool activity in replies",
    owner_only=True,
)
async def verbose(ctx: CommandContext) -> str:
    agents = ctx.need_agents()
    if ctx.args:
        level = ctx.args.lower()
        if level not in VERBOSE_LEVELS:
            raise UsageError(f"unknown level {ctx.args!r}; use on, off or full")
    else:
        info = await agents.session_info(ctx.session_key)
        level = "off" if (info.verbose or "off") != "off" else "on"
    await agents.update_session(ctx.session_key, verbose_level=None if level == "off" else level)
    return f"Verbose: {level}."


@command(
    "compact",
    usage="/compact [instructions]",
    help="Summarise older turns to free context",
    owner_only=True,
)
async def compact(ctx: CommandContext) -> str:
    outcome = await ctx.need_agents().compact(
        ctx.session_key, instructions=ctx.args or None, reason="manual"
    )
    if not outcome.compacted:
        return f"Nothing to compact ({outcome.reason or 'nothing older to summarise'})."
    return (
        f"🧹 Compacted: {tokens(outcome.tokens_before)} → {tokens(outcome.tokens_after)} "
        "tokens. Earlier turns are summarised; the originals stay in the transcript."
    )
