"""What one running gateway knows: instance, config, clients, subsystems, events.

Method handlers reach the gateway only through this object (``call.runtime``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import platform
import socket
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, overload

from moltbot import __version__
from moltbot.agents.roster import agent_specs, default_agent_id
from moltbot.config.store import ConfigSnapshot
from moltbot.devices.nodes import NodePairing
from moltbot.devices.pairing import DevicePairing
from moltbot.devices.voicewake import VoiceWake
from moltbot.errors import MoltbotError
from moltbot.gateway import protocol
from moltbot.gateway.auth import AuthSettings
from moltbot.gateway.state import DedupeCache, Presence, now_ms
from moltbot.gateway.status import (
    AgentHealth,
    AgentSessions,
    HealthPayload,
    Heartbeat,
    InstanceStatus,
    SessionDefaults,
    SessionRow,
    SessionsStatus,
    SessionsSummary,
    StatusPayload,
    wire,
)
from moltbot.lazy import load
from moltbot.lifecycle import Drains, State, Subsystem, SubsystemContext, SubsystemKey
from moltbot.security.shield import Shield
from moltbot.sessions.store import SessionStore
from moltbot.subsystems import AGENTS, CHANNELS

if TYPE_CHECKING:
    from moltbot.config.schema import Config
    from moltbot.gateway.connection import Connection
    from moltbot.gateway.methods.registry import MethodTable
    from moltbot.instance.resolve import Instance
    from moltbot.onboard.remote import WizardSession

log = logging.getLogger("moltbot.gateway")
S = TypeVar("S")

STARTUP_WAIT_S = 15.0
"""How long a request waits for the subsystems of a gateway that is still starting."""
PRESENCE_COALESCE_S = 0.05
HEALTH_COALESCE_S = 0.25

# name -> "module:Class"; imported when the gateway starts them.
SUBSYSTEMS: dict[str, str] = {
    # rescue first: it starts without waiting, so its /rescue commands are answered from
    # the gateway's first request on (before the agents, which they must not depend on)
    "rescue": "moltbot.rescue.service:RescueService",
    "agents": "moltbot.agents.runtime:AgentRuntime",
    "channels": "moltbot.channels.manager:ChannelManager",
    "browser": "moltbot.browser.service:BrowserService",
    "canvas": "moltbot.canvas.host:CanvasHost",
    "nodes": "moltbot.devices.registry:NodeRegistry",
    "exec.approvals": "moltbot.devices.approver:ExecApprovals",
    "heartbeat": "moltbot.automation.heartbeat:HeartbeatRunner",
    "cron": "moltbot.automation.service:CronService",
}


class GatewayRuntime:
    def __init__(
        self,
        instance: Instance,
        snapshot: ConfigSnapshot,
        env: Mapping[str, str],
        auth: AuthSettings,
        methods: MethodTable,
        shield: Shield | None = None,
    ) -> None:
        self.instance = instance
        self.shield = shield or Shield()
        self.shield.connections.trusted_proxies = tuple(snapshot.config.gateway.trusted_proxies)
        limit = snapshot.config.gateway.auth.rate_limit
        self.shield.throttle.burst, self.shield.throttle.refill_s = (
            limit.attempts,
            limit.refill_seconds,
        )
        self.snapshot = snapshot
        self.env = env
        self.auth = auth
        self.methods = methods
        self.version = __version__
        self.started_at_ms = now_ms()
        self.started_monotonic = time.monotonic()
        self.connections: dict[str, Connection] = {}
        self.presence = Presence()
        self.dedupe = DedupeCache()
        self.devices = DevicePairing(instance.devices_dir)
        self.node_pairing = NodePairing(instance.nodes_dir)
        self.voicewake = VoiceWake(instance.settings_dir / "voicewake.json")
        self.subsystems: dict[str, Subsystem] = {}
        self._closing: set[asyncio.Task[None]] = set()
        self._timers: list[asyncio.TimerHandle] = []
        self.wizards: dict[str, WizardSession] = {}
        """Remote onboarding sessions (``wizard.*``) by id."""
        self.subsystem_errors: dict[str, str] = {}
        self._stores: dict[str, SessionStore] = {}
        self.subsystems_started = asyncio.Event()
        """Set once every enabled subsystem has been started (or has failed to)."""
        self.system_events: list[str] = []
        self.seq = 0
        self.state_version = {"presence": 1, "health": 1}
        self.health_cache: HealthPayload | None = None
        self.health_cache_at = 0.0
        self._presence_pending = False
        self._health_pending = False
        self.bind_host = "127.0.0.1"
        self.handshake_timeout_s = _handshake_timeout(env)
        self.state = State.CREATED
        self.presence.upsert(
            "gateway-self",
            {
                "host": socket.gethostname(),
                "version": self.version,
                "platform": sys_platform(),
                "mode": "gateway",
                "reason": "self",
                "instanceId": instance.profile,
            },
        )

    @property
    def config(self) -> Config:
        return self.snapshot.config

    @property
    def uptime_ms(self) -> int:
        return int((time.monotonic() - self.started_monotonic) * 1000)

    # events -----------------------------------------------------------------

    def broadcast(self, event: str, payload: Any = None, *, drop_if_slow: bool = False) -> None:
        self.seq += 1
        state_version = None
        if event in ("presence", "health"):
            self.state_version[event] += 1
            state_version = dict(self.state_version)
        data = protocol.dumps(
            protocol.event(event, payload, seq=self.seq, state_version=state_version)
        )
        drop = drop_if_slow or event in protocol.DROP_IF_SLOW
        guarded = event.startswith(("device.pair.", "node.pair.", "exec.approval."))
        for conn in list(self.connections.values()):
            if conn.role == "node" and guarded:
                continue
            if guarded and not conn.has_scope(
                "operator.pairing" if "pair" in event else "operator.approvals"
            ):
                continue
            conn.enqueue_event(data, drop_if_slow=drop)

    def disconnect_device(self, device_id: str, role: str, reason: str) -> int:
        """Close every connection of ``device_id`` in ``role`` (1008 ``reason``) at once;
        returns how many. Their in-flight requests are cancelled with them."""
        closing = [
            conn
            for conn in self.connections.values()
            if conn.device_id == device_id and conn.role == role
        ]
        for conn in closing:
            self.connections.pop(conn.conn_id, None)
            task = asyncio.get_running_loop().create_task(conn.close(protocol.CLOSE_POLICY, reason))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
        return len(closing)

    def restart_later(self, delay_s: float, reason: str) -> None:
        """Restart the gateway in-process after ``delay_s`` (SIGUSR1, drained as any
        restart). Forgotten if this runtime stops first (a restart already happened)."""
        import signal

        def fire() -> None:
            log.info("restarting in-process (%s)", reason)
            os.kill(os.getpid(), signal.SIGUSR1)

        self._timers.append(asyncio.get_running_loop().call_later(delay_s, fire))

    def presence_changed(self) -> None:
        """Broadcast the presence list soon: changes within :data:`PRESENCE_COALESCE_S`
        go out as one event (a burst of N connects costs N events, not N² frames)."""
        if self._presence_pending:
            return
        self._presence_pending = True
        asyncio.get_running_loop().call_later(PRESENCE_COALESCE_S, self._flush_presence)

    def _flush_presence(self) -> None:
        self._presence_pending = False
        self.broadcast("presence", {"presence": self.presence.entries()})

    def request_health_refresh(self) -> None:
        """Refresh and broadcast health within :data:`HEALTH_COALESCE_S` (once per burst)."""
        if self._health_pending:
            return
        self._health_pending = True

        def refresh() -> None:
            self._health_pending = False
            self.refresh_health()

        asyncio.get_running_loop().call_later(HEALTH_COALESCE_S, refresh)

    # subsystems -------------------------------------------------------------

    @overload
    def subsystem(self, key: SubsystemKey[S]) -> S | None: ...

    @overload
    def subsystem(self, key: str) -> Any: ...

    def subsystem(self, key: str) -> Any:
        """The subsystem under ``key`` (:mod:`moltbot.subsystems`) if it is running."""
        sub = self.subsystems.get(key)
        return sub if sub is not None and sub.state == State.RUNNING else None

    async def started(self, key: SubsystemKey[S], wait: float = STARTUP_WAIT_S) -> S | None:
        """The subsystem under ``key`` once running: a request that arrives while the
        gateway is still starting its subsystems waits for them (at most ``wait`` s)
        instead of being told the subsystem is not running."""
        found = self.subsystem(key)
        if found is None and self.state == State.RUNNING and not self.subsystems_started.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.subsystems_started.wait(), wait)
            found = self.subsystem(key)
        return found

    def registered(self, key: SubsystemKey[S]) -> S | None:
        """The subsystem under ``key`` in whatever state (``None``: never built)."""
        return self.subsystems.get(key)  # type: ignore[return-value]

    def subsystem_context(self, name: str) -> SubsystemContext:
        return SubsystemContext(
            instance=self.instance,
            config=self.config,
            env=self.env,
            token=self.auth.token,
            password=self.auth.password,
            broadcast=self.broadcast,
            logger=logging.getLogger(f"moltbot.{name}"),
            lookup=self.subsystem,
            shield=self.shield,
            bind_host=self.bind_host,
        )

    def enabled_subsystems(self) -> list[str]:
        skip = {
            "canvas": self.env_flag("SKIP_CANVAS_HOST") or not self.config.canvas_host.enabled,
            "browser": self.env_flag("SKIP_BROWSER_CONTROL_SERVER")
            or not self.config.browser.enabled,
            "channels": self.env_flag("SKIP_CHANNELS"),
        }
        return [name for name in SUBSYSTEMS if not skip.get(name, False)]

    def env_flag(self, name: str) -> bool:
        from moltbot.instance import env as envvars

        return envvars.flag(self.env, name) is not None

    async def start_subsystems(self) -> None:
        """Start every enabled subsystem in turn, then set :attr:`subsystems_started`. The gateway
        runs this as a task once its port answers, so a client's handshake never waits
        for a sidecar."""
        try:
            for name in self.enabled_subsystems():
                await self.start_subsystem(name)
        finally:
            self.subsystems_started.set()

    async def start_subsystem(self, name: str) -> None:
        """Build and start subsystem ``name``. Never raises: whatever goes wrong (its
        module missing or broken, its ``start`` failing) marks it ``FAILED`` with the
        reason, logged at error level, and the rest of the gateway keeps serving."""
        try:
            # imported in a thread: the event loop keeps answering meanwhile
            cls = await asyncio.to_thread(load, SUBSYSTEMS[name], f"subsystem {name}")
            sub = cls(self.subsystem_context(name))
            self.subsystems[name] = sub
            await sub.start()
            self.subsystem_errors.pop(name, None)
            log.info("%s started", name)
        except Exception as exc:  # one failing subsystem never takes the gateway down
            message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
            self.subsystem_errors[name] = message
            if name in self.subsystems:
                self.subsystems[name].state = State.FAILED
            trace = exc.__cause__ if isinstance(exc, MoltbotError) else exc  # a bug: show it
            log.error("%s failed to start: %s", name, message, exc_info=trace)

    async def stop_subsystems(self) -> None:
        for timer in self._timers:
            timer.cancel()
        for name in reversed(list(self.subsystems)):
            sub = self.subsystems.pop(name)
            try:
                await asyncio.wait_for(sub.stop(), 5.0)
            except Exception as exc:
                log.warning("%s did not stop cleanly: %s", name, exc)

    async def reconfigure_subsystems(self) -> None:
        for name, sub in list(self.subsystems.items()):
            try:
                applied = await sub.reconfigure(self.config)
            except Exception as exc:
                log.warning("%s reconfigure failed: %s", name, exc)
                applied = False
            if not applied:
                log.info("restarting %s for the new config", name)
                try:
                    if isinstance(sub, Drains):  # let operations in flight finish first
                        await sub.drain(self.config.gateway.restart_grace_seconds)
                    await sub.stop()
                except Exception as exc:
                    log.warning("%s did not stop cleanly: %s", name, exc)
                self.subsystems.pop(name, None)
                await self.start_subsystem(name)

    async def drain_subsystems(self, grace: float) -> None:
        """Before a restart: every subsystem that can (``drain(grace)``) stops taking
        work and finishes what is in flight; the agents abort what is left after
        ``grace`` seconds. Runs concurrently: channel replies wait for agent runs."""
        draining = [(n, s) for n, s in self.subsystems.items() if isinstance(s, Drains)]
        results = await asyncio.gather(
            *(sub.drain(grace) for _, sub in draining), return_exceptions=True
        )
        for (name, _), result in zip(draining, results, strict=True):
            if isinstance(result, BaseException):
                log.warning("%s did not drain cleanly: %s", name, result)

    def subsystem_status(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in SUBSYSTEMS:
            sub = self.subsystems.get(name)
            if sub is not None:
                try:
                    status = dict(sub.status())
                except Exception as exc:
                    status = {"error": str(exc)}
                status.setdefault("state", str(sub.state))
                if name in self.subsystem_errors:
                    status["state"] = State.FAILED.value
                    status["error"] = self.subsystem_errors[name]
                out[name] = status
            elif name in self.subsystem_errors:
                out[name] = {"state": State.FAILED.value, "error": self.subsystem_errors[name]}
            elif name not in self.enabled_subsystems():
                out[name] = {"state": State.DISABLED.value}
            elif not self.subsystems_started.is_set():
                out[name] = {"state": State.STARTING.value}
        return out

    # summaries --------------------------------------------------------------

    def sessions_summary(self, agent_id: str | None = None) -> SessionsSummary:
        """Count and the five most recent sessions of an agent (default: the default
        agent), read through its :class:`~moltbot.sessions.store.SessionStore`."""
        agent_id = agent_id or self.default_agent_id()
        store = self._session_store(agent_id)
        try:
            entries = store.snapshot()
        except OSError as exc:
            log.warning("sessions of agent %s unreadable: %s", agent_id, exc)
            entries = {}
        rows = sorted(entries.items(), key=lambda item: -item[1].updated_at)
        now = now_ms()
        recent = [
            SessionRow(key, entry.updated_at, now - entry.updated_at) for key, entry in rows[:5]
        ]
        return SessionsSummary(str(store.index_path), len(entries), recent)

    def _session_store(self, agent_id: str) -> SessionStore:
        """The running agents' store of ``agent_id`` (shared cache), else one of our own."""
        agents = self.subsystem(AGENTS)
        if agents is not None and agent_id in agents.agent_ids():
            return agents.store(agent_id)
        found = self._stores.get(agent_id)
        if found is None:
            found = self._stores[agent_id] = SessionStore(self.instance.sessions_dir(agent_id))
        return found

    def channels_summary(self) -> dict[str, Any]:
        from moltbot.gateway.channel_status import health_summary

        channels = self.subsystem(CHANNELS)
        if channels is not None:
            try:
                return health_summary(channels.report())
            except Exception as exc:
                log.warning("channels health failed: %s", exc)
        return health_summary([])

    def default_agent_id(self) -> str:
        return default_agent_id(self.config)

    def agents_list(self) -> list[dict[str, Any]]:
        return [
            {"agentId": spec.id, "isDefault": spec.default}
            for spec in agent_specs(self.config, self.instance)
        ]

    def health(self, *, refresh: bool = False) -> HealthPayload:
        """The ``health`` payload, cached for :data:`protocol.HEALTH_REFRESH_S`."""
        if (
            not refresh
            and self.health_cache
            and time.monotonic() - self.health_cache_at < protocol.HEALTH_REFRESH_S
        ):
            return self.health_cache
        started = time.perf_counter()
        sessions = self.sessions_summary()
        channels = self.channels_summary()
        agents = [
            AgentHealth(
                a["agentId"],
                a["isDefault"],
                sessions if a["isDefault"] else self.sessions_summary(a["agentId"]),
            )
            for a in self.agents_list()
        ]
        summary = HealthPayload(
            ok=True,
            ts=now_ms(),
            duration_ms=int((time.perf_counter() - started) * 1000),
            channels=channels["channels"],
            channel_order=channels["channelOrder"],
            channel_labels=channels["channelLabels"],
            heartbeat_seconds=0,
            default_agent_id=self.default_agent_id(),
            agents=agents,
            sessions=sessions,
        )
        self.health_cache, self.health_cache_at = summary, time.monotonic()
        return summary

    def refresh_health(self) -> HealthPayload:
        summary = self.health(refresh=True)
        self.broadcast("health", wire(summary))
        return summary

    def configured_instance(self) -> Instance:
        """The instance as a plain start would resolve it now (config + environment,
        without this run's flags such as a one-off ``--port``)."""
        from moltbot.instance.resolve import resolve_instance

        return resolve_instance(self.instance.identity, self.config, self.env)

    def instance_facts(self) -> InstanceStatus:
        """``status.instance``: this instance's facts, what runs, and how the config differs."""
        from moltbot.instance.running import Running, drift

        configured = self.configured_instance()
        running = Running.from_record({**self.instance.facts(), "pid": os.getpid()})
        return InstanceStatus.of(
            self.instance,
            configured=InstanceStatus.of(configured).ports(),
            drift=drift(configured, running),
            pid=os.getpid(),
            bind=self.instance.bind,
            host=self.bind_host,
            version=self.version,
            started_at=self.started_at_ms,
            uptime_ms=self.uptime_ms,
            state=str(self.state),
        )

    def status(self) -> StatusPayload:
        sessions = self.sessions_summary()
        channels = self.channels_summary()
        default_agent = self.default_agent_id()
        return StatusPayload(
            instance=self.instance_facts(),
            heartbeat=self.heartbeat_summary(),
            channel_summary=[
                f"{k}: {v.get('state', 'configured')}" if isinstance(v, dict) else k
                for k, v in channels.get("channels", {}).items()
            ],
            queued_system_events=self.queued_system_events(),
            sessions=SessionsStatus(
                paths=[sessions.path],
                count=sessions.count,
                defaults=SessionDefaults(_model_name(self.config)),
                recent=sessions.recent,
                by_agent=[
                    AgentSessions(default_agent, sessions.path, sessions.count, sessions.recent)
                ],
            ),
            subsystems=self.subsystem_status(),
            connections=len(self.connections),
        )

    def heartbeat_summary(self) -> Heartbeat:
        """``status.heartbeat``: which agents run heartbeats, how often."""
        runner = self.subsystem("heartbeat")
        agents = [] if runner is None else runner.status()["agents"]
        return Heartbeat(
            self.default_agent_id(),
            [
                {
                    "agentId": a["agentId"],
                    "enabled": a["everyMs"] is not None,
                    "every": a["every"],
                    "everyMs": a["everyMs"],
                }
                for a in agents
            ],
        )

    def queued_system_events(self) -> list[str]:
        """System events waiting for the default agent's main session."""
        agents = self.subsystem(AGENTS)
        if agents is None:
            return list(self.system_events[-20:])
        from moltbot.sessions.keys import main_key

        return list(agents.system_events.peek(main_key(agents.resolve_agent(None))))


def _model_name(config: Config) -> str | None:
    model = config.agents.defaults.model
    if model is None:
        return None
    return model if isinstance(model, str) else model.primary


def _handshake_timeout(env: Mapping[str, str]) -> float:
    from moltbot.instance import env as envvars

    value = envvars.get(env, "HANDSHAKE_TIMEOUT_MS")
    try:
        return max(0.05, int(value) / 1000) if value else protocol.HANDSHAKE_TIMEOUT_S
    except ValueError:
        return protocol.HANDSHAKE_TIMEOUT_S


def sys_platform() -> str:
    return f"{platform.system().lower()} {platform.release()}"
