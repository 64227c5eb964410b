"""What one running gateway knows: instance, config, clients, subsystems, events.

Method handlers reach the gateway only through this object (``call.runtime``).
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import os
import platform
import socket
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from moltbot import __version__
from moltbot.config.store import ConfigSnapshot
from moltbot.gateway import protocol
from moltbot.gateway.auth import AuthSettings
from moltbot.gateway.devices import DeviceStore
from moltbot.gateway.state import DedupeCache, Presence, now_ms
from moltbot.lifecycle import State, SubsystemContext
from moltbot.security.shield import Shield

if TYPE_CHECKING:
    from moltbot.config.schema import Config
    from moltbot.gateway.connection import Connection
    from moltbot.gateway.methods.registry import MethodSpec
    from moltbot.instance.resolve import Instance

log = logging.getLogger("moltbot.gateway")

PRESENCE_COALESCE_S = 0.05
HEALTH_COALESCE_S = 0.25

# name -> "module:Class"; imported when the gateway starts them.
SUBSYSTEMS: dict[str, str] = {
    "agents": "moltbot.agents.runtime:AgentRuntime",
    "channels": "moltbot.channels.manager:ChannelManager",
    "browser": "moltbot.browser.service:BrowserService",
    "canvas": "moltbot.canvas.host:CanvasHost",
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
        methods: dict[str, MethodSpec],
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
        self.devices = DeviceStore(instance.devices_dir)
        self.subsystems: dict[str, Any] = {}
        self.subsystem_errors: dict[str, str] = {}
        self.subsystems_started = asyncio.Event()
        """Set once every subsystem has been started (or has failed to)."""
        self.system_events: list[str] = []
        self.seq = 0
        self.state_version = {"presence": 1, "health": 1}
        self.health_cache: dict[str, Any] | None = None
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

    def subsystem(self, name: str) -> Any | None:
        sub = self.subsystems.get(name)
        return sub if sub is not None and getattr(sub, "state", None) == State.RUNNING else None

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
        for name in self.enabled_subsystems():
            await self.start_subsystem(name)
        self.subsystems_started.set()

    async def start_subsystem(self, name: str) -> None:
        module_name, _, class_name = SUBSYSTEMS[name].partition(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):
                log.debug("subsystem %s not available (%s)", name, module_name)
                return
            self.subsystem_errors[name] = f"import failed: {exc}"
            log.error("subsystem %s failed to import: %s", name, exc)
            return
        except Exception as exc:  # a broken subsystem must not take the gateway down
            self.subsystem_errors[name] = f"import failed: {exc}"
            log.exception("subsystem %s failed to import", name)
            return
        try:
            sub = getattr(module, class_name)(self.subsystem_context(name))
            self.subsystems[name] = sub
            await sub.start()
            self.subsystem_errors.pop(name, None)
            log.info("%s started", name)
        except Exception as exc:  # one failing subsystem never takes the gateway down
            message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
            self.subsystem_errors[name] = message
            if name in self.subsystems:
                try:
                    self.subsystems[name].state = State.FAILED
                except Exception:
                    pass
            log.error("%s failed to start: %s", name, message)

    async def stop_subsystems(self) -> None:
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
                    if hasattr(sub, "drain"):  # let operations in flight finish first
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
        draining = [(n, s) for n, s in self.subsystems.items() if hasattr(s, "drain")]
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
                status.setdefault("state", str(getattr(sub, "state", "unknown")))
                if name in self.subsystem_errors:
                    status["state"] = State.FAILED.value
                    status["error"] = self.subsystem_errors[name]
                out[name] = status
            elif name in self.subsystem_errors:
                out[name] = {"state": State.FAILED.value, "error": self.subsystem_errors[name]}
            elif name not in self.enabled_subsystems():
                out[name] = {"state": State.DISABLED.value}
        return out

    # summaries --------------------------------------------------------------

    def sessions_summary(self) -> dict[str, Any]:
        path = self.instance.sessions_dir() / "sessions.json"
        recent: list[dict[str, Any]] = []
        count = 0
        try:
            index = json.loads(path.read_text(encoding="utf-8"))
            entries = index.get("sessions", index) if isinstance(index, dict) else {}
            if isinstance(entries, dict):
                count = len(entries)
                rows = [
                    (k, v.get("updatedAt") if isinstance(v, dict) else None)
                    for k, v in entries.items()
                ]
                rows.sort(key=lambda r: -(r[1] or 0))
                now = now_ms()
                recent = [
                    {"key": k, "updatedAt": u, "age": (now - u) if u else None} for k, u in rows[:5]
                ]
        except (OSError, ValueError):
            pass
        return {"path": str(path), "count": count, "recent": recent}

    def channels_summary(self) -> dict[str, Any]:
        channels = self.subsystem("channels")
        if channels is not None and hasattr(channels, "health_summary"):
            try:
                return dict(channels.health_summary())
            except Exception as exc:
                log.warning("channels health failed: %s", exc)
        return {"channels": {}, "channelOrder": [], "channelLabels": {}}

    def agents_list(self) -> list[dict[str, Any]]:
        ids = [entry.id for entry in self.config.agents.entries] or ["main"]
        return [{"agentId": agent_id, "isDefault": i == 0} for i, agent_id in enumerate(ids)]

    def health(self, *, refresh: bool = False) -> dict[str, Any]:
        if (
            not refresh
            and self.health_cache
            and time.monotonic() - self.health_cache_at < protocol.HEALTH_REFRESH_S
        ):
            return self.health_cache
        started = time.perf_counter()
        sessions = self.sessions_summary()
        summary: dict[str, Any] = {
            "ok": True,
            "ts": now_ms(),
            "durationMs": 0,
            **self.channels_summary(),
            "heartbeatSeconds": 0,
            "defaultAgentId": self.agents_list()[0]["agentId"],
            "agents": [
                {
                    **a,
                    "sessions": sessions
                    if a["isDefault"]
                    else {
                        "path": str(self.instance.sessions_dir(a["agentId"]) / "sessions.json"),
                        "count": 0,
                        "recent": [],
                    },
                }
                for a in self.agents_list()
            ],
            "sessions": sessions,
        }
        summary["durationMs"] = int((time.perf_counter() - started) * 1000)
        self.health_cache, self.health_cache_at = summary, time.monotonic()
        return summary

    def refresh_health(self) -> dict[str, Any]:
        summary = self.health(refresh=True)
        self.broadcast("health", summary)
        return summary

    def configured_instance(self) -> Instance:
        """The instance as a plain start would resolve it now (config + environment,
        without this run's flags such as a one-off ``--port``)."""
        from moltbot.instance.resolve import resolve_instance

        return resolve_instance(self.instance.identity, self.config, self.env)

    def instance_facts(self) -> dict[str, Any]:
        from moltbot.instance.running import Running, drift

        facts = self.instance.facts()
        configured = self.configured_instance()
        mine = Running.from_record({**facts, "pid": os.getpid()})
        return {
            **facts,
            "configured": {
                key: value
                for key, value in configured.facts().items()
                if key in ("port", "controlPort", "canvasPort", "cdpRange")
            },
            "drift": drift(configured, mine),
            "pid": os.getpid(),
            "bind": self.instance.bind,
            "host": self.bind_host,
            "version": self.version,
            "startedAt": self.started_at_ms,
            "uptimeMs": self.uptime_ms,
            "state": str(self.state),
        }

    def status(self) -> dict[str, Any]:
        sessions = self.sessions_summary()
        channels = self.channels_summary()
        return {
            "instance": self.instance_facts(),
            "heartbeat": self.heartbeat_summary(),
            "channelSummary": [
                f"{k}: {v.get('state', 'configured')}" if isinstance(v, dict) else k
                for k, v in channels.get("channels", {}).items()
            ],
            "queuedSystemEvents": self.queued_system_events(),
            "sessions": {
                "paths": [sessions["path"]],
                "count": sessions["count"],
                "defaults": {"model": _model_name(self.config), "contextTokens": None},
                "recent": sessions["recent"],
                "byAgent": [
                    {
                        "agentId": "main",
                        "path": sessions["path"],
                        "count": sessions["count"],
                        "recent": sessions["recent"],
                    }
                ],
            },
            "subsystems": self.subsystem_status(),
            "connections": len(self.connections),
        }

    def heartbeat_summary(self) -> dict[str, Any]:
        """``status.heartbeat``: which agents run heartbeats, how often."""
        runner = self.subsystem("heartbeat")
        agents = [] if runner is None else runner.status()["agents"]
        return {
            "defaultAgentId": self.agents_list()[0]["agentId"],
            "agents": [
                {
                    "agentId": a["agentId"],
                    "enabled": a["everyMs"] is not None,
                    "every": a["every"],
                    "everyMs": a["everyMs"],
                }
                for a in agents
            ],
        }

    def queued_system_events(self) -> list[str]:
        """System events waiting for the default agent's main session."""
        agents = self.subsystem("agents")
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
