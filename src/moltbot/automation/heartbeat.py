"""Heartbeats: a periodic agent turn in the main session that speaks only when needed.

The ``heartbeat`` subsystem of the gateway. Every ``every`` (default 30 min) it
sends the heartbeat prompt to the agent's main session, as an ordinary turn.
A reply that is only ``HEARTBEAT_OK`` is not delivered (see
:mod:`.heartbeat_rules`); any other reply goes to the target (``last`` chat, a
channel + ``to``, or ``none``).

Which agents: the default agent with ``agents.defaults.heartbeat``; once any
entry of ``agents.list`` has its own ``heartbeat``, only those agents (their
block merged over the defaults).

A run is **skipped** (event ``heartbeat`` with ``status: "skipped"``, no model
call) when heartbeats are switched off (``set-heartbeats``), outside
``activeHours``, while the main session is busy with another turn
(``requests-in-flight``: skipped, not queued; a requested run retries once that
turn ends), or when ``HEARTBEAT.md`` is empty or comment-only and no system
event is waiting. An alert identical to the last one delivered within 24 hours
is not sent again (``duplicate``).

``request(reason)`` asks for a run soon (coalesced over 250 ms): ``wake`` with
``mode: "now"``, cron jobs with ``wakeMode: "now"``, hooks.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from moltbot.automation.clock import Clock, SystemClock
from moltbot.automation.delivery import resolve_target, send_text
from moltbot.automation.files import read_regular
from moltbot.automation.heartbeat_rules import (
    DEFAULT_ACK_MAX_CHARS,
    DEFAULT_EVERY,
    DEFAULT_PROMPT,
    effectively_empty,
    strip_token,
    within_active_hours,
)
from moltbot.automation.schedule import parse_duration_ms, zone
from moltbot.lifecycle import State, SubsystemContext
from moltbot.sessions.keys import main_key

COALESCE_MS = 250
RETRY_MS = 1_000
DUPLICATE_WINDOW_MS = 24 * 3_600_000
PREVIEW_CHARS = 200
HEARTBEAT_FILE = "HEARTBEAT.md"
MAX_FILE_BYTES = 256 * 1024

Status = Literal["ran", "skipped", "failed"]


@dataclass(frozen=True)
class Outcome:
    status: Status
    reason: str | None = None


@dataclass(frozen=True)
class Settings:
    every_ms: int | None
    every: str
    prompt: str
    target: str
    to: str | None
    account_id: str | None
    active_hours: dict[str, str] | None
    ack_max_chars: int


@dataclass
class Beat:
    agent_id: str
    settings: Settings
    next_due_ms: int
    last_run_ms: int | None = None


def resolve_settings(config: Any) -> dict[str, Settings]:
    """``agent id -> Settings`` of the agents that run heartbeats (module docstring)."""
    from moltbot.agents.roster import default_agent_id

    defaults = config.agents.defaults.heartbeat
    base = defaults.model_dump(exclude_unset=True) if defaults is not None else {}
    explicit = [e for e in config.agents.entries if e.heartbeat is not None]
    if explicit:
        chosen = [(e.id, {**base, **e.heartbeat.model_dump(exclude_unset=True)}) for e in explicit]
    else:
        chosen = [(default_agent_id(config), base)]
    out: dict[str, Settings] = {}
    for agent_id, raw in chosen:
        every = str(raw.get("every") or DEFAULT_EVERY)
        out[agent_id] = Settings(
            every_ms=parse_duration_ms(every, default_unit="m"),
            every=every,
            prompt=(raw.get("prompt") or "").strip() or DEFAULT_PROMPT,
            target=(raw.get("target") or "last").strip().lower(),
            to=raw.get("to"),
            account_id=raw.get("account_id"),
            active_hours=raw.get("active_hours"),
            ack_max_chars=raw.get("ack_max_chars")
            if raw.get("ack_max_chars") is not None
            else DEFAULT_ACK_MAX_CHARS,
        )
    return out


class HeartbeatRunner:
    """See the module docstring. ``name = "heartbeat"`` in the gateway."""

    name = "heartbeat"

    def __init__(self, context: SubsystemContext, clock: Clock | None = None) -> None:
        self.ctx = context
        self.log = context.logger
        self.clock: Clock = clock or SystemClock()
        self.state = State.CREATED
        self.enabled = True
        """Switched by ``set-heartbeats``; off skips every run (reason ``disabled``)."""
        self.last_event: dict[str, Any] | None = None
        self.beats: dict[str, Beat] = {}
        self._requested: str | None = None
        self._requested_at = 0
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._configure(context.config)

    # ---- lifecycle -----------------------------------------------------------------

    async def start(self) -> None:
        self.state = State.STARTING
        self._task = asyncio.create_task(self._loop(), name="heartbeat")
        self.state = State.RUNNING
        active = {a: b.settings.every for a, b in self.beats.items() if b.settings.every_ms}
        if active:
            self.log.info("%s", ", ".join(f"{a} every {e}" for a, e in active.items()))
        else:
            self.log.info("off (no agent has a heartbeat interval)")

    async def stop(self) -> None:
        self.state = State.STOPPING
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        self.state = State.STOPPED

    async def reconfigure(self, config: Any) -> bool:
        self._configure(config)
        self._wake.set()
        return True

    def status(self) -> dict[str, Any]:
        return {
            "state": str(self.state),
            "enabled": self.enabled,
            "agents": [
                {
                    "agentId": b.agent_id,
                    "every": b.settings.every if b.settings.every_ms else "disabled",
                    "everyMs": b.settings.every_ms,
                    "nextDueMs": b.next_due_ms if b.settings.every_ms else None,
                    "lastRunMs": b.last_run_ms,
                }
                for b in self.beats.values()
            ],
        }

    def _configure(self, config: Any) -> None:
        now = self.clock.now_ms()
        previous = self.beats
        self.beats = {}
        for agent_id, settings in resolve_settings(config).items():
            old = previous.get(agent_id)
            every = settings.every_ms or 0
            if old is not None and old.last_run_ms is not None:
                due = old.last_run_ms + every
            elif old is not None and old.settings.every_ms == settings.every_ms:
                due = old.next_due_ms
            else:
                due = now + every
            self.beats[agent_id] = Beat(agent_id, settings, due, old.last_run_ms if old else None)

    # ---- requests --------------------------------------------------------------------

    def request(self, reason: str = "requested", coalesce_ms: int = COALESCE_MS) -> None:
        """Run the heartbeats soon (requests within ``coalesce_ms`` share one run)."""
        at = self.clock.now_ms() + coalesce_ms
        if self._requested is None or at < self._requested_at:
            self._requested_at = at
        self._requested = self._requested or reason
        self._wake.set()

    def set_enabled(self, enabled: bool) -> None:
        self.enabled = enabled
        self._wake.set()

    async def run_or_defer(self, agent_id: str, reason: str) -> Outcome:
        """Run one heartbeat now, or, while the main session is busy (or a heartbeat is
        running), ask for one as soon as it is idle: ``Outcome("ran", "deferred")``.
        Never waits for the busy turn (that turn may be the one asking)."""
        agents = self.ctx.lookup("agents")
        busy = agents is not None and agents.active_run(main_key(agent_id)) is not None
        if busy or self._lock.locked():
            self.request(reason)
            return Outcome("ran", "deferred")
        outcome = await self.run_once(agent_id, reason)
        if outcome.reason == "requests-in-flight":
            self.request(reason)
            return Outcome("ran", "deferred")
        return outcome

    # ---- the timer -------------------------------------------------------------------

    async def _loop(self) -> None:
        while True:
            self._wake.clear()
            now = self.clock.now_ms()
            try:
                if self._requested is not None and now >= self._requested_at:
                    reason, self._requested = self._requested, None
                    if await self._run_all(reason, interval=False) == "requests-in-flight":
                        self._requested = self._requested or reason
                        self._requested_at = self.clock.now_ms() + RETRY_MS
                elif any(self._due(b, now) for b in self.beats.values()):
                    await self._run_all("interval", interval=True)
            except Exception:  # a failed run must not end the heartbeats
                self.log.exception("heartbeat run failed")
            await self.clock.sleep_until(self._deadline(), self._wake)

    def _due(self, beat: Beat, now: int) -> bool:
        return bool(beat.settings.every_ms) and now >= beat.next_due_ms

    def _deadline(self) -> int | None:
        times = [b.next_due_ms for b in self.beats.values() if b.settings.every_ms]
        if self._requested is not None:
            times.append(self._requested_at)
        return min(times) if times else None

    async def _run_all(self, reason: str, *, interval: bool) -> str | None:
        now = self.clock.now_ms()
        for beat in list(self.beats.values()):
            if interval and not self._due(beat, now):
                continue
            outcome = await self.run_once(beat.agent_id, reason)
            if outcome.reason == "requests-in-flight":
                if interval:
                    beat.next_due_ms = now + RETRY_MS
                    continue
                return outcome.reason
            if beat.settings.every_ms:  # also when switched off: the next try is a period away
                if outcome.reason != "disabled":
                    beat.last_run_ms = now
                beat.next_due_ms = now + beat.settings.every_ms
        return None

    # ---- one run ---------------------------------------------------------------------

    async def run_once(self, agent_id: str | None = None, reason: str | None = None) -> Outcome:
        """One heartbeat of ``agent_id`` (default: the first heartbeat agent)."""
        async with self._lock:
            return await self._run(agent_id or next(iter(self.beats), "main"), reason)

    async def _run(self, agent_id: str, reason: str | None) -> Outcome:
        beat = self.beats.get(agent_id)
        if not self.enabled or beat is None or not beat.settings.every_ms:
            return Outcome("skipped", "disabled")
        settings = beat.settings
        started = self.clock.now_ms()
        hours = settings.active_hours
        if hours and not within_active_hours(
            hours["start"], hours["end"], started, zone(_zone_name(hours.get("timezone")))
        ):
            return Outcome("skipped", "quiet-hours")
        agents = self.ctx.lookup("agents")
        if agents is None:
            return Outcome("skipped", "agents-unavailable")
        key = main_key(agent_id)
        if agents.active_run(key) is not None:
            return Outcome("skipped", "requests-in-flight")
        content = await asyncio.to_thread(_read_checklist, agents.workspace(agent_id))
        if effectively_empty(content) and not agents.system_events.peek(key):
            self._emit(started, "skipped", reason="empty-heartbeat-file")
            return Outcome("skipped", "empty-heartbeat-file")
        channels = self.ctx.lookup("channels")
        target = await resolve_target(
            agents, channels, agent_id, settings.target, settings.to, settings.account_id
        )
        where = {"channel": target.channel} if target.channel else {}
        try:
            run = await agents.submit(agent_id, key, settings.prompt, channel="heartbeat")
            assert run.done is not None
            await asyncio.shield(run.done)
        except Exception as exc:
            why = getattr(exc, "message", None) or str(exc) or type(exc).__name__
            self._emit(started, "failed", reason=why, indicatorType="error", **where)
            return Outcome("failed", why)
        if str(run.state) != "ok":
            why = run.error or f"the heartbeat turn ended {run.state}"
            self._emit(started, "failed", reason=why, indicatorType="error", **where)
            return Outcome("failed", why)
        reply = run.text.strip()
        if not reply:
            self._emit(started, "ok-empty", reason=reason, silent=True, indicatorType="ok", **where)
            return Outcome("ran")
        skip, text = strip_token(reply, settings.ack_max_chars)
        if skip:
            self._emit(started, "ok-token", reason=reason, silent=True, indicatorType="ok", **where)
            return Outcome("ran")
        store = agents.store(agent_id)
        entry = await store.get(key)
        if (
            entry is not None
            and entry.last_heartbeat_text
            and entry.last_heartbeat_text.strip() == text.strip()
            and entry.last_heartbeat_sent_at is not None
            and started - entry.last_heartbeat_sent_at < DUPLICATE_WINDOW_MS
        ):
            self._emit(
                started, "skipped", reason="duplicate", preview=text[:PREVIEW_CHARS], **where
            )
            return Outcome("ran")
        if not target.ok:
            self._emit(
                started, "skipped", reason=target.reason, preview=text[:PREVIEW_CHARS], **where
            )
            return Outcome("ran")
        try:
            await send_text(channels, target, text)
        except Exception as exc:
            why = getattr(exc, "message", None) or str(exc) or type(exc).__name__
            self._emit(started, "failed", reason=why, indicatorType="error", **where)
            return Outcome("failed", why)
        await store.touch(key, last_heartbeat_text=text, last_heartbeat_sent_at=started)
        self._emit(
            started,
            "sent",
            to=target.to,
            preview=text[:PREVIEW_CHARS],
            hasMedia=False,
            indicatorType="alert",
            **where,
        )
        return Outcome("ran")

    def _emit(self, started: int, status: str, **fields: Any) -> None:
        now = self.clock.now_ms()
        event = {"ts": now, "status": status, "durationMs": max(0, now - started)}
        event.update({k: v for k, v in fields.items() if v is not None})
        self.last_event = event
        self.ctx.broadcast("heartbeat", event, drop_if_slow=True)
        self.log.info(
            "heartbeat %s%s", status, f" ({fields['reason']})" if fields.get("reason") else ""
        )


def _zone_name(value: str | None) -> str | None:
    return None if value in (None, "", "local", "user") else value


def _read_checklist(workspace: Path) -> str | None:
    """``HEARTBEAT.md`` of the workspace; ``None`` when missing (or not a readable file)."""
    try:
        data = read_regular(workspace / HEARTBEAT_FILE, max_bytes=MAX_FILE_BYTES)
    except OSError:
        return None
    return None if data is None else data.decode("utf-8", errors="replace")


__all__ = ["HeartbeatRunner", "Outcome", "Settings", "resolve_settings"]
