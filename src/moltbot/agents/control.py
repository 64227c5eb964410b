"""The session operations chat commands use (:class:`moltbot.commands.AgentControl`),
as a mixin of :class:`~moltbot.agents.runtime.AgentRuntime`.

Command exchanges are recorded in the session's transcript (the user's ``/status``
and the reply, marked so that they never go back to a model) and announced as a
``chat`` ``final`` event, so WebChat shows them like any other message.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from moltbot.agents import context as ctxmod
from moltbot.agents import skills, usage
from moltbot.agents.models import parse_ref
from moltbot.commands.context import CompactOutcome, SessionInfo

if TYPE_CHECKING:
    from moltbot.agents.runtime import AgentRuntime

COMMAND_STOP_REASON = "command"


class SessionControl:
    """Mixed into :class:`AgentRuntime`; see :class:`moltbot.commands.AgentControl`."""

    async def reset_session(self: AgentRuntime, session_key: str, note: str | None = None) -> str:
        agent, key = self.session_key(session_key)
        await self.abort(key, reason="reset")
        entry = await self.store(agent).reset(key)
        if note:
            await self.store(agent).append(entry, command_note(note, None))
        return entry.session_id

    async def session_info(self: AgentRuntime, session_key: str) -> SessionInfo:
        agent, key = self.session_key(session_key)
        entry = await self.store(agent).get(key)
        try:
            chain = self.models.chain(agent, entry)
        except Exception:  # an invalid override or config: show what is known
            chain = self.models.chain_or_empty(agent)
        running, queued = self._lanes.session_counts(key)
        window = self.models.context_window(chain[0]) if chain else None
        context_tokens = (entry.context_tokens or 0) if entry is not None else 0
        return SessionInfo(
            agent_id=agent,
            session_key=key,
            session_id=entry.session_id if entry else None,
            model=str(chain[0]) if chain else None,
            model_override=entry.model_override if entry else None,
            fallbacks=tuple(str(r) for r in chain[1:]),
            context_window=window,
            context_tokens=context_tokens,
            input_tokens=(entry.input_tokens or 0) if entry else 0,
            output_tokens=(entry.output_tokens or 0) if entry else 0,
            compactions=int(getattr(entry, "compaction_count", 0) or 0) if entry else 0,
            running=running > 0,
            queued=queued,
            thinking=entry.thinking_level if entry else None,
            verbose=entry.verbose_level if entry else None,
            updated_at=entry.updated_at if entry else None,
        )

    async def update_session(self: AgentRuntime, session_key: str, **fields: Any) -> None:
        agent, key = self.session_key(session_key)
        store = self.store(agent)
        await store.ensure(key)
        await store.touch(key, **fields)

    def model_choices(self: AgentRuntime, agent_id: str) -> list[str]:
        refs = [str(r) for r in self.models.chain_or_empty(agent_id)]
        for provider in self.models.providers.values():
            for model in provider.models:
                refs.append(f"{provider.id}/{model}")
        refs += list(self.config.agents.defaults.models)
        return list(dict.fromkeys(refs))

    def parse_model(self: AgentRuntime, text: str) -> str:
        return str(parse_ref(text, self.config))

    async def compact(
        self: AgentRuntime,
        session_key: str,
        *,
        instructions: str | None = None,
        reason: str = "manual",
        keep_recent: int | None = None,
    ) -> CompactOutcome:
        agent, key = self.session_key(session_key)
        store = self.store(agent)
        entry = await store.get(key)
        if entry is None:
            return CompactOutcome(False, reason="no such session")
        chain = [ref for ref in self.models.chain(agent, entry) if self.models.usable(ref)]
        if not chain:
            return CompactOutcome(False, reason="no model is configured to write the summary")
        running = self._lanes.running_run(key)  # its turn stays whole
        return await self.compactor.compact(
            store,
            key,
            chain,
            run_id=running.id if running else None,
            reason=reason,
            instructions=instructions,
            keep_recent=keep_recent,
        )

    def _skill_commands(self: AgentRuntime, agent_id: str) -> dict[str, skills.SkillStatus]:
        from moltbot.commands import REGISTRY

        found = skills.statuses(
            self.config, self.env, self.workspace(agent_id), self.instance.skills_dir
        )
        return skills.skill_commands(found, REGISTRY.taken() | {"skill"})

    def skill_commands(self: AgentRuntime, agent_id: str | None = None) -> list[tuple[str, str]]:
        """``(command, description)`` of the agent's skills that a chat command runs."""
        commands = self._skill_commands(self.resolve_agent(agent_id))
        return [(name, item.skill.description) for name, item in commands.items()]

    def skill_request(self: AgentRuntime, agent_id: str, text: str) -> str | None:
        """The prompt for ``/<skill> [input]`` (or ``/skill <name> [input]``) when it
        names an eligible, user-invocable skill of the agent; None otherwise."""
        if not text.lstrip().startswith("/"):
            return None
        return skills.skill_prompt(self._skill_commands(self.resolve_agent(agent_id)), text)

    async def usage_summary(
        self: AgentRuntime, days: int = 30, agent_id: str | None = None
    ) -> dict[str, Any]:
        """``usage.cost``: see :func:`moltbot.agents.usage.summary`."""
        rows = await self._usage_rows(agent_id)
        return usage.summary(rows, days)

    async def usage_status(self: AgentRuntime) -> dict[str, Any]:
        return usage.status(await self._usage_rows(None))

    async def _usage_rows(self: AgentRuntime, agent_id: str | None) -> list[usage.Row]:
        agents = [self.resolve_agent(agent_id)] if agent_id else self.agent_ids()
        directories = {a: self.instance.sessions_dir(a) for a in agents}
        prices = usage.price_lookup(self.models.providers)
        async with self._usage_lock:
            return await asyncio.to_thread(self.usage_ledger.scan, directories, prices)

    async def record_command(
        self: AgentRuntime,
        session_key: str,
        text: str,
        reply: str | None,
        *,
        run_id: str | None = None,
        transcript: bool = True,
    ) -> None:
        """Write a command exchange into the transcript (kept out of model context) and
        announce the reply as ``chat`` ``final`` (``runId`` = ``run_id`` when given)."""
        agent, key = self.session_key(session_key)
        message_id = run_id
        if transcript:
            store = self.store(agent)
            entry = await store.ensure(key)
            store.write(entry, ctxmod.user_entry(text, None, command=True))
            if reply:
                written = store.write(entry, command_note(reply, None))
                message_id = message_id or str(written["id"])
            await store.sync(entry)
            await store.touch(key)
        if reply:
            self.events.injected(
                key, message_id or "command", reply, run_id=run_id, stop_reason="command"
            )


def command_note(text: str, run_id: str | None) -> dict[str, Any]:
    """A command's reply as a transcript entry (never sent to a model)."""
    return ctxmod.note_entry(text, run_id, model="command", stop_reason=COMMAND_STOP_REASON)
