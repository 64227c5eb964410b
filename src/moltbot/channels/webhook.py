"""Channel webhooks on the gateway's one aiohttp app (no channel opens a port).

:func:`setup_routes` adds the routes every channel manifest declares
(:class:`~moltbot.channels.manifest.Route`): ``POST <path>`` for the default
account and ``POST <path>/<accountId>``. The account is found before the
channel's handler runs (a request that arrives while the gateway is still starting
its subsystems waits for them): 503 while the channels subsystem is not running, 404
for an account that is not configured. Errors are JSON ``{"ok": false, "error":
...}`` (:func:`error`).

A handler is ``async def handle(request, manager, runner) -> web.StreamResponse``
in the channel's own package (``channels/<name>/webhook.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from moltbot.channels.config import DEFAULT_ACCOUNT_ID
from moltbot.channels.errors import ChannelError
from moltbot.subsystems import CHANNELS

if TYPE_CHECKING:
    from moltbot.channels.manager import AccountRunner, ChannelManager

log = logging.getLogger(__name__)

AccountHandler = Callable[
    [web.Request, "ChannelManager", "AccountRunner"], Awaitable[web.StreamResponse]
]
"""``handle(request, manager, runner)`` for a request to a configured account."""

_PATHS = web.AppKey("moltbot.channels.webhook.paths", set)


def error(message: str, status: int) -> web.Response:
    return web.json_response({"ok": False, "error": message}, status=status)


def setup_routes(app: web.Application, runtime: Any) -> None:
    """Add the webhook routes of every known channel. ``runtime.started(CHANNELS)``
    must return the running :class:`~moltbot.channels.manager.ChannelManager`, or None.
    A channel whose handler cannot be imported is logged and left without routes.
    Calling it twice on one app is harmless."""
    from moltbot.channels import registry
    from moltbot.channels.manifest import load_handler

    for manifest in registry.manifests().values():
        for route in manifest.routes:
            try:
                handle = load_handler(route.handler)
            except (ImportError, AttributeError) as exc:
                log.error(
                    "channel %s: webhook %s not served: cannot load %s: %s",
                    manifest.id,
                    route.path,
                    route.handler,
                    exc,
                )
                continue
            add_account_routes(app, runtime, manifest.id, route.path, handle)


def add_account_routes(
    app: web.Application, runtime: Any, channel: str, path: str, handle: AccountHandler
) -> None:
    """Route ``path`` and ``path/<accountId>`` of ``channel`` to ``handle``.

    Adding a path that is already routed does nothing.
    """
    paths = app.setdefault(_PATHS, set())
    if path in paths:
        return
    paths.add(path)

    async def route(request: web.Request) -> web.StreamResponse:
        manager = await runtime.started(CHANNELS)  # waits while the gateway is starting
        if manager is None:
            return error("channels not running", 503)
        try:
            runner = manager.runner(channel, request.match_info.get("account", DEFAULT_ACCOUNT_ID))
        except ChannelError:
            return error("unknown account", 404)
        return await handle(request, manager, runner)

    app.router.add_post(path, route)
    app.router.add_post(path + "/{account}", route)
