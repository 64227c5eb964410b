"""``/approve`` and ``/deny``: answering an exec approval from the chat that asked.

They are commands of the chat-command layer (:mod:`moltbot.commands`, loaded through
this package's ``moltbot.commands`` entry point, :func:`register`), so they are
answered before any model and never wait behind the session's run — which is
the run waiting for the answer. Grammar::

    /approve [ID] [allow-once|allow-always]     (also: once, always; /allow)
    /deny [ID]                                  (also: /reject, /approve ID deny)

``ID`` may be a prefix of the request's id, and may be left out when exactly one
request waits in the conversation's session. Who may answer: an owner (a channel
sender on the account's allowlist or paired with it — not a stranger an open DM
policy lets talk), or in WebChat an operator with ``operator.approvals`` or
``operator.admin`` (the scope ``exec.approval.resolve`` wants), in a direct
conversation only — a group cannot approve commands (its requests are answered in
the Control UI or with ``moltbot approvals``).
"""

from __future__ import annotations

from moltbot.commands import CommandContext, CommandRegistry, CommandReply
from moltbot.errors import UsageError
from moltbot.subsystems import APPROVALS

APPROVE_USAGE = "/approve [id] [allow-once|allow-always]"
DENY_USAGE = "/deny [id]"
_DECISIONS = {
    "once": "allow-once",
    "allow-once": "allow-once",
    "allow": "allow-once",
    "always": "allow-always",
    "allow-always": "allow-always",
    "deny": "deny",
    "reject": "deny",
}
APPROVER_SCOPES = frozenset({"operator.approvals", "operator.admin"})
GROUP_REFUSAL = (
    "⛔ Exec approvals cannot be answered in a group; use the Control UI or "
    "`moltbot approvals approve|deny ID`."
)


def parse(args: str, default: str, usage: str) -> tuple[str | None, str]:
    """``(id or None, decision)`` of the words after ``/approve`` or ``/deny``
    (``default`` when no decision word is given); :class:`UsageError` otherwise."""
    wanted: str | None = None
    decision: str | None = None
    for word in args.split():
        mapped = _DECISIONS.get(word.lower())
        if mapped is not None and decision is None:
            decision = mapped
        elif mapped is None and wanted is None:
            wanted = word
        else:
            raise UsageError(f"usage: {usage}")
    if default == "deny" and decision not in (None, "deny"):
        raise UsageError(f"usage: {usage}")
    return wanted, decision or default


async def answer(ctx: CommandContext, default: str, usage: str) -> CommandReply:
    """Resolve the request of this session that ``ctx.args`` names (see the module
    docstring); the reply says what was decided, or why nothing was."""
    if ctx.chat_type != "direct":
        return CommandReply(GROUP_REFUSAL, record=False)
    if ctx.surface == "webchat" and not ctx.scopes & APPROVER_SCOPES:
        return CommandReply(
            "⛔ Answering exec approvals needs the operator.approvals scope.", record=False
        )
    wanted, decision = parse(ctx.args, default, usage)
    approvals = ctx.lookup(APPROVALS)
    waiting = approvals.waiting(ctx.session_key) if approvals is not None else []
    if wanted is not None:
        chosen = [p for p in waiting if p.id.lower().startswith(wanted.lower())]
    else:
        chosen = waiting
    if not chosen:
        here = f" (waiting here: {', '.join(p.id for p in waiting)})" if waiting else ""
        named = f" {wanted}" if wanted is not None else ""
        return CommandReply(f"No exec approval{named} waits in this conversation{here}.")
    if len(chosen) > 1:
        ids = ", ".join(p.id for p in chosen)
        return CommandReply(f"Several exec approvals wait here; name one: {ids}")
    pending = chosen[0]
    if not pending.direct:
        return CommandReply(GROUP_REFUSAL, record=False)
    assert approvals is not None
    approvals.resolve(pending.id, decision, ctx.sender)
    text = f"exec approval {pending.id}: {decision}"
    return CommandReply(text, data={"approval": text})


async def approve(ctx: CommandContext) -> CommandReply:
    return await answer(ctx, "allow-once", APPROVE_USAGE)


async def deny(ctx: CommandContext) -> CommandReply:
    return await answer(ctx, "deny", DENY_USAGE)


def register(registry: CommandRegistry) -> None:
    """Declare ``/approve`` and ``/deny`` in ``registry`` (the ``moltbot.commands`` entry
    point). Owner-only; in WebChat the operator's scopes decide too (see above)."""
    if registry.get("approve") is None:
        registry.command(
            "approve",
            aliases=("allow",),
            usage=APPROVE_USAGE,
            owner_only=True,
            help="Let a command waiting for an operator run (exec approvals)",
        )(approve)
    if registry.get("deny") is None:
        registry.command(
            "deny",
            aliases=("reject",),
            usage=DENY_USAGE,
            owner_only=True,
            help="Refuse a command waiting for an operator",
        )(deny)


__all__ = ["answer", "approve", "deny", "parse", "register"]
