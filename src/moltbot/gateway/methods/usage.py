"""``usage.status`` and ``usage.cost``: token usage and cost from the transcripts."""

from __future__ import annotations

from typing import Any

from moltbot.gateway.methods.agents import agents_of
from moltbot.gateway.methods.registry import MethodCall, NoParams, Params, method
from moltbot.validation import Field


class UsageCostParams(Params):
    days: int = Field(default=30, ge=1, le=3660)
    agentId: str | None = None


@method("usage.cost", params=UsageCostParams, scope="read", bulky=True)
async def usage_cost(call: MethodCall, params: UsageCostParams) -> dict[str, Any]:
    """Usage and cost of the last ``days`` days: ``daily``, ``totals`` (upstream's
    shape) and ``byAgent`` / ``byModel`` / ``bySession``."""
    runtime = await agents_of(call)
    return await runtime.usage_summary(params.days, params.agentId)


@method("usage.status", params=NoParams, scope="read")
async def usage_status(call: MethodCall, params: NoParams) -> dict[str, Any]:
    """Per provider: today's and the last 30 days' usage."""
    runtime = await agents_of(call)
    return await runtime.usage_status()
