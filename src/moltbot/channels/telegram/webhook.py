"""Telegram webhook mode: routes on the gateway's one aiohttp app.

``POST /telegram-webhook`` (default account) and ``POST
/telegram-webhook/<accountId>``. Telegram must reach them at the account's
``webhookUrl`` (usually through a reverse proxy to the gateway port). Each
request must carry ``X-Telegram-Bot-Api-Secret-Token`` equal to
``webhookSecret``; anything else is answered 401 and dropped.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from aiohttp import web

from moltbot.channels.config import DEFAULT_ACCOUNT_ID
from moltbot.channels.errors import ChannelError

log = logging.getLogger(__name__)

PATH = "/telegram-webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
_INSTALLED = web.AppKey("moltbot.channels.telegram.webhook", bool)


def setup_routes(app: web.Application, runtime: Any) -> None:
    """Add the webhook routes. ``runtime.subsystem("channels")`` must return the
    running :class:`~moltbot.channels.manager.ChannelManager` (or None).
    Calling it twice on one app is harmless."""
    if app.get(_INSTALLED):
        return
    app[_INSTALLED] = True

    async def handle(request: web.Request) -> web.Response:
        account_id = request.match_info.get("account", DEFAULT_ACCOUNT_ID)
        manager = runtime.subsystem("channels")
        if manager is None:
            return web.json_response({"ok": False, "error": "channels not running"}, status=503)
        try:
            runner = manager.runner("telegram", account_id)
        except ChannelError:
            return web.json_response({"ok": False, "error": "unknown account"}, status=404)
        channel = runner.channel
        if channel is None or channel.config.mode != "webhook":
            return web.json_response({"ok": False, "error": "not in webhook mode"}, status=503)
        if not channel.check_webhook_secret(request.headers.get(SECRET_HEADER)):
            log.warning("telegram webhook %s: bad or missing secret token", account_id)
            return web.json_response({"ok": False, "error": "unauthorized"}, status=401)
        try:
            update = json.loads(await request.text())
        except ValueError:
            return web.json_response({"ok": False, "error": "invalid json"}, status=400)
        if not isinstance(update, dict):
            return web.json_response({"ok": False, "error": "invalid update"}, status=400)
        await channel.handle_update(update)
        return web.json_response({"ok": True})

    app.router.add_post(PATH, handle)
    app.router.add_post(PATH + "/{account}", handle)
