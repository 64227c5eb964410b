"""The agent runtime: runs agent turns for every session of every agent.

It is the ``agents`` subsystem of the gateway (constructed with a
:class:`~moltbot.gateway.subsystem.SubsystemContext`) and also runs embedded
without a gateway (``moltbot agent --local``): build it with a context whose
``broadcast`` prints or collects events.

Runs of one session execute one at a time in the order they were submitted
(later messages wait in the session's queue); at most
``agents.defaults.maxConcurrent`` runs execute at once over all sessions. A
submitted message is written to the transcript (fsync'd) before
:meth:`AgentRuntime.submit` returns, so an acknowledged message survives a crash.

Events: ``agent`` ``{runId, seq, stream, ts, data, sessionKey}`` with streams
``lifecycle`` (start/end/error), ``assistant`` (text/delta), ``tool``
(start/result); and ``chat`` ``{runId, sessionKey, seq, state, message?, ...}``
with ``delta`` (full text so far, at most one per 150 ms), ``final``,
``aborted`` or ``error``.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import importlib
import logging
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from moltbot.agents import context as ctxmod
from moltbot.agents.failover import Cooldowns
from moltbot.agents.models import (
    ModelRef,
    ResolvedProvider,
    catalog,
    model_chain,
    parse_ref,
    read_credentials,
    resolve_providers,
)
from moltbot.agents.prompt import PromptInputs, build_system_prompt, read_identity
from moltbot.agents.providers import (
    AssistantMessage,
    Finished,
    Message,
    ModelRequest,
    Provider,
    ProviderError,
    TextDelta,
    ToolCall,
    ToolResultMessage,
    ToolSpec,
    build,
)
from moltbot.agents.providers.base import scrub
from moltbot.agents.roster import AgentSpec, agent_specs, default_agent_id
from moltbot.agents.run import Run, RunState, Watcher, now_ms
from moltbot.agents.tools import TOOLS, Tool, ToolContext, ToolError
from moltbot.agents.tools.base import format_result
from moltbot.errors import ConfigError, MoltbotError, NotFoundError, UsageError
from moltbot.gateway.subsystem import State, SubsystemContext
from moltbot.sessions.keys import agent_of, main_key, normalize_key
from moltbot.sessions.store import SessionEntry, SessionStore
from moltbot.sessions.transcript import ordered_messages, peek

if TYPE_CHECKING:
    from moltbot.config.schema import Config

MAX_STEPS = 40
DELTA_INTERVAL_S = 0.150
MAX_TOOL_RESULT_CHARS = 100_000
MAX_TOOL_EVENT_CHARS = 4_000
FINISHED_RUNS_KEPT = 1000
HISTORY_MAX_BYTES = 6 * 1024 * 1024


class AgentRunError(MoltbotError):
    """A run could not be started (unknown agent, bad session key)."""


@dataclass
class _Lane:
    queue: deque[Run] = field(default_factory=deque)
    worker: asyncio.Task[None] | None = None


class AgentRuntime:
    """See the module docstring. ``name = "agents"`` in the gateway."""

    name = "agents"

    def __init__(self, context: SubsystemContext) -> None:
        self.ctx = context
        self.instance = context.instance
        self.config: Config = context.config
        self.env: Mapping[str, str] = context.env
        self.log = context.logger
        self.state = State.CREATED
        self.cooldowns = Cooldowns()
        self._stores: dict[str, SessionStore] = {}
        self._lanes: dict[str, _Lane] = {}
        self._runs: OrderedDict[str, Run] = OrderedDict()
        self._providers: dict[str, ResolvedProvider] = {}
        self._clients: dict[str, Provider] = {}
        self._tools: dict[str, Tool] = {}
        self._slots = asyncio.Semaphore(self.config.agents.defaults.max_concurrent)
        self._specs: dict[str, AgentSpec] = {}
        self._seeded: set[str] = set()
        self._warm_task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()
        """Set once :meth:`start` has finished (method handlers wait on it briefly)."""
        self._load_config(self.config)

    # ---- lifecycle (Subsystem) ---------------------------------------------

    async def start(self) -> None:
        self.state = State.STARTING
        self._tools = self._load_tools()
        for spec in self._specs.values():
            await asyncio.to_thread(self._seed, spec)
        self.state = State.RUNNING
        self.ready.set()
        self._warm_task = asyncio.create_task(self._warm(), name="agents warm-up")
        chain = self._chain_or_none(self.resolve_agent(None))
        self.log.info(
            "agents ready: %s; model %s; tools %s",
            ", ".join(self._specs),
            " → ".join(map(str, chain)) if chain else "none configured",
            ", ".join(self._tools),
        )

    async def stop(self) -> None:
        self.state = State.STOPPING
        self.ready.clear()
        if self._warm_task is not None:
            self._warm_task.cancel()
            await asyncio.gather(self._warm_task, return_exceptions=True)
        for key in list(self._lanes):
            await self.abort(key, reason="shutdown")
        workers = [lane.worker for lane in self._lanes.values() if lane.worker]
        if workers:
            await asyncio.wait(workers, timeout=5)
        for client in self._clients.values():
            with contextlib.suppress(Exception):
                await client.close()
        self._clients.clear()
        self.state = State.STOPPED

    def status(self) -> dict[str, Any]:
        active = [r for r in self._runs.values() if r.state == RunState.RUNNING]
        queued = [r for r in self._runs.values() if r.state == RunState.QUEUED]
        default = self.resolve_agent(None)
        chain = self._chain_or_none(default)
        return {
            "state": str(self.state),
            "defaultAgentId": default,
            "agents": list(self._specs),
            "model": str(chain[0]) if chain else None,
            "fallbacks": [str(r) for r in chain[1:]] if chain else [],
            "activeRuns": len(active),
            "queuedRuns": len(queued),
            "tools": list(self._tools),
            "cooldowns": self.cooldowns.snapshot(),
        }

    async def reconfigure(self, config: Config) -> bool:
        old_clients = self._clients
        self._load_config(config)
        self._tools = self._load_tools()
        self._clients = {}
        for client in old_clients.values():  # runs in flight keep their own reference
            with contextlib.suppress(Exception):
                await client.close()
        return True

    async def _warm(self) -> None:
        """Import the model SDKs the configured agents use and build their clients now,
        so the first message does not pay for it (``import anthropic`` takes seconds)."""
        from moltbot.agents.providers import APIS

        used: dict[str, ResolvedProvider] = {}
        for agent_id in self._specs:
            for ref in self._chain_or_none(agent_id):
                provider = self._providers.get(ref.provider)
                if provider is not None and provider.usable:
                    used[provider.id] = provider
        for provider in used.values():
            target = APIS.get(provider.api)
            if target is None:
                continue
            try:
                await asyncio.to_thread(importlib.import_module, target.partition(":")[0])
                self._client(provider)
            except Exception as exc:  # the first run reports it properly
                self.log.debug("warming provider %s failed: %s", provider.id, exc)

    def _load_config(self, config: Config) -> None:
        self.config = config
        credentials = read_credentials(self.instance.credentials_dir)
        self._providers = resolve_providers(config, self.env, credentials)
        self._specs = {spec.id: spec for spec in agent_specs(config, self.instance)}
        limit = config.agents.defaults.max_concurrent
        if getattr(self, "_slots_limit", None) != limit:
            self._slots = asyncio.Semaphore(limit)
            self._slots_limit = limit

    # ---- agents and sessions -------------------------------------------------

    def resolve_agent(self, agent_id: str | None) -> str:
        """The agent id to use: ``agent_id`` if it exists (lower-cased), else the default.

        Raises :class:`AgentRunError` for an id that names no agent.
        """
        if agent_id is None or not agent_id.strip():
            return default_agent_id(self.config)
        value = agent_id.strip().lower()
        if value not in self._specs:
            raise AgentRunError(
                f"unknown agent {agent_id!r}; agents: {', '.join(self._specs)}",
                hint="add it with `moltbot agents add`",
            )
        return value

    def agent_ids(self) -> list[str]:
        return list(self._specs)

    def workspace(self, agent_id: str) -> Path:
        return self._specs[self.resolve_agent(agent_id)].workspace

    def store(self, agent_id: str) -> SessionStore:
        agent_id = self.resolve_agent(agent_id)
        found = self._stores.get(agent_id)
        if found is None:
            found = SessionStore(
                self.instance.sessions_dir(agent_id), cwd=self._specs[agent_id].workspace
            )
            self._stores[agent_id] = found
        return found

    def session_key(self, key: str | None, agent_id: str | None = None) -> tuple[str, str]:
        """``(agent id, canonical key)``; a missing key is the agent's main session."""
        agent = self.resolve_agent(agent_id)
        if key is None or not key.strip():
            return agent, main_key(agent)
        canonical = normalize_key(key, agent)
        owner = agent_of(canonical) or agent
        if agent_id is not None and owner != agent:
            raise UsageError(f"agentId {agent} does not match the session key {canonical}")
        return self.resolve_agent(owner), canonical

    # ---- runs: submit, wait, abort ---------------------------------------------

    async def submit(
        self,
        agent_id: str | None,
        session_key: str | None,
        text: str,
        *,
        run_id: str | None = None,
        origin: dict[str, Any] | None = None,
        timeout: float | None = None,
        channel: str = "webchat",
        extra_system: str | None = None,
        watcher: Watcher | None = None,
    ) -> Run:
        """Queue one turn; returns once the user message is durably in the transcript."""
        if self.state != State.RUNNING:
            raise AgentRunError("the agent runtime is not running")
        agent, key = self.session_key(session_key, agent_id)
        run = Run(
            id=run_id or str(uuid.uuid4()),
            agent_id=agent,
            session_key=key,
            message=text,
            timeout=timeout or float(self.config.agents.defaults.timeout_seconds),
            channel=channel,
            origin=origin,
            extra_system=extra_system,
        )
        run.mark("accepted")
        loop = asyncio.get_running_loop()
        run.ready, run.done = loop.create_future(), loop.create_future()
        if watcher is not None:
            run.watchers.append(watcher)
        lane = self._lanes.setdefault(key, _Lane())
        lane.queue.append(run)  # the order of submit calls is the order of runs
        self._remember(run)
        try:
            store = self.store(agent)
            fields: dict[str, Any] = {"channel": channel}
            if origin:
                fields["origin"] = origin
            entry = await store.ensure(key, **fields)
            store.write(entry, ctxmod.user_entry(text, run.id))
        except BaseException as exc:
            with contextlib.suppress(ValueError):
                lane.queue.remove(run)
            self._runs.pop(run.id, None)
            run.ready.set_result(False)
            run.done.cancel()
            if isinstance(exc, OSError):
                raise AgentRunError(f"cannot record the message: {exc}") from exc
            raise
        # The run may start while the fsync runs; the caller's ack waits for it.
        run.ready.set_result(True)
        if lane.worker is None or lane.worker.done():
            lane.worker = asyncio.create_task(self._drain(key, lane), name=f"lane {key}")
        try:
            await store.sync(entry)
        except OSError as exc:
            await self.abort(key, run.id, reason="transcript write failed")
            raise AgentRunError(f"cannot record the message: {exc}") from exc
        return run

    async def respond(
        self, agent_id: str, session_key: str, text: str, *, origin: dict[str, Any] | None = None
    ) -> str:
        """Run one turn (after any run already queued on the session); the reply text.

        For channels. Never raises for model trouble: a failed or timed-out run
        returns a short explanation (starting with ⚠️), an aborted run returns "".
        """
        channel = str((origin or {}).get("channel") or (origin or {}).get("provider") or "channel")
        run = await self.submit(agent_id, session_key, text, origin=origin, channel=channel)
        assert run.done is not None
        await asyncio.shield(run.done)
        return run.reply_text()

    def get_run(self, run_id: str) -> Run | None:
        return self._runs.get(run_id)

    def active_run(self, session_key: str) -> Run | None:
        lane = self._lanes.get(session_key)
        return lane.queue[0] if lane and lane.queue else None

    async def wait(self, run_id: str, timeout: float) -> Run | None:
        """The run once finished, or None if it is still going after ``timeout``."""
        run = self._runs.get(run_id)
        if run is None:
            raise NotFoundError(f"unknown runId {run_id}")
        if run.state.finished:
            return run
        assert run.done is not None
        try:
            await asyncio.wait_for(asyncio.shield(run.done), timeout)
        except TimeoutError:
            return None
        return run

    async def abort(
        self, session_key: str, run_id: str | None = None, *, reason: str = "aborted"
    ) -> list[str]:
        """Abort the session's runs (all, or one); returns the aborted run ids.

        The running run is cancelled at once (its partial reply is recorded with
        ``stopReason: "aborted"``); queued ones never start.
        """
        lane = self._lanes.get(session_key)
        if run_id is not None:
            run = self._runs.get(run_id)
            if run is None or run.session_key != session_key:
                raise UsageError(f"run {run_id} does not belong to session {session_key}")
        if lane is None:
            return []
        aborted: list[str] = []
        for run in list(lane.queue):
            if run_id is not None and run.id != run_id:
                continue
            if run.state.finished:
                continue
            run.abort_reason = reason
            aborted.append(run.id)
            if run.task is not None and not run.task.done():
                run.task.cancel()
            elif run.state == RunState.QUEUED:
                lane.queue.remove(run)
                self._finish_queued_abort(run)
        running = [r.task for r in lane.queue if r.id in aborted and r.task and not r.task.done()]
        if running:
            await asyncio.wait(running, timeout=5)
        return aborted

    def _finish_queued_abort(self, run: Run) -> None:
        run.state = RunState.ABORTED
        run.ended_at = now_ms()
        run.stop_reason = "aborted"
        self._chat(run, "aborted", stopReason="aborted")
        self._agent(run, "lifecycle", {"phase": "end", "status": "aborted"})
        self._resolve(run)

    def _remember(self, run: Run) -> None:
        self._runs[run.id] = run
        while len(self._runs) > FINISHED_RUNS_KEPT:
            oldest = next(iter(self._runs.values()))
            if not oldest.state.finished:
                break
            self._runs.popitem(last=False)

    async def _drain(self, key: str, lane: _Lane) -> None:
        while lane.queue:
            run = lane.queue[0]
            assert run.ready is not None
            if not await run.ready or run.state.finished:
                if lane.queue and lane.queue[0] is run:
                    lane.queue.popleft()
                continue
            run.task = asyncio.create_task(self._execute(run), name=f"run {run.id}")
            await asyncio.wait({run.task})
            if lane.queue and lane.queue[0] is run:
                lane.queue.popleft()
        if self._lanes.get(key) is lane and not lane.queue:
            del self._lanes[key]

    # ---- one run -------------------------------------------------------------

    async def _execute(self, run: Run) -> None:
        store = self.store(run.agent_id)
        try:
            async with self._slots:
                run.state = RunState.RUNNING
                run.started_at = now_ms()
                run.mark("started")
                self._agent(run, "lifecycle", {"phase": "start", "startedAt": run.started_at})
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
        except _NotConfigured as exc:
            run.state = RunState.OK
            await self._notice(run, store, exc.text)
        except (ProviderError, _AllFailed) as exc:
            run.state, run.stop_reason = RunState.ERROR, "error"
            run.error = str(exc) if isinstance(exc, _AllFailed) else exc.describe()
            run.error_code = "UNAVAILABLE"
        except Exception as exc:
            self.log.exception("run %s failed", run.id)
            run.state, run.stop_reason = RunState.ERROR, "error"
            run.error = f"internal error: {type(exc).__name__}: {exc}"
            run.error_code = "UNAVAILABLE"
        run.ended_at = now_ms()
        try:
            await self._record_end(run, store)
        except Exception:  # the events below must still go out
            self.log.exception("run %s: recording its end failed", run.id)
        self._finish(run)

    async def _turn(self, run: Run, store: SessionStore) -> None:
        entry = await store.get(run.session_key)
        if entry is None:
            raise AgentRunError(f"session {run.session_key} vanished")
        read = await store.read(entry)
        entries = ordered_messages(read.entries)
        mine = [i for i, e in enumerate(entries) if e.get("runId") == run.id]
        entries = entries[: mine[-1] + 1] if mine else entries
        chain = self._chain_for(run.agent_id, entry)
        if not chain:
            raise _NotConfigured(self._unconfigured_text(None))
        usable = [ref for ref in chain if self._provider_usable(ref)]
        if not usable:
            raise _NotConfigured(self._unconfigured_text(chain))
        spec = self._specs[run.agent_id]
        if spec.id not in self._seeded:
            await asyncio.to_thread(self._seed, spec)
        tools = self._tools
        tool_specs = tuple(
            ToolSpec(t.name, t.description, t.parameters_schema()) for t in tools.values()
        )
        window = self._context_window(usable[0])
        messages: list[Message] = ctxmod.to_messages(entries)
        if read.size > window * 3:  # the file bounds the text: trim only when it may not fit
            messages = ctxmod.fit(messages, window * 3)
        system = build_system_prompt(
            PromptInputs(
                agent_id=run.agent_id,
                workspace=spec.workspace,
                model=str(usable[0]),
                tools=[(t.name, t.description) for t in tools.values()],
                channel=run.channel,
                bootstrap_max_chars=self.config.agents.defaults.bootstrap_max_chars,
                extra=run.extra_system,
            )
        )
        tool_ctx = ToolContext(
            agent_id=run.agent_id,
            session_key=run.session_key,
            run_id=run.id,
            workspace=spec.workspace,
            instance=self.instance,
            config=self.config,
            env=self.env,
            logger=self.log,
            lookup=self._lookup,
        )
        for _step in range(MAX_STEPS):
            finished, ref, provider = await self._call_models(
                run, chain, system, messages, tool_specs
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
            for call in finished.message.tool_calls:
                result = await self._run_tool(run, call, tool_ctx)
                run.pending_calls.pop(call.id, None)
                await store.append(entry, ctxmod.tool_result_entry(result, run.id))
                messages.append(result)
        note = f"(stopped after {MAX_STEPS} tool steps)"
        self._on_text(run, ("\n\n" if run.text else "") + note)

    async def _call_models(
        self,
        run: Run,
        chain: list[ModelRef],
        system: str,
        messages: list[Message],
        tools: tuple[ToolSpec, ...],
    ) -> tuple[Finished, ModelRef, ResolvedProvider]:
        failures: list[str] = []
        order = self.cooldowns.order(chain, str)
        tried_any = False
        for index, (ref, cooling) in enumerate(order):
            if cooling:
                why = f"cooling down {self.cooldowns.cooling(str(ref)):.0f}s"
                self.log.info("run %s: skipping model %s (%s)", run.id, ref, why)
                failures.append(f"{ref}: {why}")
                continue
            provider = self._providers.get(ref.provider)
            if provider is None or not provider.usable:
                why = "unknown provider" if provider is None else "no API key"
                self.log.warning("run %s: model %s unusable (%s)", run.id, ref, why)
                failures.append(f"{ref}: {why}")
                continue
            remaining = [r for r, c in order[index + 1 :] if not c]
            definition = provider.models.get(ref.model)
            request = ModelRequest(
                model=ref.model,
                system=system,
                messages=tuple(messages),
                tools=tools,
                max_tokens=definition.max_tokens if definition else None,
                max_retries=0 if remaining else 2,
                timeout=provider.timeout,
            )
            text_before = run.text
            tried_any = True
            run.mark("requested")
            try:
                client = self._client(provider)
                finished: Finished | None = None
                async for event in client.stream(request):
                    if isinstance(event, TextDelta):
                        self._on_text(run, event.text)
                    elif isinstance(event, Finished):
                        finished = event
                if finished is None:
                    raise ProviderError("malformed", "the stream ended without a result")
            except ProviderError as exc:
                exc.message = scrub(exc.message, provider.api_key)
                failures.append(f"{ref}: {exc.describe()}")
                if exc.failover:
                    wait = self.cooldowns.fail(str(ref), exc.kind, exc.retry_after)
                    self.log.warning(
                        "run %s: model %s failed (%s); cooling down %.0fs%s",
                        run.id,
                        ref,
                        exc.describe(),
                        wait,
                        f"; trying {remaining[0]}" if remaining else "",
                    )
                else:
                    self.log.warning("run %s: model %s failed (%s)", run.id, ref, exc.describe())
                    raise
                if run.text != text_before:  # partial output from the failed model
                    run.text, run.partial = text_before, ""
                    self._agent(run, "assistant", {"text": run.text, "delta": "", "reset": True})
                    self._chat_delta(run, force=True)
                continue
            self.cooldowns.succeed(str(ref))
            if failures:
                self.log.info("run %s: answered by %s after: %s", run.id, ref, "; ".join(failures))
            return finished, ref, provider
        if not tried_any:
            raise _NotConfigured(self._unconfigured_text(chain))
        raise _AllFailed("every model failed: " + "; ".join(failures))

    async def _run_tool(self, run: Run, call: ToolCall, ctx: ToolContext) -> ToolResultMessage:
        self._agent(
            run,
            "tool",
            {
                "phase": "start",
                "name": call.name,
                "toolCallId": call.id,
                "args": dict(call.arguments),
            },
        )
        started = time.perf_counter()
        tool = self._tools.get(call.name)
        is_error = True
        if tool is None:
            text = f"unknown tool {call.name!r}; available: {', '.join(self._tools)}"
        elif call.error:
            text = f"{call.name}: {call.error}"
        else:
            try:
                params = tool.parse(call.arguments)
                text = format_result(await tool.run(ctx, params))
                is_error = False
            except ToolError as exc:
                text = exc.message
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.log.exception("tool %s failed in run %s", call.name, run.id)
                text = f"{call.name} failed: {type(exc).__name__}: {exc}"
        if len(text) > MAX_TOOL_RESULT_CHARS:
            text = text[:MAX_TOOL_RESULT_CHARS] + "\n[... truncated]"
        self._agent(
            run,
            "tool",
            {
                "phase": "result",
                "name": call.name,
                "toolCallId": call.id,
                "isError": is_error,
                "result": text[:MAX_TOOL_EVENT_CHARS],
                "durationMs": int((time.perf_counter() - started) * 1000),
            },
        )
        return ToolResultMessage(call.id, call.name, text, is_error)

    async def _notice(self, run: Run, store: SessionStore, text: str) -> None:
        """Answer with ``text`` without a model (e.g. "no model configured")."""
        self._on_text(run, text)
        run.stop_reason = "notice"
        entry = await store.get(run.session_key)
        if entry is not None:
            message = ctxmod.assistant_entry(
                AssistantMessage(text),
                run.id,
                api=None,
                provider="moltbot",
                model="notice",
                usage=None,
                stop_reason="notice",
            )
            await store.append(entry, message)
        run.partial = ""

    async def _record_end(self, run: Run, store: SessionStore) -> None:
        entry = await store.get(run.session_key)
        if entry is None:
            return
        if run.state in (RunState.ABORTED, RunState.TIMEOUT):
            if run.partial or run.state == RunState.ABORTED:
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
                        **({"errorMessage": run.error} if run.error else {}),
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
                ctxmod.assistant_entry(
                    AssistantMessage(f"⚠️ {run.error}"),
                    run.id,
                    api=None,
                    provider="moltbot",
                    model="error",
                    usage=None,
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

    def _finish(self, run: Run) -> None:
        if run.flush_handle is not None:
            run.flush_handle.cancel()
            run.flush_handle = None
        if run.state in (RunState.OK,):
            self._chat(
                run,
                "final",
                message=self._chat_message(run),
                usage=run.usage(),
                stopReason=run.stop_reason or "stop",
            )
            run.mark("ended")
            self._agent(
                run,
                "lifecycle",
                {
                    "phase": "end",
                    "status": "ok",
                    "endedAt": run.ended_at,
                    "usage": run.usage(),
                    "timings": run.timings(),
                },
            )
            self.log.debug("run %s timings %s", run.id, run.timings())
        elif run.state == RunState.ABORTED:
            self._chat(run, "aborted", message=self._chat_message(run), stopReason="aborted")
            self._agent(
                run,
                "lifecycle",
                {
                    "phase": "end",
                    "status": "aborted",
                    "reason": run.abort_reason,
                    "endedAt": run.ended_at,
                },
            )
        else:
            self._chat(
                run,
                "error",
                errorMessage=run.error,
                stopReason=run.stop_reason,
                message=self._chat_message(run),
            )
            self._agent(
                run,
                "lifecycle",
                {
                    "phase": "error",
                    "status": str(run.state),
                    "error": run.error,
                    "endedAt": run.ended_at,
                },
            )
        self._resolve(run)

    def _resolve(self, run: Run) -> None:
        if run.done is not None and not run.done.done():
            run.done.set_result(run)

    # ---- events ----------------------------------------------------------------

    def _on_text(self, run: Run, delta: str) -> None:
        if run.new_segment:
            run.text += "\n\n"
            run.new_segment = False
        run.text += delta
        run.partial += delta
        run.mark("first")
        self._agent(run, "assistant", {"text": run.text, "delta": delta})
        self._chat_delta(run)

    def _chat_delta(self, run: Run, *, force: bool = False) -> None:
        if run.flush_handle is not None:
            return  # a flush is scheduled; it will carry the newest text
        loop = asyncio.get_running_loop()
        wait = DELTA_INTERVAL_S - (loop.time() - run.last_chat_at)
        if force or wait <= 0:
            self._flush_delta(run)
        else:
            run.flush_handle = loop.call_later(wait, self._flush_delta, run)

    def _flush_delta(self, run: Run) -> None:
        run.flush_handle = None
        if run.state.finished:
            return
        run.last_chat_at = asyncio.get_running_loop().time()
        self._chat(run, "delta", message=self._chat_message(run))

    @staticmethod
    def _chat_message(run: Run) -> dict[str, Any]:
        return {
            "role": "assistant",
            "content": [{"type": "text", "text": run.text}],
            "timestamp": now_ms(),
        }

    def _chat(self, run: Run, state: str, **fields: Any) -> None:
        run.chat_seq += 1
        payload = {
            "runId": run.id,
            "sessionKey": run.session_key,
            "seq": run.chat_seq,
            "state": state,
            **{k: v for k, v in fields.items() if v is not None},
        }
        self._emit(run, "chat", payload, drop_if_slow=state == "delta")

    def _agent(self, run: Run, stream: str, data: dict[str, Any]) -> None:
        run.seq += 1
        payload = {
            "runId": run.id,
            "seq": run.seq,
            "stream": stream,
            "ts": now_ms(),
            "data": data,
            "sessionKey": run.session_key,
        }
        self._emit(run, "agent", payload)

    def _emit(
        self, run: Run, event: str, payload: dict[str, Any], *, drop_if_slow: bool = False
    ) -> None:
        try:
            self.ctx.broadcast(event, payload, drop_if_slow=drop_if_slow)
        except Exception:
            self.log.debug("broadcast of %s failed", event, exc_info=True)
        for watcher in list(run.watchers):
            try:
                watcher(event, payload)
            except Exception:
                self.log.exception("run watcher failed")

    # ---- models ------------------------------------------------------------------

    def _chain_for(self, agent_id: str, entry: SessionEntry | None) -> list[ModelRef]:
        chain = model_chain(self.config, agent_id, self._providers)
        if entry is not None and entry.model_override:
            override = parse_ref(entry.model_override, self.config)
            chain = [override, *(r for r in chain if r != override)]
        return chain

    def _chain_or_none(self, agent_id: str) -> list[ModelRef]:
        try:
            return model_chain(self.config, agent_id, self._providers)
        except ConfigError:
            return []

    def _provider_usable(self, ref: ModelRef) -> bool:
        provider = self._providers.get(ref.provider)
        return provider is not None and provider.usable

    def _context_window(self, ref: ModelRef) -> int:
        provider = self._providers.get(ref.provider)
        definition = provider.models.get(ref.model) if provider else None
        return definition.context_window if definition and definition.context_window else 200_000

    def _client(self, provider: ResolvedProvider) -> Provider:
        client = self._clients.get(provider.id)
        if client is None:
            client = build(
                provider.api, provider.id, provider.base_url, provider.api_key, provider.headers
            )
            self._clients[provider.id] = client
        return client

    def _unconfigured_text(self, chain: list[ModelRef] | None) -> str:
        flag = "" if self.instance.profile == "default" else f" --profile {self.instance.profile}"
        lines = ["I can't answer yet: no AI model is configured for this assistant."]
        if chain:
            for ref in chain:
                provider = self._providers.get(ref.provider)
                if provider is None:
                    lines.append(
                        f'- {ref}: there is no provider "{ref.provider}" '
                        f"(add models.providers.{ref.provider})"
                    )
                elif not provider.usable:
                    lines.append(f"- {ref}: no API key — {provider.missing_key_hint()}")
        lines += [
            "",
            f"To set one up, run `moltbot{flag} onboard`, or set the config keys, e.g.:",
            f"  moltbot{flag} config set agents.defaults.model openai/gpt-4o   "
            "(and export OPENAI_API_KEY)",
            f"  moltbot{flag} config set agents.defaults.model anthropic/claude-opus-4-5   "
            "(and export ANTHROPIC_API_KEY)",
            "For a local server (Ollama, vLLM, LM Studio): models.providers.<id> = "
            '{baseUrl: "http://127.0.0.1:11434/v1", api: "openai-completions", '
            'models: [{id: "llama3.2"}]} and agents.defaults.model = "<id>/llama3.2".',
        ]
        return "\n".join(lines)

    # ---- tools -----------------------------------------------------------------

    def _load_tools(self) -> dict[str, Tool]:
        policy = self.config.tools
        out: dict[str, Tool] = {}
        for name, target in TOOLS.items():
            if not _allowed(name, policy.allow, policy.deny):
                continue
            module_name, _, class_name = target.partition(":")
            try:
                module = importlib.import_module(module_name)
                tool: Tool = getattr(module, class_name)()
            except ModuleNotFoundError as exc:
                if exc.name and module_name.startswith(exc.name):
                    continue  # not built (yet)
                self.log.warning("tool %s unavailable: %s", name, exc)
                continue
            except Exception as exc:
                self.log.warning("tool %s unavailable: %s", name, exc)
                continue
            try:
                if tool.enabled(self.config):
                    out[name] = tool
            except Exception as exc:
                self.log.warning("tool %s unavailable: %s", name, exc)
        return out

    def _seed(self, spec: AgentSpec) -> None:
        """Create a workspace that does not exist yet, with the bootstrap files (unless
        ``agents.defaults.skipBootstrap``). An existing workspace is left as it is."""
        self._seeded.add(spec.id)
        if spec.workspace.exists():
            return
        if self.config.agents.defaults.skip_bootstrap:
            spec.workspace.mkdir(parents=True, exist_ok=True)
            return
        from moltbot.agents.workspace import ensure_workspace

        report = ensure_workspace(spec.workspace)
        self.log.info(
            "workspace %s created for agent %s (%s)",
            spec.workspace,
            spec.id,
            ", ".join(report.created),
        )

    def _lookup(self, name: str) -> Any:
        if name == self.name:
            return self
        return self.ctx.lookup(name)

    # ---- reading -----------------------------------------------------------------

    def agents_list(self) -> dict[str, Any]:
        agents = []
        for spec in self._specs.values():
            identity = read_identity(spec.workspace)
            row: dict[str, Any] = {"id": spec.id}
            name = spec.name or identity.name
            if name:
                row["name"] = name
            if identity.as_dict():
                row["identity"] = identity.as_dict()
            row["workspace"] = str(spec.workspace)
            row["default"] = spec.default
            chain = self._chain_or_none(spec.id)
            if chain:
                row["model"] = str(chain[0])
            agents.append(row)
        return {
            "defaultId": self.resolve_agent(None),
            "mainKey": "main",
            "scope": "per-sender",
            "agents": agents,
        }

    def models_list(self) -> dict[str, Any]:
        return {"models": catalog(self.config, self._providers, list(self._specs))}

    async def list_sessions(
        self,
        agent_id: str | None = None,
        *,
        limit: int | None = None,
        active_minutes: int | None = None,
        search: str | None = None,
        label: str | None = None,
        titles: bool = False,
        last_message: bool = False,
    ) -> list[dict[str, Any]]:
        agents = [self.resolve_agent(agent_id)] if agent_id else list(self._specs)
        rows: list[dict[str, Any]] = []
        cutoff = now_ms() - active_minutes * 60_000 if active_minutes else None
        for agent in agents:
            store = self.store(agent)
            for key, entry in (await store.all()).items():
                if cutoff and entry.updated_at < cutoff:
                    continue
                if label and entry.label != label:
                    continue
                rows.append(self._row(agent, key, entry))
        if search:
            needle = search.lower()
            rows = [
                r
                for r in rows
                if needle in r["key"]
                or needle in (r.get("label") or "").lower()
                or needle in (r.get("displayName") or "").lower()
            ]
        rows.sort(key=lambda r: -int(r.get("updatedAt") or 0))
        if limit:
            rows = rows[:limit]
        if titles or last_message:
            for row in rows:
                store = self.store(row["agentId"])
                first, last = await asyncio.to_thread(peek, store.directory / row.pop("_file"))
                if titles and first:
                    row["derivedTitle"] = _title(first)
                if last_message and last:
                    row["lastMessagePreview"] = _title(ctxmod.text_of(last.get("content")), 120)
        for row in rows:
            row.pop("_file", None)
        return rows

    @staticmethod
    def _row(agent: str, key: str, entry: SessionEntry) -> dict[str, Any]:
        from moltbot.sessions.keys import kind_of

        data = entry.dump()
        row: dict[str, Any] = {"key": key, "agentId": agent, "kind": kind_of(key), **data}
        row["_file"] = (
            Path(entry.session_file).name if entry.session_file else f"{entry.session_id}.jsonl"
        )
        return row

    async def history(self, session_key: str, limit: int = 200) -> dict[str, Any]:
        agent, key = self.session_key(session_key)
        store = self.store(agent)
        entry = await store.get(key)
        if entry is None:
            return {"sessionKey": key, "messages": []}
        items = [i for i in (ctxmod.history_item(e) for e in await store.messages(entry)) if i]
        items = items[-limit:]
        import json

        size = sum(len(json.dumps(i, default=str)) for i in items)
        while items and size > HISTORY_MAX_BYTES:
            size -= len(json.dumps(items.pop(0), default=str))
        out: dict[str, Any] = {"sessionKey": key, "sessionId": entry.session_id, "messages": items}
        if entry.thinking_level:
            out["thinkingLevel"] = entry.thinking_level
        return out

    async def inject(self, session_key: str, text: str, label: str | None = None) -> dict[str, Any]:
        """Append an assistant note to the transcript (no run); broadcast it as final."""
        agent, key = self.session_key(session_key)
        store = self.store(agent)
        entry = await store.ensure(key)
        extra = {"label": label} if label else {}
        written = await store.append(
            entry,
            ctxmod.assistant_entry(
                AssistantMessage(text),
                None,
                api=None,
                provider="moltbot",
                model="inject",
                usage=None,
                stop_reason="injected",
                **extra,
            ),
        )
        await store.touch(key)
        message_id = str(written["id"])
        payload = {
            "runId": f"inject-{message_id}",
            "sessionKey": key,
            "seq": 1,
            "state": "final",
            "message": {
                "role": "assistant",
                "content": [{"type": "text", "text": text}],
                "timestamp": now_ms(),
            },
            "stopReason": "injected",
        }
        with contextlib.suppress(Exception):
            self.ctx.broadcast("chat", payload)
        return {"ok": True, "messageId": message_id}


class _NotConfigured(Exception):
    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


class _AllFailed(Exception):
    pass


def _allowed(name: str, allow: list[str] | None, deny: list[str]) -> bool:
    lowered = name.lower()
    if any(fnmatch.fnmatch(lowered, pattern.lower()) for pattern in deny):
        return False
    if allow is None:
        return True
    return any(fnmatch.fnmatch(lowered, pattern.lower()) for pattern in allow)


def _title(text: str, limit: int = 60) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def embedded(
    instance: Any,
    config: Config,
    env: Mapping[str, str],
    *,
    broadcast: Any = None,
    logger: logging.Logger | None = None,
) -> AgentRuntime:
    """An :class:`AgentRuntime` without a gateway (``moltbot agent --local``, tests)."""
    context = SubsystemContext(
        instance=instance,
        config=config,
        env=env,
        token=None,
        password=None,
        broadcast=broadcast or (lambda event, payload=None, **kw: None),
        logger=logger or logging.getLogger("moltbot.agents"),
    )
    return AgentRuntime(context)
