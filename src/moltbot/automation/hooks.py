"""Inbound hooks: what ``POST <hooks.path>/wake`` and ``/agent`` do with a checked body.

- ``wake`` ``{text, mode?}`` (``mode``: ``now``, the default, or
  ``next-heartbeat``): the text becomes a system event of the main session
  (:mod:`.wake`). Answers ``200 {ok: true, mode}``.
- ``agent`` ``{message, name?, sessionKey?, wakeMode?, deliver?, channel?, to?,
  model?, thinking?, timeoutSeconds?}``: an isolated agent turn in
  ``hook:<uuid>`` (or ``sessionKey``, which must start with ``hook:``), its reply
  delivered like a cron job's (``deliver`` defaults to true, ``channel`` to
  ``last``), then ``Hook <name>: <summary>`` posted to the main session. The
  message is fenced as untrusted external content in the prompt. Answers ``202
  {ok: true, runId}`` at once.

Authentication, size limits, JSON and idempotency are the HTTP layer's
(:mod:`moltbot.gateway.http.hooks`).
"""

from __future__ import annotations

from typing import Any, Literal

from moltbot.automation.wake import wake
from moltbot.errors import RetryLaterError, UsageError
from moltbot.validation import BaseModel, ConfigDict, Field, ValidationError, field_validator

HOOKS = ("wake", "agent")


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class WakeBody(_Body):
    text: str = Field(min_length=1, max_length=20_000)
    mode: Literal["now", "next-heartbeat"] = "now"


class AgentBody(_Body):
    message: str = Field(min_length=1, max_length=100_000)
    name: str = Field(default="Hook", min_length=1, max_length=100)
    sessionKey: str | None = Field(default=None, max_length=200)
    wakeMode: Literal["now", "next-heartbeat"] = "now"
    deliver: bool = True
    channel: str = Field(default="last", min_length=1, max_length=64)
    to: str | None = Field(default=None, max_length=200)
    model: str | None = Field(default=None, max_length=200)
    thinking: str | None = Field(default=None, max_length=32)
    timeoutSeconds: int | None = Field(default=None, ge=1, le=24 * 3600)

    @field_validator("sessionKey")
    @classmethod
    def _hook_keys_only(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        key = value.strip().lower()
        if not key.startswith("hook:") or len(key) <= len("hook:"):
            raise ValueError('must start with "hook:" (hooks cannot write into other sessions)')
        return key


class HookRefused(UsageError):
    """A body the hook cannot take: ``status`` and the message for ``{ok: false, error}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


async def handle(name: str, body: Any, lookup: Any) -> tuple[int, dict[str, Any]]:
    """Run hook ``name`` with the parsed JSON ``body``: ``(status, response body)``.
    ``lookup("agents")`` etc. reach the running subsystems."""
    model = WakeBody if name == "wake" else AgentBody
    if not isinstance(body, dict):
        raise HookRefused(400, "the body must be a JSON object")
    try:
        parsed = model.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise HookRefused(400, f"invalid {where}: {first['msg']}") from None
    agents = lookup("agents")
    if agents is None:
        raise RetryLaterError("the agent runtime is not running")
    if isinstance(parsed, WakeBody):
        wake(agents, lookup("heartbeat"), parsed.text, parsed.mode, reason="hook:wake")
        return 200, {"ok": True, "mode": parsed.mode}
    cron = lookup("cron")
    if cron is None:
        raise RetryLaterError("the cron service is not running")
    run_id = await cron.start_hook(parsed)
    return 202, {"ok": True, "runId": run_id}


__all__ = ["HOOKS", "AgentBody", "HookRefused", "WakeBody", "handle"]
