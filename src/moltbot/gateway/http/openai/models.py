"""Model ids of the OpenAI-compatible API: one per agent (pure functions).

``moltbot:<agentId>`` names an agent and ``moltbot`` the default agent; these
are what ``GET /v1/models`` lists. Upstream's ``openclaw`` / ``openclaw:<agentId>``
and the forms ``moltbot/<id>``, ``openclaw/<id>``, ``agent:<id>`` are accepted
as aliases. Matching ignores case.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from moltbot.gateway.http.api import ApiError

OWNER = "moltbot"
DEFAULT_IDS = ("moltbot", "openclaw")
AGENT_PREFIXES = ("moltbot:", "openclaw:", "moltbot/", "openclaw/", "agent:")


def model_id(agent_id: str) -> str:
    return f"moltbot:{agent_id}"


def listed_ids(agent_ids: Sequence[str]) -> list[str]:
    """``moltbot`` then ``moltbot:<id>`` for every agent, in config order."""
    return ["moltbot", *(model_id(a) for a in agent_ids)]


def agent_for(model: str, agent_ids: Sequence[str], default_id: str) -> str | None:
    """The agent ``model`` names, or None when it names none."""
    value = model.strip().lower()
    if value in DEFAULT_IDS:
        return default_id
    for prefix in AGENT_PREFIXES:
        if value.startswith(prefix):
            rest = value[len(prefix) :]
            return rest if rest in agent_ids else None
    return None


def model_object(model: str, created: int) -> dict[str, Any]:
    """One entry of ``/v1/models`` in OpenAI's shape."""
    return {"id": model, "object": "model", "created": created, "owned_by": OWNER}


def unknown_model(model: str, agent_ids: Sequence[str]) -> ApiError:
    return ApiError(
        404,
        f"The model `{model}` does not exist. Models here are agents: "
        f"{', '.join(listed_ids(agent_ids))} (GET /v1/models lists them).",
        code="model_not_found",
        param="model",
    )
