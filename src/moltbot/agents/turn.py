"""Running one turn: the model ↔ tool loop, its time limit, what it leaves in the transcript.

A run waits for one of ``agents.defaults.maxConcurrent`` slots, builds its
context (the session's transcript up to its own message, the system prompt,
the tools), then calls the model and runs the tools the model asks for until
the model answers without tool calls (at most :data:`MAX_STEPS` times). Each
assistant message and tool result is appended to the transcript as it arrives.
A run cut short (aborted, timed out) records its partial reply and an error
result for each pending tool call, so the transcript stays well-formed; one the
gateway cut short (stop, restart) is marked ``interrupted: true`` with
``errorMessage: "aborted: gateway restarting"``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from moltbot.agents import context as ctxmod
from moltbot.agents import skills
from moltbot.agents.compaction import (
    FLUSH_MAX_STEPS,
    Budget,
    Compactor,
    budget,
    flush_prompt,
    load_view,
    prune_tool_results,
    recent_start,
    summary_block,
    turn_entries,
)
from moltbot.agents.events import RunEvents
from moltbot.agents.model_call import AllModelsFailed, NotConfigured, call_models
from moltbot.agents.model_pool import ModelPool
from moltbot.agents.models import ModelRef
from moltbot.agents.prompt import PromptInputs, build_system_prompt
from moltbot.agents.providers import (
    AssistantMessage,
    Message,
    ProviderError,
    ToolCall,
    ToolResultMessage,
    ToolSpec,
    Usage,
    UserMessage,
)
from moltbot.agents.roster import AgentSpec
from moltbot.agents.run import AgentRunError, Run, RunState, now_ms
from moltbot.agents.tokens import Estimator
from moltbot.agents.tools import Tool, ToolContext, ToolError
from moltbot.agents.tools.base import format_result
from moltbot.agents.usage import usage_record
from moltbot.commands.context import CompactOutcome
from moltbot.config.schema import Config
from moltbot.instance.resolve import Instance
from moltbot.lifecycle import Lookup
from moltbot.sessions.store import SessionStore

MAX_STEPS = 40


@dataclass
class Prepared:
    """The next request's system prompt and messages, with their token estimate."""

    ref: ModelRef
    estimator: Estimator
    system: str
    messages: list[Message]
    raw: int = 0
    """The uncorrected estimate (what the provider's count calibrates)."""
    fixed: int = 0
    session_id: str = ""
    loaded: int = 0
    """The estimate as loaded (before pruning or trimming): how big the context is."""

    def measure(self, tool_specs: tuple[ToolSpec, ...]) -> None:
        self.fixed = self.estimator.raw(self.system, (), tool_specs)
        self.raw = self.fixed + sum(self.estimator.message(m) for m in self.messages)

    def estimate(self) -> int:
        return int(self.raw * self.estimator.ratio)

    def fits(self, limits: Budget) -> bool:
        return self.estimate() <= limits.limit

    def trim(self, limits: Budget, tool_specs: tuple[ToolSpec, ...]) -> None:
        """Leave out the oldest messages (starting at a user message) until it fits."""
        room = limits.limit / self.estimator.ratio - self.fixed
        total, start = 0.0, len(self.messages)
        for index in range(len(self.messages) - 1, -1, -1):
            total += self.estimator.message(self.messages[index])
            if total > room and start < len(self.messages):
                break
            start = index
        while start < len(self.messages) - 1 and not isinstance(self.messages[start], UserMessage):
            start += 1
        self.messages = self.messages[start:]
        self.measure(tool_specs)


MAX_TOOL_RESULT_CHARS = 100_000


class RunHost(Protocol):
    """What a turn uses of the runtime, read when it is needed: a reconfigure
    applies to the next step of a run in flight."""

    config: Config
    instance: Instance
    env: Mapping[str, str]
    log: logging.Logger
    models: ModelPool
    events: RunEvents
    tools: dict[str, Tool]

    compactor: Compactor

    def store(self, agent_id: str) -> SessionStore: ...

    async def protected_paths(self) -> tuple[Path, ...]: ...

    async def agent_spec(self, agent_id: str) -> AgentSpec: ...

    lookup: Lookup


class TurnRunner:
    def __init__(self, host: RunHost, max_concurrent: int) -> None:
        self.host = host
        self._slots = asyncio.Semaphore(max_concurrent)
        self._slots_limit = max_concurrent

    def set_max_concurrent(self, limit: int) -> None:
        """Runs started from now on share ``limit`` slots (running ones keep theirs)."""
        if limit != self._slots_limit:
            self._slots = asyncio.Semaphore(limit)
            self._slots_limit = limit

    async def execute(self, run: Run) -> None:
        """Run ``run`` to its end and settle it. Never raises for the run's own failures:
        they end up in ``run.state`` / ``run.error``, the transcript and the events."""
        host = self.host
        store = host.store(run.agent_id)
        try:
            async with self._slots:
                run.state = RunState.RUNNING
                run.started_at = now_ms()
                run.mark("started")
                host.events.started(run)
                async with asyncio.timeout(run.timeout):
                    await self._turn(run, store)
            run.state = RunState.OK
        except TimeoutError:
            run.state, run.stop_reason = RunState.TIMEOUT, "timeout"
            run.error = f"timed out after {run.timeout:g}s (agents.defaults.timeoutSeconds)"
            run.error_code = "AGENT_TIMEOUT"
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            run.state, run.stop_reason = RunState.ABORTED, "aborted"
            run.abort_reason = run.abort_reason or "cancelled"
        except NotConfigured as exc:
            run.state = RunState.OK
            await self._notice(run, store, exc.text)
        except (ProviderError, AllModelsFailed) as exc:
            run.state, run.stop_reason = RunState.ERROR, "error"
            run.error = str(exc) if isinstance(exc, AllModelsFailed) else exc.describe()
            run.error_code = "UNAVAILABLE"
            run.error_kind = exc.kind
        except Exception as exc:
            host.log.exception("run %s failed", run.id)
            run.state, run.stop_reason = RunState.ERROR, "error"
            run.error = f"internal error: {type(exc).__name__}: {exc}"
            run.error_code = "UNAVAILABLE"
        run.ended_at = now_ms()
        try:
            await self.record_end(run, store)
        except Exception:  # the events below must still go out
            host.log.exception("run %s: recording its end failed", run.id)
        host.events.finished(run)
        run.settle()

    async def _turn(self, run: Run, store: SessionStore) -> None:
        host = self.host
        entry = await store.get(run.session_key)
        if entry is None:
            raise AgentRunError(f"session {run.session_key} vanished")
        run.thinking = entry.thinking_level
        chain = host.models.chain(run.agent_id, entry)
        if not chain:
            raise NotConfigured(host.models.unconfigured_text(None))
        usable = [ref for ref in chain if host.models.usable(ref)]
        if not usable:
            raise NotConfigured(host.models.unconfigured_text(chain))
        spec = await host.agent_spec(run.agent_id)
        tools = host.tools
        tool_specs = tuple(
            ToolSpec(t.name, t.description, t.parameters_schema()) for t in tools.values()
        )
        prepared = await self._prepare(run, store, usable, spec.workspace, tools, tool_specs)
        system, messages = prepared.system, prepared.messages
        overflow_retried = False
        tool_ctx: ToolContext | None = None  # built at the first tool call
        for _step in range(MAX_STEPS):
            try:
                finished, ref, provider = await call_models(
                    run,
                    chain,
                    system,
                    messages,
                    tool_specs,
                    models=host.models,
                    events=host.events,
                    log=host.log,
                )
            except ProviderError as exc:
                if exc.kind != "context_overflow" or overflow_retried:
                    raise
                # The provider says it does not fit: compact (forced) and try once more.
                overflow_retried = True
                host.log.warning("run %s: %s; compacting and retrying", run.id, exc.describe())
                prepared = await self._prepare(
                    run, store, usable, spec.workspace, tools, tool_specs, force="overflow"
                )
                system, messages = prepared.system, prepared.messages
                continue
            run.partial = ""
            run.model = str(ref)
            run.input_tokens += finished.usage.input
            run.output_tokens += finished.usage.output
            run.context_tokens = finished.usage.input + finished.usage.output
            run.stop_reason = finished.stop_reason
            if ref == prepared.ref and finished.usage.input:
                prepared.estimator.calibrate(prepared.raw, finished.usage.input)
            await store.append(
                entry,
                ctxmod.assistant_entry(
                    finished.message,
                    run.id,
                    api=provider.api,
                    provider=ref.provider,
                    model=ref.model,
                    usage=finished.usage,
                    stop_reason=finished.stop_reason,
                    usage_record=usage_record(host.models, ref, finished.usage),
                ),
            )
            messages.append(finished.message)
            prepared.raw += prepared.estimator.message(finished.message)
            if not finished.message.tool_calls:
                return
            run.new_segment = bool(run.text)
            for call in finished.message.tool_calls:
                run.pending_calls[call.id] = call.name
            if tool_ctx is None:
                protected = await host.protected_paths()
                tool_ctx = self._tool_context(run, spec.workspace, protected)
            for call in finished.message.tool_calls:
                result = await self._run_tool(run, call, tool_ctx, tools)
                run.pending_calls.pop(call.id, None)
                await store.append(entry, ctxmod.tool_result_entry(result, run.id))
                messages.append(result)
                prepared.raw += prepared.estimator.message(result)
        run.new_segment = bool(run.text)  # a paragraph of its own, like text after a tool step
        host.events.text(run, f"(stopped after {MAX_STEPS} tool steps)")

    def _system_prompt(
        self,
        run: Run,
        workspace: Path,
        model: str,
        tools: Mapping[str, Tool],
        summary: str | None = None,
    ) -> str:
        extra = [e for e in (run.extra_system, summary_block(summary)) if e]
        found = skills.statuses(
            self.host.config, self.host.env, workspace, self.host.instance.skills_dir
        )
        run.skill_env = skills.skill_env(found)
        return build_system_prompt(
            PromptInputs(
                agent_id=run.agent_id,
                workspace=workspace,
                model=model,
                tools=[(t.name, t.description) for t in tools.values()],
                channel=run.channel,
                bootstrap_max_chars=self.host.config.agents.defaults.bootstrap_max_chars,
                extra="\n\n".join(extra) or None,
                thinking=run.thinking,
                skills=skills.prompt_block(found),
            )
        )

    # ---- the context of a turn: compaction ---------------------------------------

    async def _prepare(
        self,
        run: Run,
        store: SessionStore,
        chain: list[ModelRef],
        workspace: Path,
        tools: Mapping[str, Tool],
        tool_specs: tuple[ToolSpec, ...],
        *,
        force: str | None = None,
    ) -> Prepared:
        """The system prompt and messages of the next request, made to fit the first
        model's window (see :mod:`moltbot.agents.compaction`): old tool results pruned,
        then the older turns compacted (``mode: auto``, or ``force`` after an
        overflow), then the oldest messages left out if it still does not fit."""
        host = self.host
        compactor = host.compactor
        settings = compactor.settings()
        ref = chain[0]
        estimator = compactor.estimator(ref)
        limits = budget(settings, compactor.window(ref))
        prepared = await self._load(run, store, ref, workspace, tools, tool_specs, estimator)
        if prepared.fits(limits) and not force:
            return prepared
        if settings.mode == "off":
            prepared.trim(limits, tool_specs)
            return prepared
        keep_from = recent_start(prepared.messages, estimator, limits.keep_recent)
        prepared.messages = prune_tool_results(prepared.messages, keep_from)
        prepared.measure(tool_specs)
        if prepared.fits(limits) and not force:
            return prepared
        if (settings.mode == "auto" or force) and not self._on_hold(run, prepared, limits, force):
            if settings.memory_flush.enabled and not force:
                await self._memory_flush(run, store, chain, prepared, workspace, tools, tool_specs)
            try:
                outcome = await compactor.compact(
                    store,
                    run.session_key,
                    chain,
                    run_id=run.id,
                    tokens_before=prepared.estimate(),
                    reason=force or "auto",
                )
            except ProviderError as exc:  # the turn goes on with what fits
                host.log.warning("run %s: compaction failed: %s", run.id, exc.describe())
                outcome = CompactOutcome(False, reason=exc.describe())
            if outcome.compacted:
                run.notes.append("🧹 Auto-compaction complete")
                host.events.compacted(run, outcome)
                prepared = await self._load(
                    run, store, ref, workspace, tools, tool_specs, estimator
                )
            untrimmed = prepared.estimate()
            prepared.messages = prune_tool_results(
                prepared.messages, recent_start(prepared.messages, estimator, limits.keep_recent)
            )
            prepared.measure(tool_specs)
            if prepared.fits(limits):
                compactor.stalls.clear(run.session_key)
            else:
                self._stalled(run, prepared, limits, untrimmed, outcome)
        if not prepared.fits(limits):
            prepared.trim(limits, tool_specs)
        return prepared

    def _on_hold(self, run: Run, prepared: Prepared, limits: Budget, force: str | None) -> bool:
        """Whether automatic compaction waits: the last one stalled and the context has
        not grown by ``keepRecentTokens`` since (a forced one never waits)."""
        stalls = self.host.compactor.stalls
        tokens = prepared.loaded
        if force or not stalls.on_hold(
            run.session_key, prepared.session_id, tokens, limits.keep_recent
        ):
            return False
        self.host.log.info(
            "run %s: compaction on hold (it stalled; the context is %d tokens); "
            "the oldest messages are left out",
            run.id,
            tokens,
        )
        return True

    def _stalled(
        self, run: Run, prepared: Prepared, limits: Budget, untrimmed: int, outcome: CompactOutcome
    ) -> None:
        """A compaction that did not bring the request under the limit: leave out the
        oldest messages instead, and hold automatic compaction until the context grows."""
        self.host.compactor.stalls.stalled(run.session_key, prepared.session_id, prepared.loaded)
        why = f"compacted to {outcome.tokens_after} tokens" if outcome.compacted else outcome.reason
        self.host.log.warning(
            "run %s: the context is still %d tokens after compaction (%s), over the limit "
            "of %d: the oldest messages are left out; no automatic compaction until it "
            "grows by %d tokens",
            run.id,
            untrimmed,
            why,
            limits.limit,
            limits.keep_recent,
        )
        run.notes.append("⚠️ Context still too big after compaction: oldest messages left out")

    async def _load(
        self,
        run: Run,
        store: SessionStore,
        ref: ModelRef,
        workspace: Path,
        tools: Mapping[str, Tool],
        tool_specs: tuple[ToolSpec, ...],
        estimator: Estimator,
    ) -> Prepared:
        entry = await store.get(run.session_key)
        if entry is None:
            raise AgentRunError(f"session {run.session_key} vanished")
        view = await load_view(store, entry)
        messages = ctxmod.to_messages(turn_entries(view, run.id))
        system = self._system_prompt(run, workspace, str(ref), tools, view.summary)
        prepared = Prepared(ref, estimator, system, messages, session_id=entry.session_id)
        prepared.measure(tool_specs)
        prepared.loaded = prepared.estimate()
        return prepared

    async def _memory_flush(
        self,
        run: Run,
        store: SessionStore,
        chain: list[ModelRef],
        prepared: Prepared,
        workspace: Path,
        tools: Mapping[str, Tool],
        tool_specs: tuple[ToolSpec, ...],
    ) -> None:
        """Before compacting: one silent turn that writes durable notes to the workspace
        memory files, at most once per compaction cycle. Nothing of it is sent to the
        user or kept in the conversation; a ``custom`` ``memory-flush`` entry records it."""
        host = self.host
        entry = await store.get(run.session_key)
        if entry is None or entry.memory_flush_compaction_count == (entry.compaction_count or 0):
            return
        prompt, extra = flush_prompt(host.compactor.settings())
        flush = Run(
            id=f"{run.id}:flush",
            agent_id=run.agent_id,
            session_key=run.session_key,
            message=prompt,
            timeout=run.timeout,
            channel=run.channel,
        )
        quiet = RunEvents(lambda *_a, **_k: None, host.log)
        messages: list[Message] = [*prepared.messages, UserMessage(prompt)]
        system = f"{prepared.system}\n\n{extra}"
        ctx = self._tool_context(flush, workspace, await host.protected_paths())
        used, calls = Usage(), []
        try:
            for _step in range(FLUSH_MAX_STEPS):
                finished, ref, _ = await call_models(
                    flush,
                    chain,
                    system,
                    messages,
                    tool_specs,
                    models=host.models,
                    events=quiet,
                    log=host.log,
                )
                used = Usage(used.input + finished.usage.input, used.output + finished.usage.output)
                messages.append(finished.message)
                if not finished.message.tool_calls:
                    break
                for call in finished.message.tool_calls:
                    calls.append(call.name)
                    messages.append(await self._run_tool(flush, call, ctx, tools, quiet))
        except (ProviderError, AllModelsFailed, NotConfigured) as exc:
            host.log.warning("run %s: memory flush failed: %s", run.id, exc)
            return
        record = {
            "type": "custom",
            "customType": "memory-flush",
            "data": {"tools": calls, "reply": finished.message.text[:200]},
            "model": str(ref),
            "usage": usage_record(host.models, ref, used),
        }
        await store.append(entry, record)
        await store.touch(
            run.session_key,
            memory_flush_at=now_ms(),
            memory_flush_compaction_count=entry.compaction_count or 0,
        )
        host.log.info("run %s: memory flush before compaction (%s)", run.id, ", ".join(calls))

    def _tool_context(self, run: Run, workspace: Path, protected: tuple[Path, ...]) -> ToolContext:
        host = self.host
        return ToolContext(
            agent_id=run.agent_id,
            session_key=run.session_key,
            run_id=run.id,
            workspace=workspace,
            instance=host.instance,
            config=host.config,
            env=host.env,
            logger=host.log,
            lookup=host.lookup,
            protected=protected,
            skill_env=run.skill_env,
            origin=run.origin,
        )

    async def _run_tool(
        self,
        run: Run,
        call: ToolCall,
        ctx: ToolContext,
        tools: Mapping[str, Tool],
        events: RunEvents | None = None,
    ) -> ToolResultMessage:
        """The tool's result; a failure is an error result for the model, not an exception.

        ``tools`` is the set the run offered the model: a reload meanwhile does not
        swap a tool under the call."""
        host = self.host
        events = events or host.events
        events.tool_started(run, call)
        started = time.perf_counter()
        tool = tools.get(call.name)
        is_error = True
        if tool is None:
            text = f"unknown tool {call.name!r}; available: {', '.join(tools)}"
        elif call.error:
            text = f"{call.name}: {call.error}"
        else:
            limit = host.config.tools.timeout_seconds
            deadline = asyncio.timeout(limit)
            try:
                params = tool.parse(call.arguments)
                async with deadline:
                    text = format_result(await tool.run(ctx, params))
                is_error = False
            except ToolError as exc:
                text = exc.message
            except TimeoutError as exc:
                if not deadline.expired():
                    host.log.exception("tool %s failed in run %s", call.name, run.id)
                    text = f"{call.name} failed: {type(exc).__name__}: {exc}"
                else:
                    text = f"{call.name} timed out after {limit:g}s (tools.timeoutSeconds)"
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                host.log.exception("tool %s failed in run %s", call.name, run.id)
                text = f"{call.name} failed: {type(exc).__name__}: {exc}"
        if len(text) > MAX_TOOL_RESULT_CHARS:
            text = text[:MAX_TOOL_RESULT_CHARS] + "\n[... truncated]"
        duration_ms = int((time.perf_counter() - started) * 1000)
        events.tool_finished(run, call, text, is_error, duration_ms)
        run.tool_log.append(f"{'⚠️' if is_error else '🔧'} {call.name}")
        return ToolResultMessage(call.id, call.name, text, is_error)

    async def _notice(self, run: Run, store: SessionStore, text: str) -> None:
        """Answer with ``text`` without a model (e.g. "no model configured")."""
        self.host.events.text(run, text)
        run.stop_reason = "notice"
        entry = await store.get(run.session_key)
        if entry is not None:
            note = ctxmod.note_entry(text, run.id, model="notice", stop_reason="notice")
            await store.append(entry, note)
        run.partial = ""

    async def record_end(self, run: Run, store: SessionStore) -> None:
        """Write how ``run`` ended into its transcript and the session index."""
        entry = await store.get(run.session_key)
        if entry is None:
            return
        if run.state in (RunState.ABORTED, RunState.TIMEOUT):
            if run.partial or run.state == RunState.ABORTED:
                extra: dict[str, Any] = {}
                if run.error or run.interrupted:
                    extra["errorMessage"] = run.error or run.abort_message()
                if run.interrupted:
                    extra["interrupted"] = True
                await store.append(
                    entry,
                    ctxmod.assistant_entry(
                        AssistantMessage(run.partial),
                        run.id,
                        api=None,
                        provider=None,
                        model=run.model,
                        usage=None,
                        stop_reason=str(run.stop_reason),
                        **extra,
                    ),
                )
            for call_id, name in list(run.pending_calls.items()):
                await store.append(
                    entry,
                    ctxmod.tool_result_entry(
                        ToolResultMessage(call_id, name, f"Tool call {run.stop_reason}.", True),
                        run.id,
                    ),
                )
            run.pending_calls.clear()
        elif run.state == RunState.ERROR:
            await store.append(
                entry,
                ctxmod.note_entry(
                    f"⚠️ {run.error}",
                    run.id,
                    model="error",
                    stop_reason="error",
                    errorMessage=run.error,
                ),
            )
        changes: dict[str, Any] = {
            "aborted_last_run": run.state == RunState.ABORTED,
            "last_run_id": run.id,
        }
        if run.model:
            provider, _, model = run.model.partition("/")
            changes.update(model=model, model_provider=provider)
        if run.context_tokens:
            changes["context_tokens"] = run.context_tokens
        await store.add_usage(run.session_key, run.input_tokens, run.output_tokens, **changes)
