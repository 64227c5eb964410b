"""Slack HTTP Events mode: the handler of the manifest's route on the gateway's app.

``POST /slack/events`` (default account) and ``POST /slack/events/<accountId>``
— the Request URL to enter in the Slack app's Event Subscriptions. Every
request must carry a valid ``X-Slack-Signature`` (HMAC-SHA256 of
``v0:<timestamp>:<body>`` with the account's ``signingSecret``) and a timestamp
within five minutes; others get 401. ``url_verification`` is answered with the
challenge; an event is acknowledged (200) once it is handled or durably queued
for the agent (the reply follows in the background), and answered 503 when the
gateway cannot take it now, so Slack retries it.

Slash commands (form-encoded, with ``command``) are acknowledged with 200 at once
— with an ephemeral text when the command is not one this account answers — and
answered later on their ``response_url`` (see :mod:`.slash`); the same Request URL
serves them. Interactivity requests (form-encoded ``payload``) are refused with 501:
moltbot sends no interactive components, so there is nothing to act on.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from aiohttp import web

from moltbot.channels.errors import ChannelNotReady
from moltbot.channels.webhook import error

if TYPE_CHECKING:
    from moltbot.channels.manager import AccountRunner, ChannelManager

log = logging.getLogger(__name__)


async def handle(
    request: web.Request, manager: ChannelManager, runner: AccountRunner
) -> web.Response:
    from slack_sdk.signature import SignatureVerifier

    channel: Any = runner.channel  # the SlackChannel of this account, once running
    config = runner.account.config
    if config.mode != "http" or not config.signing_secret:
        return error("not in http mode", 404)
    body = await request.read()
    verifier = SignatureVerifier(config.signing_secret)
    if not verifier.is_valid(
        body,
        request.headers.get("X-Slack-Request-Timestamp", ""),
        request.headers.get("X-Slack-Signature", ""),
    ):
        log.warning("slack events %s: bad signature", runner.account.account_id)
        return error("invalid signature", 401)
    if request.content_type == "application/x-www-form-urlencoded":
        form = {key: value for key, value in parse_qsl(body.decode("utf-8", "replace"))}
        if "command" not in form:
            log.info("slack %s: refused an interactivity request", runner.account.account_id)
            return error("interactivity is not supported; use messages and slash commands", 501)
        if channel is None:
            return error("account not running", 503)
        answer = channel.handle_slash(form)
        return web.json_response(answer) if answer else web.Response(status=200)
    try:
        payload = json.loads(body)
    except ValueError:
        return error("invalid json", 400)
    if not isinstance(payload, dict):
        return error("invalid payload", 400)
    if payload.get("type") == "url_verification":
        return web.json_response({"challenge": payload.get("challenge", "")})
    if channel is None:
        return error("account not running", 503)
    try:
        await channel.handle_payload(payload)
    except ChannelNotReady as exc:  # not taken (restarting): Slack retries the event
        return error(exc.message, 503)
    return web.Response(status=200)
