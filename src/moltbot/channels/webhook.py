"""Channel webhooks on the gateway's one aiohttp app (no channel opens a port).

A channel's ``webhook`` module calls :func:`add_account_routes`, which adds
``POST <path>`` (the default account) and ``POST <path>/<accountId>`` and finds
the account before the channel's handler runs: 503 while the channels
subsystem is not running, 404 for an account that is not configured. Errors
are JSON ``{"ok": false, "error": ...}`` (:func:`error`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from moltbot.channels.config import DEFAULT_ACCOUNT_ID
from moltbot.channels.errors import ChannelError

if TYPE_CHECKING:
    from moltbot.channels.manager import AccountRunner, ChannelManager

AccountHandler = Callable[
    [web.Request, "ChannelManager", "AccountRunner"], Awaitable[web.StreamResponse]
]
"""``handle(request, manager, runner)`` for a request to a configured account."""

_PATHS = web.AppKey("moltbot.channels.webhook.paths", set)


def error(message: str, status: int) -> web.Response:
    return web.json_response({"ok": False, "error": message}, status=status)


def add_account_routes(
    app: web.Application, runtime: Any, channel: str, path: str, handle: AccountHandler
) -> None:
    """Route ``path`` and ``path/<accountId>`` of ``channel`` to ``handle``.

    ``runtime.subsystem("channels")`` must return the running
    :class:`~moltbot.channels.manager.ChannelManager`, or None. Adding a path
    that is already routed does nothing.
    """
    paths = app.setdefault(_PATHS, set())
    if path in paths:
        return
    paths.add(path)

    async def route(request: web.Request) -> web.StreamResponse:
        manager = runtime.subsystem("channels")
        if manager is None:
            return error("channels not running", 503)
        try:
            runner = manager.runner(channel, request.match_info.get("account", DEFAULT_ACCOUNT_ID))
        except ChannelError:
            return error("unknown account", 404)
        return await handle(request, manager, runner)

    app.router.add_post(path, route)
    app.router.add_post(path + "/{account}", route)
