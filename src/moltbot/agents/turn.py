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
from pathlib import Path
from typing import Any, Protocol

from moltbot.agents import context as ctxmod
from moltbot.agents.events import RunEvents
from moltbot.agents.model_call import AllModelsFailed, NotConfigured, call_models
from moltbot.agents.model_pool import ModelPool
from moltbot.agents.prompt import PromptInputs, build_system_prompt
from moltbot.agents.providers import (
    AssistantMessage,
    Message,
    ProviderError,
    ToolCall,
    ToolResultMessage,
    ToolSpec,
)
from moltbot.agents.roster import AgentSpec
from moltbot.agents.run import AgentRunError, Run, RunState, now_ms
from moltbot.agents.tools import Tool, ToolContext, ToolError
from moltbot.agents.tools.base import format_result
from moltbot.config.schema import Config
from moltbot.instance.resolve import Instance
from moltbot.lifecycle import Lookup
from moltbot.sessions.store import SessionStore
from moltbot.sessions.transcript import ordered_messages

MAX_STEPS = 40
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
        read = await store.read(entry)
        entries = ordered_messages(read.entries)
        mine = [i for i, e in enumerate(entries) if e.get("runId") == run.id]
        entries = entries[: mine[-1] + 1] if mine else entries
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
        window = host.models.context_window(usable[0])
        messages: list[Message] = ctxmod.to_messages(entries)
        if read.size > window * 3:  # the file bounds the text: trim only when it may not fit
            messages = ctxmod.fit(messages, window * 3)
        system = self._system_prompt(run, spec.workspace, str(usable[0]), tools)
        tool_ctx: ToolContext | None = None  # built at the first tool call
        for _step in range(MAX_STEPS):
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
            run.partial = ""
            run.model = str(ref)
            run.input_tokens += finished.usage.input
            run.output_tokens += finished.usage.output
            run.stop_reason = finished.stop_reason
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
                ),
            )
            messages.append(finished.message)
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
        note = f"(stopped after {MAX_STEPS} tool steps)"
        host.events.text(run, ("\n\n" if run.text else "") + note)

    def _system_prompt(
        self, run: Run, workspace: Path, model: str, tools: Mapping[str, Tool]
    ) -> str:
        return build_system_prompt(
            PromptInputs(
                agent_id=run.agent_id,
                workspace=workspace,
                model=model,
                tools=[(t.name, t.description) for t in tools.values()],
                channel=run.channel,
                bootstrap_max_chars=self.host.config.agents.defaults.bootstrap_max_chars,
                extra=run.extra_system,
            )
        )

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
        )

    async def _run_tool(
        self, run: Run, call: ToolCall, ctx: ToolContext, tools: Mapping[str, Tool]
    ) -> ToolResultMessage:
        """The tool's result; a failure is an error result for the model, not an exception.

        ``tools`` is the set the run offered the model: a reload meanwhile does not
        swap a tool under the call."""
        host = self.host
        host.events.tool_started(run, call)
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
        host.events.tool_finished(run, call, text, is_error, duration_ms)
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
        await store.add_usage(run.session_key, run.input_tokens, run.output_tokens, **changes)
