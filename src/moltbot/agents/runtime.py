"""The agent runtime: runs agent turns for every session of every agent.

It is the ``agents`` subsystem of the gateway (constructed with a
:class:`~moltbot.lifecycle.SubsystemContext`) and also runs embedded
without a gateway (``moltbot agent --local``): build it with a context whose
``broadcast`` prints or collects events.

Runs of one session execute one at a time in the order they were submitted
(later messages wait in the session's queue, :mod:`.lanes`); at most
``agents.defaults.maxConcurrent`` runs execute at once over all sessions
(:mod:`.turn`). A submitted message is written to the transcript (fsync'd)
before :meth:`AgentRuntime.submit` returns, so an acknowledged message survives
a crash. Each run reports its progress as ``agent`` and ``chat`` events
(:mod:`.events`).

Change never breaks a turn: a reconfigure applies to runs that start later
(runs in flight keep their tools and provider clients); a restart first
drains (:meth:`AgentRuntime.drain`) — no new runs, the ones in flight get a grace
period, the rest end ``aborted: gateway restarting`` with their partial reply
kept — and a run the process died in (``kill -9``) is marked interrupted in its
session at the next start (:mod:`moltbot.sessions.inflight`).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, overload

from moltbot.agents import context as ctxmod
from moltbot.agents import views
from moltbot.agents.compaction import Compactor
from moltbot.agents.control import SessionControl
from moltbot.agents.events import RunEvents
from moltbot.agents.lanes import SessionLanes
from moltbot.agents.model_pool import ModelPool
from moltbot.agents.models import catalog
from moltbot.agents.roster import AgentSpec, agent_specs, default_agent_id
from moltbot.agents.run import (
    RESTARTING,
    STOPPING,
    AgentRunError,
    Run,
    RunState,
    UnknownAgent,
    Watcher,
)
from moltbot.agents.system_events import SystemEvents, with_events
from moltbot.agents.tools import Tool
from moltbot.agents.tools.confine import protected_paths
from moltbot.agents.tools.loading import load_tools
from moltbot.agents.transcribe import transcribe_all
from moltbot.agents.turn import TurnRunner
from moltbot.agents.usage import UsageLedger
from moltbot.errors import RetryLaterError, UsageError
from moltbot.instance.workspace import seed_workspace
from moltbot.lifecycle import State, SubsystemContext, SubsystemKey
from moltbot.sessions.inflight import RunJournal
from moltbot.sessions.keys import MAIN_KEY, agent_of, main_key, normalize_key
from moltbot.sessions.media import MediaStore, StoredMedia
from moltbot.sessions.origin import Origin
from moltbot.sessions.store import SessionEntry, SessionStore

if TYPE_CHECKING:
    from moltbot.agents.memory import MemoryIndex
    from moltbot.config.schema import Config

__all__ = ["AgentRunError", "AgentRuntime", "embedded"]

PROTECTED_TTL_S = 30.0
S = TypeVar("S")


class AgentRuntime(SessionControl):
    """See the module docstring. ``name = "agents"`` in the gateway. The session
    operations of chat commands come from :class:`SessionControl`."""

    name = "agents"

    def __init__(self, context: SubsystemContext) -> None:
        self.ctx = context
        self.instance = context.instance
        self.config: Config = context.config
        self.env: Mapping[str, str] = context.env
        self.log = context.logger
        self.state = State.CREATED
        self.events = RunEvents(context.broadcast, self.log)
        self.models = ModelPool(self.instance, self.env, self.log)
        self.tools: dict[str, Tool] = {}
        self.compactor = Compactor(self)
        self.usage_ledger = UsageLedger()
        self._memory: dict[str, MemoryIndex] = {}
        self._usage_lock = asyncio.Lock()
        self._runner = TurnRunner(self, self.config.agents.defaults.max_concurrent)
        self._lanes = SessionLanes(self._runner.execute, self.events)
        self._stores: dict[str, SessionStore] = {}
        self._journals: dict[str, RunJournal] = {}
        self._awaited: dict[str, asyncio.Future[None]] = {}
        """``agent.wait`` for a run id not submitted yet: resolved when it is."""
        self.accepting = False
        """False before start and while draining: :meth:`submit` refuses new runs."""
        self._specs: dict[str, AgentSpec] = {}
        self._seeded: set[str] = set()
        self._warm_task: asyncio.Task[None] | None = None
        self._protected: tuple[float, tuple[Path, ...]] | None = None
        self._protected_lock = asyncio.Lock()
        self.ready = asyncio.Event()
        """Set once :meth:`start` has finished (method handlers wait on it briefly)."""
        self.system_events = SystemEvents()
        """Notes for a session's next turn (cron, wake, hooks): see :mod:`.system_events`."""
        self._load_config(self.config)

    # ---- lifecycle (Subsystem) ---------------------------------------------

    async def start(self) -> None:
        self.state = State.STARTING
        self.tools = load_tools(self.config)
        for spec in self._specs.values():
            await asyncio.to_thread(self._seed, spec)
        await self._mark_interrupted()
        self.state = State.RUNNING
        self.accepting = True
        self.ready.set()
        self._warm_task = asyncio.create_task(
            self.models.warm(list(self._specs)), name="agents warm-up"
        )
        chain = self.models.chain_or_empty(self.resolve_agent(None))
        self.log.info(
            "agents ready: %s; model %s; tools %s",
            ", ".join(self._specs),
            " → ".join(map(str, chain)) if chain else "none configured",
            ", ".join(self.tools),
        )

    async def stop(self) -> None:
        self.state = State.STOPPING
        self.accepting = False
        self.ready.clear()
        if self._warm_task is not None:
            self._warm_task.cancel()
            await asyncio.gather(self._warm_task, return_exceptions=True)
        await self._abort_all(STOPPING)
        memory, self._memory = self._memory, {}
        await asyncio.gather(*(index.stop() for index in memory.values()), return_exceptions=True)
        await self.models.close()
        self.state = State.STOPPED

    async def drain(self, grace: float, reason: str = RESTARTING) -> dict[str, int]:
        """Stop taking runs, let the ones queued or running finish for up to ``grace``
        seconds, then abort the rest with ``reason`` (their partial replies are kept,
        marked interrupted). Returns ``{"inFlight", "aborted"}``."""
        self.accepting = False
        in_flight = len(self._lanes.unfinished())
        if in_flight:
            self.log.info("waiting up to %gs for %d agent run(s) to finish", grace, in_flight)
        aborted = 0
        if not await self._lanes.wait_idle(grace):
            aborted = await self._abort_all(reason)
            self.log.warning("aborted %d agent run(s): %s", aborted, reason)
        return {"inFlight": in_flight, "aborted": aborted}

    async def _abort_all(self, reason: str) -> int:
        """Abort every run; a queued one gets its aborted entry here (it never ran)."""
        unfinished = len(self._lanes.unfinished())
        for run in await self._lanes.close(reason=reason):
            try:
                await self._runner.record_end(run, self.store(run.agent_id))
            except Exception:
                self.log.exception("run %s: recording its abort failed", run.id)
        return unfinished

    async def _mark_interrupted(self) -> None:
        """Write an "interrupted" note into each session whose run the last process
        died in (its mark in the run journal was never cleared)."""
        for agent_id in self._specs:
            journal = self.journal(agent_id)
            marks = await asyncio.to_thread(journal.left_behind)
            for mark in marks:
                try:
                    await self._interrupted_note(agent_id, mark.session_key, mark.run_id)
                except Exception:
                    self.log.exception("run %s: marking it interrupted failed", mark.run_id)
                    continue
                journal.unmark(mark.run_id)

    async def _interrupted_note(self, agent_id: str, key: str, run_id: str) -> None:
        store = self.store(agent_id)
        entry = await store.get(key)
        if entry is None:
            return
        read = await store.read(entry)
        for item in read.entries:
            message = item.get("message")
            if (
                item.get("runId") == run_id
                and isinstance(message, dict)
                and message.get("role") == "assistant"
                and message.get("stopReason") != "toolUse"
            ):
                return  # its end was recorded; only the mark was left
        text = "⚠️ interrupted: the gateway stopped before this reply was finished"
        note = ctxmod.note_entry(
            text,
            run_id,
            model="interrupted",
            stop_reason="error",
            errorMessage="interrupted: the gateway stopped during this turn",
            interrupted=True,
        )
        await store.append(entry, note)
        await store.touch(key, aborted_last_run=True)
        self.log.warning("session %s: run %s was interrupted by a crash", key, run_id)

    def status(self) -> dict[str, Any]:
        default = self.resolve_agent(None)
        chain = self.models.chain_or_empty(default)
        return {
            "state": str(self.state),
            "defaultAgentId": default,
            "agents": list(self._specs),
            "model": str(chain[0]) if chain else None,
            "fallbacks": [str(r) for r in chain[1:]] if chain else [],
            "activeRuns": self._lanes.count(RunState.RUNNING),
            "queuedRuns": self._lanes.count(RunState.QUEUED),
            "tools": list(self.tools),
            "cooldowns": self.models.cooldowns.snapshot(),
        }

    def memory_index(self, agent_id: str) -> MemoryIndex:
        """The agent's memory index, created (and its file watcher started) on first use.
        A change of the embeddings settings builds a new one at the next use."""
        from moltbot.agents.memory import MemoryIndex  # SQLite, loaded with the first search

        agent = self.resolve_agent(agent_id)
        embedder, embedder_id = self._embedder()
        found = self._memory.get(agent)
        if found is not None and found.embedder_id == (embedder_id or ""):
            return found
        if found is not None:
            asyncio.get_running_loop().create_task(found.stop())
        index = MemoryIndex(
            self._specs[agent].workspace, self.instance.memory_index(agent), embedder, embedder_id
        )
        index.watch()
        self._memory[agent] = index
        return index

    def _embedder(self) -> tuple[Any, str | None]:
        settings = self.config.agents.defaults.memory_search.embeddings
        if settings is None:
            return None, None
        provider = self.models.providers.get(settings.provider)
        if provider is None:
            self.log.warning(
                "memorySearch.embeddings.provider %s is not a configured provider; "
                "memory search uses full text only",
                settings.provider,
            )
            return None, None
        from moltbot.agents.memory import openai_embedder

        embedder = openai_embedder(
            provider.base_url,
            provider.api_key,
            settings.model,
            dict(provider.headers),
            provider.timeout,
        )
        return embedder, f"{provider.id}:{provider.base_url}:{settings.model}"

    def journal(self, agent_id: str) -> RunJournal:
        found = self._journals.get(agent_id)
        if found is None:
            found = self._journals[agent_id] = RunJournal(self.instance.sessions_dir(agent_id))
        return found

    async def reconfigure(self, config: Config) -> bool:
        self._load_config(config)
        self._protected = None
        self.tools = load_tools(self.config)  # runs in flight keep their tool set
        self.models.retire_stale()  # runs in flight keep their own client
        return True

    def _load_config(self, config: Config) -> None:
        self.config = config
        self.models.configure(config)
        self._specs = {spec.id: spec for spec in agent_specs(config, self.instance)}
        self._runner.set_max_concurrent(config.agents.defaults.max_concurrent)

    # ---- agents and sessions -------------------------------------------------

    def resolve_agent(self, agent_id: str | None) -> str:
        """The agent id to use: ``agent_id`` if it exists (lower-cased), else the default.

        Raises :class:`UnknownAgent` for an id that names no agent.
        """
        if agent_id is None or not agent_id.strip():
            return default_agent_id(self.config)
        value = agent_id.strip().lower()
        if value not in self._specs:
            raise UnknownAgent(
                f"unknown agent {agent_id!r}; agents: {', '.join(self._specs)}",
                hint="add it with `moltbot agents add`",
            )
        return value

    def agent_ids(self) -> list[str]:
        return list(self._specs)

    def workspace(self, agent_id: str) -> Path:
        return self._specs[self.resolve_agent(agent_id)].workspace

    async def agent_spec(self, agent_id: str) -> AgentSpec:
        """The agent's spec; its workspace is created on first use."""
        spec = self._specs[agent_id]
        if spec.id not in self._seeded:
            await asyncio.to_thread(self._seed, spec)
        return spec

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

    async def protected_paths(self) -> tuple[Path, ...]:
        """Places no tool may reach: this instance's state dir and config and every other
        instance's (host registry), re-read at most every :data:`PROTECTED_TTL_S`."""
        async with self._protected_lock:
            now = time.monotonic()
            if self._protected is None or now - self._protected[0] > PROTECTED_TTL_S:
                paths = await asyncio.to_thread(protected_paths, self.instance, self.env)
                self._protected = (now, paths)
            return self._protected[1]

    @overload
    def lookup(self, key: SubsystemKey[S], /) -> S | None: ...

    @overload
    def lookup(self, key: str, /) -> Any: ...

    def lookup(self, key: str, /) -> Any:
        """Another running subsystem for the tools (``AGENTS`` is this runtime itself)."""
        return self if key == self.name else self.ctx.lookup(key)

    def _seed(self, spec: AgentSpec) -> None:
        self._seeded.add(spec.id)
        skip = self.config.agents.defaults.skip_bootstrap
        report = seed_workspace(spec.workspace, skip_bootstrap=skip)
        if report is not None:
            self.log.info(
                "workspace %s created for agent %s (%s)",
                spec.workspace,
                spec.id,
                ", ".join(report.created),
            )

    # ---- runs: submit, wait, abort ---------------------------------------------

    async def submit(
        self,
        agent_id: str | None,
        session_key: str | None,
        text: str,
        *,
        run_id: str | None = None,
        origin: Origin | None = None,
        timeout: float | None = None,
        channel: str = "webchat",
        extra_system: str | None = None,
        watcher: Watcher | None = None,
        media: Sequence[StoredMedia] = (),
    ) -> Run:
        """Queue one turn; returns once the user message is durably in the transcript.

        System events queued for the session go in front of ``text``. A message from
        a direct chat (``origin`` with ``channel``/``to``) records that chat as the
        agent's last route (``lastChannel``/``lastTo`` of its main session).
        ``media`` are attachments already stored in the session's media dir
        (:meth:`media_store`); audio among them is transcribed first when
        ``tools.media.audio`` names a model. Raises :class:`RetryLaterError` while
        the gateway restarts (nothing recorded).
        """
        if self.state == State.RUNNING and not self.accepting:
            raise RetryLaterError(
                "the gateway is restarting; send the message again in a moment",
                retry_after=2.0,
            )
        if self.state != State.RUNNING:
            raise AgentRunError("the agent runtime is not running")
        agent, key = self.session_key(session_key, agent_id)
        if media:
            media = await transcribe_all(media, self.config, self.models, self.log)
        events = self.system_events.drain(key)
        text = with_events(events, text)
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
        lane = self._lanes.add(run)  # the order of submit calls is the order of runs
        appeared = self._awaited.pop(run.id, None)
        if appeared is not None and not appeared.done():
            appeared.set_result(None)
        try:
            store = self.store(agent)
            fields: dict[str, Any] = {"channel": channel}
            if origin:
                fields["origin"] = origin
            entry = await store.ensure(key, **fields)
            store.write(entry, ctxmod.user_entry(text, run.id, media))
            journal = self.journal(agent)
            journal.mark(run.id, key)
            run.done.add_done_callback(lambda _done: journal.unmark(run.id))
        except BaseException as exc:
            self.system_events.restore(key, events)
            self._lanes.withdraw(lane, run)
            run.ready.set_result(False)
            run.done.cancel()
            if isinstance(exc, OSError):
                raise AgentRunError(f"cannot record the message: {exc}") from exc
            raise
        # The run may start while the fsync runs; the caller's ack waits for it.
        run.ready.set_result(True)
        self._lanes.wake(lane)
        try:
            await store.sync(entry)
        except OSError as exc:
            await self.abort(key, run.id, reason="transcript write failed")
            raise AgentRunError(f"cannot record the message: {exc}") from exc
        if origin is not None and origin.chat_type == "direct":
            await self._remember_route(agent, origin)
        return run

    async def _remember_route(self, agent_id: str, origin: Origin) -> None:
        """Record the direct chat as the agent's last route (an index write only when it
        changed; a failure is logged, never fails the turn)."""
        route = {
            "last_channel": origin.channel,
            "last_to": origin.to,
            "last_account_id": origin.account_id,
            "last_thread_id": origin.thread_id,
        }
        if not route["last_channel"] or not route["last_to"]:
            return
        key = main_key(agent_id)
        store = self.store(agent_id)
        current = await store.get(key)
        if current is not None and all(getattr(current, k) == v for k, v in route.items()):
            return

        def apply(entry: SessionEntry | None) -> SessionEntry:
            if entry is None:
                return SessionEntry(session_id=str(uuid.uuid4()), **route)
            return entry.model_copy(update=route)

        try:
            await store.update(key, apply)
        except Exception:
            self.log.exception("recording the last route of agent %s failed", agent_id)

    async def respond(
        self,
        agent_id: str,
        session_key: str,
        text: str,
        *,
        origin: Origin | None = None,
        on_accepted: Callable[[], None] | None = None,
        media: Sequence[StoredMedia] = (),
        on_text: Callable[[str], None] | None = None,
    ) -> str:
        """Run one turn (after any run already queued on the session); the reply text.

        For channels. ``on_accepted()`` is called once the message is durably in the
        transcript. Never raises for model trouble: a failed or timed-out run
        returns a short explanation (starting with ⚠️), an aborted run returns ""
        (one the gateway interrupted says so). Raises :class:`RetryLaterError`
        while the gateway restarts. A group's ``systemPrompt`` (``origin``'s
        ``group_system_prompt``) is added to the system prompt of this turn.
        ``on_text(text)`` gets the reply so far each time the model writes more.
        """
        watcher: Watcher | None = None
        if on_text is not None:

            def watcher(event: str, payload: dict[str, Any]) -> None:
                if event == "agent" and payload.get("stream") == "assistant":
                    on_text(str(payload["data"].get("text") or ""))

        run = await self.submit(
            agent_id,
            session_key,
            text,
            origin=origin,
            channel=(origin.channel if origin else None) or "channel",
            extra_system=origin.group_system_prompt if origin else None,
            media=media,
            watcher=watcher,
        )
        if on_accepted is not None:
            on_accepted()
        assert run.done is not None
        await asyncio.shield(run.done)
        entry = await self.store(run.agent_id).get(run.session_key)
        return run.reply_text(entry.verbose_level if entry else None)

    def media_store(self, agent_id: str) -> MediaStore:
        """Where the attachments of ``agent_id``'s sessions are stored."""
        return MediaStore(self.instance.sessions_dir(self.resolve_agent(agent_id)))

    async def resolve_media(self, agent_id: str, item: str) -> str:
        """An outbound file the agent named (a ``MEDIA:`` line, the ``message`` tool):
        an http(s) URL as is, or the real path of a file inside the agent's workspace
        (not in a protected place) or among its sessions' stored media. Raises
        :class:`~moltbot.agents.tools.ToolError` saying why a path is refused."""
        from moltbot.agents.tools.confine import Confinement, own_paths

        if item.startswith(("http://", "https://")):
            return item
        agent = self.resolve_agent(agent_id)
        spec = await self.agent_spec(agent)
        media_root = self.media_store(agent).root
        raw = str(Path(item).expanduser()) if item.startswith("~") else item
        stored = Confinement.build(media_root, (), "the stored media")
        if stored.violation(stored.locate(raw, spec.workspace)) is None:
            real = stored.locate(raw, spec.workspace)
        else:
            protected = (*own_paths(self.instance), *await self.protected_paths())
            real = Confinement.build(spec.workspace, protected).resolve(raw)
        if not real.is_file():
            from moltbot.agents.tools import ToolError

            raise ToolError(f"{item}: not a file")
        return str(real)

    def get_run(self, run_id: str) -> Run | None:
        return self._lanes.get(run_id)

    def active_run(self, session_key: str) -> Run | None:
        """The session's running run, else its next queued one (heartbeats skip a busy
        main session)."""
        return self._lanes.active(session_key)

    async def wait(self, run_id: str, timeout: float) -> Run | None:
        """The run once finished, or None if it is still going after ``timeout``."""
        deadline = asyncio.get_running_loop().time() + timeout
        run = self._lanes.get(run_id)
        if run is None:
            # as upstream: a run not known (yet) may still start; else "timeout"
            appeared = self._awaited.setdefault(run_id, asyncio.get_running_loop().create_future())
            try:
                await asyncio.wait_for(asyncio.shield(appeared), timeout)
            except TimeoutError:
                return None
            finally:
                if self._awaited.get(run_id) is appeared and appeared.done():
                    self._awaited.pop(run_id, None)
            run = self._lanes.get(run_id)
            if run is None:
                return None
        if run.state.finished:
            return run
        assert run.done is not None
        try:
            remaining = max(0.0, deadline - asyncio.get_running_loop().time())
            await asyncio.wait_for(asyncio.shield(run.done), remaining)
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
        return await self._lanes.abort(session_key, run_id, reason=reason)

    # ---- reading -----------------------------------------------------------------

    def agents_list(self) -> dict[str, Any]:
        return {
            "defaultId": self.resolve_agent(None),
            "mainKey": MAIN_KEY,
            "scope": "per-sender",
            "agents": views.agent_rows(self._specs.values(), self.models.chain_or_empty),
        }

    def models_list(self) -> dict[str, Any]:
        """The configured catalogue (providers' declared models, ``agents.defaults.models``,
        every model an agent refers to), without asking any provider."""
        return {"models": catalog(self.config, self.models.providers, list(self._specs))}

    async def known_models(self) -> dict[str, Any]:
        """:meth:`models_list` plus what each usable provider's ``/models`` lists
        (asked at most every 5 minutes; a provider that does not answer in 5 s adds
        nothing, and says why in the log)."""
        rows = self.models_list()["models"]
        seen = {(r["provider"], r["id"]) for r in rows}
        for provider_id, ids in (await self.models.known()).items():
            for model_id in ids:
                if (provider_id, model_id) not in seen:
                    seen.add((provider_id, model_id))
                    rows.append({"id": model_id, "name": model_id, "provider": provider_id})
        return {"models": rows}

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
        return await views.session_rows(
            agents,
            self.store,
            limit=limit,
            active_minutes=active_minutes,
            search=search,
            label=label,
            titles=titles,
            last_message=last_message,
        )

    async def history(
        self, session_key: str, limit: int = 200, before: str | None = None
    ) -> dict[str, Any]:
        agent, key = self.session_key(session_key)
        return await views.history(self.store(agent), key, limit, before)

    async def inject(
        self,
        session_key: str,
        text: str,
        label: str | None = None,
        *,
        run_id: str | None = None,
    ) -> dict[str, Any]:
        """Append an assistant note to the transcript (no run); broadcast it as final
        (with ``run_id`` when it answers a client's ``chat.send``)."""
        agent, key = self.session_key(session_key)
        store = self.store(agent)
        entry = await store.ensure(key)
        extra = {"label": label} if label else {}
        note = ctxmod.note_entry(text, None, model="inject", stop_reason="injected", **extra)
        written = await store.append(entry, note)
        await store.touch(key)
        message_id = str(written["id"])
        self.events.injected(key, message_id, text, run_id=run_id)
        return {"ok": True, "messageId": message_id}


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
