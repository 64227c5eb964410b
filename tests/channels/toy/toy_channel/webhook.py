"""``POST /toy/events[/<account>]``: the caller presents the account's token."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from moltbot.channels.webhook import error
from moltbot.security.secrets import secret_equals


async def handle(request: web.Request, manager: Any, runner: Any) -> web.Response:
    if not secret_equals(request.headers.get("X-Toy-Token"), runner.account.config.token):
        return error("unauthorized", 401)
    if runner.channel is None:
        return error("account not running", 503)
    await runner.channel.receive(await request.json())
    return web.json_response({"ok": True})
