"""Token usage and its cost, as recorded in transcripts and added up by
``usage.status`` / ``usage.cost``.

Every assistant entry carries the ``usage`` of its model call
``{input, output, cacheRead, cacheWrite, totalTokens, cost}``; ``cost`` is in USD,
from ``models.providers.<id>.models[].cost`` (per million tokens), and absent when the
model has no price configured. Compaction entries carry the usage of their summary.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from moltbot.agents.models import ModelRef
from moltbot.agents.providers import Usage
from moltbot.config.schema import ModelCost

if TYPE_CHECKING:
    from moltbot.agents.model_pool import ModelPool

PER = 1_000_000


def cost_of(usage: Usage, cost: ModelCost | None) -> dict[str, float] | None:
    """``{input, output, cacheRead, cacheWrite, total}`` in USD, or None without a price."""
    if cost is None:
        return None
    parts = {
        "input": usage.input * cost.input / PER,
        "output": usage.output * cost.output / PER,
        "cacheRead": usage.cache_read * cost.cache_read / PER,
        "cacheWrite": usage.cache_write * cost.cache_write / PER,
    }
    parts = {k: round(v, 8) for k, v in parts.items()}
    parts["total"] = round(sum(parts.values()), 8)
    return parts


def model_cost(models: ModelPool, ref: ModelRef) -> ModelCost | None:
    provider = models.provider(ref)
    definition = provider.models.get(ref.model) if provider else None
    return definition.cost if definition else None


def usage_record(models: ModelPool, ref: ModelRef, usage: Usage) -> dict[str, Any]:
    """The ``usage`` of a transcript entry for a call of ``ref``."""
    record: dict[str, Any] = usage.as_dict()
    cost = cost_of(usage, model_cost(models, ref))
    if cost is not None:
        record["cost"] = cost
    return record
