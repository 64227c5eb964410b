"""Compaction: keeping a long session inside its model's context window.

The context a turn sends is the session's latest compaction summary (in the system
prompt) plus the transcript entries from that compaction's *first kept entry* on.
Older entries stay in the transcript — a compaction never rewrites a line — but are
no longer read for a turn: the session index records the first kept entry and its
byte offset (``firstKeptEntryId``, ``firstKeptOffset``), so assembling a prompt costs
what the kept part costs, however long the file has grown.

Before each model call the request is estimated (:mod:`.tokens`, corrected by what
the provider reported last). When it does not fit ``window − reserve`` (mode
``auto``):

1. old tool results are pruned in memory (the request only, never the file);
2. if that is not enough, an optional *memory flush* runs first (one silent turn
   that writes durable notes to the workspace memory files, once per compaction
   cycle), then the older turns are summarised by the model into a ``compaction``
   entry ``{type: "compaction", summary, firstKeptEntryId, tokensBefore,
   tokensAfter, reason, usage}``; the most recent ``keepRecentTokens`` stay verbatim;
3. a request that still does not fit (a single huge turn) drops its oldest messages.

A summary never costs more than it saves: it is cut to :func:`summary_cap` (an eighth
of the window, and half of what it replaces), however long the model's answer. An
automatic compaction that still leaves the request too big (or whose summary no model
could write) *stalls*: the oldest messages are left out instead, and the session is not
compacted automatically again until its context has grown by ``keepRecentTokens``
(:class:`Stalls`), so a bad summariser costs one attempt per that much conversation,
never one per turn.

A provider that refuses the request as too long (``context_overflow``) gets the same
compaction, forced, and the call is retried once. ``/compact``, ``sessions.compact``
and ``moltbot sessions compact`` compact on demand.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

from moltbot.agents import context as ctxmod
from moltbot.agents.models import ModelRef
from moltbot.agents.providers import (
    AssistantMessage,
    Finished,
    Message,
    ModelRequest,
    ProviderError,
    TextDelta,
    ToolResultMessage,
    Usage,
    UserMessage,
)
from moltbot.agents.tokens import Estimator
from moltbot.agents.usage import usage_record
from moltbot.commands.context import CompactOutcome
from moltbot.config.schema import Compaction
from moltbot.sessions.store import SessionEntry, SessionStore
from moltbot.sessions.transcript import ordered_messages

if TYPE_CHECKING:
    from moltbot.agents.model_pool import ModelPool

log = logging.getLogger(__name__)

PRUNED = "[old tool result pruned to save context: {chars} characters]"
PRUNE_KEEP_CHARS = 400
SUMMARY_SYSTEM = (
    "You summarise a conversation between a user and an AI assistant so that the "
    "assistant can continue it without the original messages. Keep: the user's goals and "
    "preferences, decisions made, facts learned (names, numbers, paths, ids), what the "
    "assistant did with its tools and what came of it, and open questions or next steps. "
    "Be concise and factual; write in the conversation's language; no preamble."
)
SUMMARY_CUT = "\n[summary cut to fit]"
SUMMARY_HEADER = "## Conversation summary\nEarlier turns of this conversation, summarised:"
FLUSH_PROMPT = (
    "Pre-compaction memory flush: the older part of this conversation is about to be "
    "summarised. Write anything worth keeping for the long term to memory/{date}.md in "
    "the workspace (append; create the file if needed). Reply with NO_REPLY."
)
FLUSH_SYSTEM = "Session nearing compaction. Store durable memories now."
FLUSH_MAX_STEPS = 6


@dataclass
class ContextView:
    """What a turn sees of a session: the latest summary and the entries kept after it."""

    summary: str | None
    entries: list[dict[str, Any]]
    """Transcript entries from the first kept one on, in file order."""
    offsets: list[int]
    compactions: int = 0


@dataclass(frozen=True)
class Budget:
    window: int
    reserve: int
    keep_recent: int

    @property
    def limit(self) -> int:
        """Prompt tokens a request may take."""
        return max(self.window - self.reserve, self.window // 4)


@dataclass
class Plan:
    """The older entries to summarise and the first entry kept verbatim."""

    older: list[dict[str, Any]]
    first_kept: dict[str, Any]
    first_kept_offset: int
    tokens_before: int
    kept_tokens: int
    summary_before: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def budget(settings: Compaction, window: int) -> Budget:
    """``reserveTokens`` is at most a quarter of the window, ``keepRecentTokens`` 40%."""
    return Budget(
        window=window,
        reserve=min(settings.reserve_tokens, window // 4),
        keep_recent=min(settings.keep_recent_tokens, window * 2 // 5),
    )


def summary_tokens(window: int) -> int:
    """The most tokens a summary may take in a ``window``-token context."""
    return max(256, min(4096, window // 8))


def summary_cap(window: int, replaced: int) -> int:
    """The most tokens a summary replacing ``replaced`` tokens may take: an eighth of the
    window and half of what it replaces, so every compaction shrinks the context."""
    return max(1, min(summary_tokens(window), replaced // 2))


def cap_summary(text: str, estimator: Estimator, cap: int) -> str:
    """``text`` cut to at most ``cap`` tokens (at a line or word end, with a note)."""
    if estimator.text(text) <= cap:
        return text
    room = max(0, cap - estimator.text(SUMMARY_CUT))
    cut = text[: room * 4]
    while cut and estimator.text(cut) > room:
        cut = cut[: int(len(cut) * 0.9)]
    end = max(cut.rfind("\n"), cut.rfind(" "))
    if end > len(cut) // 2:
        cut = cut[:end]
    return (cut.rstrip() + SUMMARY_CUT) if cut.strip() else SUMMARY_CUT.strip()


def summary_block(summary: str | None) -> str | None:
    return f"{SUMMARY_HEADER}\n\n{summary.strip()}" if summary else None


# ---- reading the context ----------------------------------------------------------


async def load_view(store: SessionStore, entry: SessionEntry) -> ContextView:
    """The session's context: from the recorded first kept entry when the index has
    one (checked against the file: a mismatch falls back to a whole read)."""
    offset = entry.first_kept_offset or 0
    read = await store.read_from(entry, offset) if offset else await store.read(entry)
    entries, offsets = read.entries, read.offsets
    if offset and (not entries or entries[0].get("id") != entry.first_kept_entry_id):
        log.warning(
            "%s: compaction point not found at %d; reading it all", entry.session_id, offset
        )
        read = await store.read(entry)
        entries, offsets = read.entries, read.offsets
    summary, start = None, 0
    for index in range(len(entries) - 1, -1, -1):
        item = entries[index]
        if item.get("type") == "compaction" and isinstance(item.get("summary"), str):
            summary = item["summary"]
            kept = item.get("firstKeptEntryId")
            for position, candidate in enumerate(entries[: index + 1]):
                if candidate.get("id") == kept:
                    start = position
                    break
            break
    return ContextView(
        summary,
        _drop_orphans(entries[start:]),
        offsets[start:],
        entry.compaction_count or 0,
    )


def _drop_orphans(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Leave out the entries of runs whose user message lies before the cut (written
    after it because that message was queued while the older run was answering)."""
    first_role: dict[str, str] = {}
    out = []
    for item in entries:
        run_id = item.get("runId")
        message = item.get("message")
        if run_id and isinstance(message, dict):
            role = first_role.setdefault(run_id, str(message.get("role")))
            if role != "user":
                continue
        out.append(item)
    return out


def turn_entries(view: ContextView, run_id: str | None) -> list[dict[str, Any]]:
    """The conversation up to and including ``run_id``'s own entries (messages queued
    after it are not its context)."""
    entries = ordered_messages(view.entries)
    if run_id is None:
        return entries
    mine = [i for i, e in enumerate(entries) if e.get("runId") == run_id]
    return entries[: mine[-1] + 1] if mine else entries


def prune_tool_results(messages: list[Message], keep_from: int) -> list[Message]:
    """Old tool results (before index ``keep_from``) shortened to a note: the first
    thing given up when a request is too big. In memory only."""
    out: list[Message] = []
    for index, message in enumerate(messages):
        if (
            index < keep_from
            and isinstance(message, ToolResultMessage)
            and len(message.text) > PRUNE_KEEP_CHARS
        ):
            head = message.text[: PRUNE_KEEP_CHARS // 2]
            note = PRUNED.format(chars=len(message.text))
            message = ToolResultMessage(
                message.tool_call_id, message.tool_name, f"{head}\n{note}", message.is_error
            )
        out.append(message)
    return out


def recent_start(messages: Sequence[Message], estimator: Estimator, keep_tokens: int) -> int:
    """Where pruning stops: the first message of the most recent ``keep_tokens``, and
    never inside the current turn (from the last user message on)."""
    total = 0
    start = len(messages)
    for index in range(len(messages) - 1, -1, -1):
        total += estimator.message(messages[index])
        if total > keep_tokens and start < len(messages):
            break
        start = index
    users = [i for i, m in enumerate(messages) if isinstance(m, UserMessage)]
    return min(start, users[-1]) if users else start


# ---- planning and summarising -------------------------------------------------------


def plan(
    view: ContextView,
    estimator: Estimator,
    keep_recent: int,
    *,
    current_run: str | None,
    tokens_before: int,
) -> Plan | None:
    """Which entries to summarise: everything older than the last ``keep_recent``
    tokens, cut at the start of a turn (a user message) and never inside the current
    run. None when there is no older turn to summarise."""
    entries = turn_entries(view, current_run)
    offsets = {id(item): off for item, off in zip(view.entries, view.offsets, strict=False)}
    starts = [
        i
        for i, item in enumerate(entries)
        if _is_turn_start(item) and (i == 0 or entries[i - 1].get("runId") != item.get("runId"))
    ]
    if current_run is not None:
        mine = [i for i, e in enumerate(entries) if e.get("runId") == current_run]
        limit = mine[0] if mine else len(entries)
    else:
        limit = len(entries)
    total, cut = 0, None
    for i in range(len(entries) - 1, -1, -1):
        total += _entry_tokens(entries[i], estimator)
        if i in starts and i <= limit and i > 0:
            cut = i
            if total > keep_recent:
                break
    if cut is None:
        return None
    older = entries[:cut]
    if not any(_is_turn_start(e) for e in older):
        return None
    first = entries[cut]
    kept_tokens = sum(_entry_tokens(e, estimator) for e in entries[cut:])
    return Plan(older, first, offsets.get(id(first), 0), tokens_before, kept_tokens, view.summary)


def _is_turn_start(item: Mapping[str, Any]) -> bool:
    message = item.get("message")
    return (
        isinstance(message, dict) and message.get("role") == "user" and not message.get("command")
    )


def _entry_tokens(item: Mapping[str, Any], estimator: Estimator) -> int:
    return sum(estimator.message(m) for m in ctxmod.to_messages([item]))


def transcript_text(entries: Sequence[Mapping[str, Any]], max_tool_chars: int = 600) -> str:
    """Older turns as plain text for the summariser (tool results already cut short)."""
    lines: list[str] = []
    for message in ctxmod.to_messages(entries):
        if isinstance(message, UserMessage):
            lines.append(f"User: {message.text}")
        elif isinstance(message, AssistantMessage):
            if message.text:
                lines.append(f"Assistant: {message.text}")
            for call in message.tool_calls:
                args = ", ".join(f"{k}={str(v)[:80]}" for k, v in call.arguments.items())
                lines.append(f"Assistant called {call.name}({args})")
        elif isinstance(message, ToolResultMessage):
            text = message.text
            if len(text) > max_tool_chars:
                text = text[:max_tool_chars] + f"… [{len(message.text)} characters]"
            flag = " (error)" if message.is_error else ""
            lines.append(f"{message.tool_name} result{flag}: {text}")
    return "\n".join(lines)


async def complete(
    models: ModelPool,
    chain: Sequence[ModelRef],
    system: str,
    prompt: str,
    max_tokens: int,
) -> tuple[str, Usage, ModelRef]:
    """One quiet model call (nothing streams to the user): the first model of ``chain``
    that answers. Raises the last :class:`ProviderError` when none does."""
    last: ProviderError | None = None
    for ref in chain:
        provider = models.provider(ref)
        if provider is None or not provider.usable or models.cooldowns.cooling(str(ref)):
            continue
        request = ModelRequest(
            model=ref.model,
            system=system,
            messages=(UserMessage(prompt),),
            max_tokens=max_tokens,
            timeout=provider.timeout,
        )
        parts: list[str] = []
        finished: Finished | None = None
        try:
            async with models.lease(provider) as client:
                async for event in client.stream(request):
                    if isinstance(event, TextDelta):
                        parts.append(event.text)
                    elif isinstance(event, Finished):
                        finished = event
        except ProviderError as exc:
            log.warning("summary by %s failed: %s", ref, exc.describe())
            last = exc
            continue
        text = (finished.message.text if finished else "".join(parts)).strip()
        if text:
            return text, finished.usage if finished else Usage(), ref
    raise last or ProviderError("unconfigured", "no model can write the summary")


async def summarise(
    models: ModelPool,
    chain: Sequence[ModelRef],
    estimator: Estimator,
    window: int,
    older: Sequence[Mapping[str, Any]],
    previous: str | None,
    instructions: str | None,
    cap: int,
) -> tuple[str, Usage]:
    """The summary of ``older`` (continuing ``previous``), by the model, cut to ``cap``
    tokens; a text too big for one request is summarised in pieces, each piece carrying
    the summary so far."""
    max_tokens = summary_tokens(window)
    room = max(512, window - max_tokens * 3 - estimator.text(SUMMARY_SYSTEM))
    pieces = _pieces(transcript_text(older), estimator, room)
    usage = Usage()
    current = previous
    for piece in pieces:
        prompt = ""
        if current:
            prompt += f"Summary of the conversation before this part:\n{current}\n\n"
        prompt += f"Conversation:\n{piece}\n\nWrite the updated summary."
        if instructions:
            prompt += f"\nFocus: {instructions}"
        text, used, ref = await complete(models, chain, SUMMARY_SYSTEM, prompt, max_tokens)
        usage = Usage(usage.input + used.input, usage.output + used.output)
        current = cap_summary(text, estimator, cap)
        if current != text:
            log.warning(
                "the summary by %s took %d tokens, more than the %d allowed; cut",
                ref,
                estimator.text(text),
                cap,
            )
    return current or "", usage


def _pieces(text: str, estimator: Estimator, room: int) -> list[str]:
    if estimator.text(text) <= room:
        return [text]
    lines, pieces, current, size = text.splitlines(), [], [], 0
    for line in lines:
        cost = estimator.text(line) + 1
        if current and size + cost > room:
            pieces.append("\n".join(current))
            current, size = [], 0
        if cost > room:  # one enormous line: cut it
            line = line[: room * 3]
            cost = estimator.text(line)
        current.append(line)
        size += cost
    if current:
        pieces.append("\n".join(current))
    return pieces


# ---- the compactor ---------------------------------------------------------------


@dataclass(frozen=True)
class Stall:
    """An automatic compaction that left the session's context at ``tokens``, still
    too big (or failed): the next one waits until the context has grown."""

    session_id: str
    tokens: int


class Stalls:
    """The sessions whose automatic compaction is on hold (in memory: a restart allows
    one more attempt)."""

    def __init__(self) -> None:
        self._by_key: dict[str, Stall] = {}

    def on_hold(self, key: str, session_id: str, tokens: int, grow: int) -> bool:
        """True while the context of ``key`` (now ``tokens``) has grown by less than
        ``grow`` tokens since its compaction stalled."""
        stall = self._by_key.get(key)
        return stall is not None and stall.session_id == session_id and tokens < stall.tokens + grow

    def stalled(self, key: str, session_id: str, tokens: int) -> None:
        self._by_key[key] = Stall(session_id, tokens)

    def clear(self, key: str) -> None:
        self._by_key.pop(key, None)


class Compactor:
    """Compaction for one runtime: per-model estimators (calibrated by provider usage),
    one compaction at a time per session, the sessions whose compaction stalled."""

    def __init__(self, host: Any) -> None:
        self.host = host
        self._estimators: dict[str, Estimator] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self.stalls = Stalls()

    def estimator(self, ref: ModelRef) -> Estimator:
        key = str(ref)
        found = self._estimators.get(key)
        if found is None:
            provider = self.host.models.provider(ref)
            found = self._estimators[key] = Estimator(
                ref.provider, ref.model, provider.api if provider else None
            )
        return found

    def settings(self) -> Compaction:
        settings: Compaction = self.host.config.agents.defaults.compaction
        return settings

    def window(self, ref: ModelRef) -> int:
        return int(self.host.models.context_window(ref))

    def lock(self, key: str) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())

    async def compact(
        self,
        store: SessionStore,
        key: str,
        chain: Sequence[ModelRef],
        *,
        run_id: str | None,
        tokens_before: int | None = None,
        reason: str,
        instructions: str | None = None,
        keep_recent: int | None = None,
    ) -> CompactOutcome:
        """Summarise the session's older turns into a compaction entry (see the module
        docstring); the outcome says what happened. Raises :class:`ProviderError`
        when no model could write the summary (nothing is changed then)."""
        ref = chain[0]
        estimator = self.estimator(ref)
        window = self.window(ref)
        limits = budget(self.settings(), window)
        async with self.lock(key):
            fresh = await store.get(key)
            if fresh is None:
                return CompactOutcome(False, reason="no such session")
            view = await load_view(store, fresh)
            messages = ctxmod.to_messages(turn_entries(view, run_id))
            before = tokens_before or estimator.request(summary_block(view.summary) or "", messages)
            keep = limits.keep_recent if keep_recent is None else keep_recent
            found = plan(view, estimator, keep, current_run=run_id, tokens_before=before)
            if found is None:
                return CompactOutcome(
                    False, reason="nothing older to summarise", tokens_before=before
                )
            started = time.monotonic()
            replaced = estimator.text(view.summary or "") + sum(
                _entry_tokens(e, estimator) for e in found.older
            )
            summary, usage = await summarise(
                self.host.models,
                chain,
                estimator,
                window,
                found.older,
                view.summary,
                instructions,
                summary_cap(window, replaced),
            )
            after = estimator.text(summary) + found.kept_tokens
            item = {
                "type": "compaction",
                "summary": summary,
                "firstKeptEntryId": found.first_kept.get("id"),
                "tokensBefore": before,
                "tokensAfter": after,
                "reason": reason,
                "model": str(ref),
                "usage": usage_record(self.host.models, ref, usage),
                "durationMs": int((time.monotonic() - started) * 1000),
            }
            written = await store.append(fresh, item)
            count = (fresh.compaction_count or 0) + 1
            await store.touch(
                key,
                compaction_count=count,
                first_kept_entry_id=found.first_kept.get("id"),
                first_kept_offset=found.first_kept_offset,
                context_tokens=after,
            )
        log.info(
            "session %s compacted (%s): %d → %d tokens, summary %d chars",
            fresh.session_id,
            reason,
            before,
            after,
            len(summary),
        )
        return CompactOutcome(
            True,
            tokens_before=before,
            tokens_after=after,
            summary_chars=len(summary),
            entry_id=str(written.get("id")),
        )


def flush_prompt(settings: Compaction) -> tuple[str, str]:
    """The memory flush turn's message and system-prompt addition."""
    flush = settings.memory_flush
    prompt = (flush.prompt or FLUSH_PROMPT).replace("{date}", date.today().isoformat())
    prompt = prompt.replace("YYYY-MM-DD", date.today().isoformat())
    return prompt, flush.system_prompt or FLUSH_SYSTEM
