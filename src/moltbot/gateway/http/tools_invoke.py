"""``POST /tools/invoke``: run one agent tool directly, with the agent's tool policy.

Off unless ``gateway.http.endpoints.toolsInvoke.enabled`` (404 while off, after
the auth check); behind the gateway token (:mod:`moltbot.gateway.http.api`).

Body ``{tool, args?, action?, sessionKey?, dryRun?}``: ``action`` is merged into
``args`` when the tool takes an ``action``; ``sessionKey`` (default: the agent's
main session) is the session the tool acts for; the agent is the default one or
the ``x-moltbot-agent-id`` header's. Only tools the agent itself may use are
available (``tools.allow``/``tools.deny``, each tool's own checks: workspace
confinement, exec policy, network guard), within ``tools.timeoutSeconds``.
``dryRun`` checks the arguments without running the tool.

Answers (upstream's shapes): ``200 {ok: true, result}`` (``dryRun``: ``{ok: true,
dryRun: true, tool, args}``); ``400 {ok: false, error: {type: "invalid_request" |
"tool_error", message}}``; ``404 {ok: false, error: {type: "not_found", message:
"Tool not available: <name>"}}``.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING, Any

from aiohttp import web

from moltbot.errors import MoltbotError
from moltbot.gateway.http.api import ApiError, api_route, read_json, require_method

if TYPE_CHECKING:
    from moltbot.gateway.runtime import GatewayRuntime

SETTING = "gateway.http.endpoints.toolsInvoke.maxBodyBytes"


def setup_routes(app: web.Application, runtime: GatewayRuntime) -> None:
    app.router.add_route("*", "/tools/invoke", api_route(runtime, tools_invoke))


def _answer(status: int, kind: str, message: str) -> web.Response:
    return web.json_response(
        {"ok": False, "error": {"type": kind, "message": message}}, status=status
    )


async def tools_invoke(request: web.Request, gateway: GatewayRuntime) -> web.StreamResponse:
    from moltbot.agents.tools import ToolContext, ToolError
    from moltbot.agents.tools.base import format_result

    settings = gateway.config.gateway.http.endpoints.tools_invoke
    if not settings.enabled:
        raise ApiError(
            404,
            "Direct tool invocation is disabled on this gateway; enable it with "
            "`moltbot config set gateway.http.endpoints.toolsInvoke.enabled true`.",
            code="endpoint_disabled",
        )
    require_method(request, "POST")
    body = await read_json(request, settings.max_body_bytes, SETTING)
    if not isinstance(body, dict):
        return _answer(400, "invalid_request", "the body must be a JSON object")
    name = body.get("tool")
    if not isinstance(name, str) or not name.strip():
        return _answer(400, "invalid_request", "tools.invoke requires body.tool")
    args = body.get("args", {})
    if not isinstance(args, dict):
        return _answer(400, "invalid_request", "body.args must be an object")
    # the OpenAI routes' helpers (they import the agents' run module): not at start
    from moltbot.gateway.http.openai.completions import agent_runtime
    from moltbot.gateway.http.openai.request import requested_agent

    agents = await agent_runtime(gateway)
    try:
        agent_id = agents.resolve_agent(requested_agent(request.headers))
        _, session_key = agents.session_key(body.get("sessionKey") or None, agent_id)
    except MoltbotError as exc:
        return _answer(400, "invalid_request", exc.message)
    tool = agents.tools.get(name.strip())
    if tool is None:
        return _answer(404, "not_found", f"Tool not available: {name.strip()}")
    action = body.get("action")
    if isinstance(action, str) and "action" in tool.parameters_schema().get("properties", {}):
        args = {**args, "action": action}
    try:
        params = tool.parse(args)
    except ToolError as exc:
        return _answer(400, "tool_error", exc.message)
    if body.get("dryRun") is True:
        return web.json_response({"ok": True, "dryRun": True, "tool": tool.name, "args": args})
    context = ToolContext(
        agent_id=agent_id,
        session_key=session_key,
        run_id=f"tools-invoke-{uuid.uuid4()}",
        workspace=agents.workspace(agent_id),
        instance=agents.instance,
        config=agents.config,
        env=agents.env,
        logger=agents.log,
        lookup=agents.lookup,
        protected=await agents.protected_paths(),
    )
    limit = gateway.config.tools.timeout_seconds
    try:
        async with asyncio.timeout(limit):
            result = await tool.run(context, params)
    except ToolError as exc:
        return _answer(400, "tool_error", exc.message)
    except TimeoutError:
        return _answer(400, "tool_error", f"{tool.name} timed out after {limit:g}s")
    if not isinstance(result, str | dict):
        result = format_result(result)
    return web.json_response({"ok": True, "result": result}, dumps=_dumps)


def _dumps(data: Any) -> str:
    import orjson

    return orjson.dumps(data, default=str).decode()


__all__ = ["setup_routes"]
