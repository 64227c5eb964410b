"""A scripted executor and job builders for scheduler tests (driven by a ManualClock)."""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from moltbot.automation.jobs import JobInput
from moltbot.automation.scheduler import RunRequest, RunResult


@dataclass
class ScriptedExecutor:
    """Records each run; answers ``ok`` unless results are queued. ``hold()`` makes the
    next runs wait until ``release()``."""

    clock: Any
    calls: list[RunRequest] = field(default_factory=list)
    results: deque[RunResult | Exception] = field(default_factory=deque)
    gate: asyncio.Event | None = None
    started: asyncio.Event = field(default_factory=asyncio.Event)

    async def __call__(self, request: RunRequest) -> RunResult:
        self.calls.append(request)
        self.started.set()
        if self.gate is not None:
            await self.gate.wait()
        result = self.results.popleft() if self.results else RunResult("ok", summary="done")
        if isinstance(result, Exception):
            raise result
        return result

    def hold(self) -> None:
        self.gate = asyncio.Event()

    def release(self) -> None:
        assert self.gate is not None
        self.gate.set()
        self.gate = None

    def times(self, zone: str = "UTC") -> list[str]:
        where = ZoneInfo(zone)
        return [
            datetime.fromtimestamp(c.started_ms / 1000, where).strftime("%Y-%m-%d %H:%M %Z")
            for c in self.calls
        ]


def ms(text: str, zone: str = "UTC") -> int:
    """``"2026-03-08 01:30"`` in ``zone`` → epoch ms (first occurrence when ambiguous)."""
    value = datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=ZoneInfo(zone))
    return int(value.timestamp() * 1000)


def job(schedule: dict[str, Any], name: str = "job", **extra: Any) -> JobInput:
    data: dict[str, Any] = {
        "name": name,
        "schedule": schedule,
        "sessionTarget": "main",
        "wakeMode": "next-heartbeat",
        "payload": {"kind": "systemEvent", "text": f"{name} fired"},
    }
    data.update(extra)
    return JobInput.model_validate(data)


def subsystem_stack(tmp_path: Any, data: dict[str, Any]) -> tuple[Any, list[Any]]:
    """An instance under ``tmp_path`` with config ``data``, and a subsystem context
    ``(context, events)`` factory: ``make(lookup)`` gives a context whose broadcasts land
    in ``events``."""
    import logging

    from moltbot.config.schema import Config
    from moltbot.instance.resolve import Invocation, resolve_identity, resolve_instance
    from moltbot.lifecycle import SubsystemContext

    env = {"HOME": str(tmp_path), "MOLTBOT_STATE_DIR": str(tmp_path / "state"), "PATH": "/bin"}
    config = Config.model_validate(data)
    instance = resolve_instance(resolve_identity(Invocation(), env, tmp_path), config, env)
    events: list[Any] = []

    def context(lookup: Any) -> SubsystemContext:
        return SubsystemContext(
            instance=instance,
            config=config,
            env=env,
            token=None,
            password=None,
            broadcast=lambda event, payload=None, **_: events.append((event, payload)),
            logger=logging.getLogger("test.automation"),
            lookup=lookup,
        )

    return context, events
