"""Telegram webhook mode: the handler of the manifest's route on the gateway's app.

``POST /telegram-webhook`` (default account) and ``POST
/telegram-webhook/<accountId>``. Telegram must reach them at the account's
``webhookUrl`` (usually through a reverse proxy to the gateway port). Each
request must carry ``X-Telegram-Bot-Api-Secret-Token`` equal to
``webhookSecret``; anything else is answered 401 and dropped. An update is
answered 200 once it is handled or durably queued for the agent, 503 when the
gateway cannot take it now (Telegram then delivers it again).
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from aiohttp import web

from moltbot.channels.errors import ChannelNotReady
from moltbot.channels.webhook import error

if TYPE_CHECKING:
    from moltbot.channels.manager import AccountRunner, ChannelManager

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


async def handle(
    request: web.Request, manager: ChannelManager, runner: AccountRunner
) -> web.Response:
    channel: Any = runner.channel  # the TelegramChannel of this account, once running
    if channel is None or channel.config.mode != "webhook":
        return error("not in webhook mode", 503)
    if not channel.check_webhook_secret(request.headers.get(SECRET_HEADER)):
        log.warning("telegram webhook %s: bad or missing secret token", runner.account.account_id)
        return error("unauthorized", 401)
    try:
        update = json.loads(await request.text())
    except ValueError:
        return error("invalid json", 400)
    if not isinstance(update, dict):
        return error("invalid update", 400)
    try:
        await channel.handle_update(update)
    except ChannelNotReady as exc:  # not taken (restarting): Telegram delivers it again
        return error(exc.message, 503)
    return web.json_response({"ok": True})
