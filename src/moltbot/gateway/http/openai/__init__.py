"""The OpenAI-compatible API on the gateway port, for the clients that speak it.

Off unless ``gateway.http.endpoints.chatCompletions.enabled`` (read per
request, so a config reload applies at once); while off, its paths answer 404
(after the auth check, as every API path: see :mod:`moltbot.gateway.http.api`).

- ``GET /v1/models``: ``moltbot`` (the default agent) and ``moltbot:<agentId>``
  for every agent (:mod:`.models`); ``GET /v1/models/{id}`` one of them.
- ``POST /v1/chat/completions``: one agent turn (:mod:`.completions`); the
  request's ``model`` selects the agent, ``user`` or ``X-Moltbot-Session``
  the session (:mod:`.request`).
- ``POST /v1/responses`` (``gateway.http.endpoints.responses.enabled``): one agent
  turn in the Responses shape (:mod:`moltbot.gateway.http.responses`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from moltbot.agents.roster import agent_specs
from moltbot.gateway.http.api import api_route, json_response, require_method

if TYPE_CHECKING:
    from moltbot.gateway.runtime import GatewayRuntime

__all__ = ["setup_routes"]


def setup_routes(app: web.Application, runtime: GatewayRuntime) -> None:
    # Every method is routed here, so that auth comes before "method not allowed".
    app.router.add_route("*", "/v1/chat/completions", api_route(runtime, completions))
    app.router.add_route("*", "/v1/models", api_route(runtime, list_models))
    app.router.add_route("*", "/v1/models/{model:.+}", api_route(runtime, get_model))
    app.router.add_route("*", "/v1/responses", api_route(runtime, responses))


def _agents(gateway: GatewayRuntime) -> tuple[list[str], str]:
    """(agent ids in config order, the default agent's id), from the current config."""
    specs = agent_specs(gateway.config, gateway.instance)
    return [s.id for s in specs], next(s.id for s in specs if s.default)


async def completions(request: web.Request, gateway: GatewayRuntime) -> web.StreamResponse:
    # imported at the first request: the endpoint is off by default, and the gateway's
    # start does not wait for what only its requests need
    from moltbot.gateway.http.openai.completions import chat_completions

    return await chat_completions(request, gateway)


async def responses(request: web.Request, gateway: GatewayRuntime) -> web.StreamResponse:
    from moltbot.gateway.http.responses import responses as answer

    return await answer(request, gateway)


async def list_models(request: web.Request, gateway: GatewayRuntime) -> web.StreamResponse:
    from moltbot.gateway.http.openai.completions import endpoint
    from moltbot.gateway.http.openai.models import listed_ids, model_object

    endpoint(gateway)
    require_method(request, "GET")
    ids, _default = _agents(gateway)
    created = gateway.started_at_ms // 1000
    return json_response(
        {"object": "list", "data": [model_object(m, created) for m in listed_ids(ids)]}
    )


async def get_model(request: web.Request, gateway: GatewayRuntime) -> web.StreamResponse:
    from moltbot.gateway.http.openai.completions import endpoint
    from moltbot.gateway.http.openai.models import agent_for, model_object, unknown_model

    endpoint(gateway)
    require_method(request, "GET")
    model = request.match_info["model"]
    ids, default = _agents(gateway)
    if agent_for(model, ids, default) is None:
        raise unknown_model(model, ids)
    return json_response(model_object(model, gateway.started_at_ms // 1000))
