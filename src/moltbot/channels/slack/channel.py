"""The Slack channel: slack_sdk's ``AsyncWebClient`` against ``apiUrl``.

Inbound through Socket Mode (``SocketModeClient`` on aiohttp: it asks
``apps.connections.open`` for a WebSocket URL and reconnects on its own; an
envelope is acknowledged only once its event is handled or durably queued for
the agent, so one that arrives while the gateway restarts is delivered again;
a connection that stays down is handed to the manager's backoff) or through
HTTP Events (signed requests to the gateway, see :mod:`.webhook`). ``message``
and ``app_mention`` events are both handled and de-duplicated by timestamp.
Slash commands (see :mod:`.slash`) arrive the same two ways; they are acknowledged
at once (Slack waits three seconds at most) and answered on their ``response_url``.

Outbound: Markdown is converted to mrkdwn and split at 4000 characters;
replies go into the thread the message came from.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from moltbot.channels.base import Channel, ChannelContext
from moltbot.channels.chunking import chunk_text
from moltbot.channels.dispatch import TtlCache
from moltbot.channels.errors import (
    ChannelAuthFailed,
    ChannelError,
    ChannelNotReady,
    TargetError,
    UnsupportedMessage,
)
from moltbot.channels.markdown import to_slack_mrkdwn
from moltbot.channels.slack.config import SlackAccountConfig
from moltbot.channels.slack.manifest import MANIFEST
from moltbot.channels.slack.normalize import normalize_event
from moltbot.channels.slack.slash import (
    RESPONSE_URL_TTL_S,
    RESPONSES_PER_URL,
    normalize_slash,
    response_url_allowed,
    slash_text,
)
from moltbot.channels.types import InboundMessage, Media, OutboundMessage, Sender, SendResult

T = TypeVar("T")

AUTH_ERRORS = {
    "invalid_auth",
    "not_authed",
    "account_inactive",
    "token_revoked",
    "token_expired",
    "no_permission",
    "missing_scope",
    "not_allowed_token_type",
    "invalid_token",
}
DISCONNECTED_GRACE_S = 30.0
AUTH_CHECK_S = 5.0
"""While the socket is down, how often the app token is checked (slack_sdk retries a
refused token forever on its own)."""


class SlackChannel(Channel):
    manifest = MANIFEST
    text_limit = 4000
    default_reply_to_mode = "off"

    def __init__(self, context: ChannelContext) -> None:
        super().__init__(context)
        self.config: SlackAccountConfig = context.config
        self.web: Any = None
        self.socket: Any = None
        self.bot_user_id: str | None = None
        self.bot_id: str | None = None
        self._seen = TtlCache(ttl=600, size=2000)
        self._handling: set[str] = set()
        self._dm_channels: dict[str, str] = {}
        self._users: dict[str, tuple[float, Sender]] = {}
        self._slash: dict[str, tuple[float, str, int]] = {}
        """``slash:<trigger id>`` -> (expires at, response_url, answers left)"""
        self._slash_tasks: set[asyncio.Task[None]] = set()

    # -- lifecycle ------------------------------------------------------------

    async def start(self) -> None:
        self.web = self._client(self.config.bot_token)
        auth = await self._call(self.web.auth_test)
        self.bot_user_id = auth.get("user_id")
        self.bot_id = auth.get("bot_id")
        self.team_id = auth.get("team_id")
        self.status.bot_id = self.bot_user_id
        self.status.bot_username = auth.get("user")
        names = [f"/{name}" for name in sorted(self._slash_names())]
        if names:
            self.log.info("answering the slash commands %s (create them in the app)", names)

    async def stop(self) -> None:
        for task in list(self._slash_tasks):
            task.cancel()
        socket, self.socket = self.socket, None
        if socket is not None:
            try:
                await socket.close()
            except Exception:
                self.log.debug("closing the socket client failed", exc_info=True)
        web, self.web = self.web, None
        if web is not None and getattr(web, "session", None) is not None:
            await web.session.close()

    async def probe(self) -> dict[str, Any]:
        auth = await self._call(self._web().auth_test)
        return {
            "ok": True,
            "bot": {"id": auth.get("user_id"), "username": auth.get("user")},
            "team": {"id": auth.get("team_id"), "name": auth.get("team")},
        }

    async def serve(self) -> None:
        if self.config.mode == "http":
            self.status.connected = True
            self.status.last_connected_at = time.time()
            await asyncio.Event().wait()
        await self._serve_socket()

    # -- inbound: Socket Mode -------------------------------------------------

    async def _serve_socket(self) -> None:
        from slack_sdk.socket_mode.aiohttp import SocketModeClient

        app_client = self._client(None)
        # Ask for the first URL ourselves so refused tokens and outages surface as typed errors.
        opened = await self._call(
            lambda: app_client.apps_connections_open(app_token=self.config.app_token)
        )
        socket = SocketModeClient(
            app_token=self.config.app_token or "",
            web_client=app_client,
            logger=self.log.logger.getChild("socket"),
            ping_interval=5,
        )
        socket.wss_uri = opened["url"]
        socket.socket_mode_request_listeners.append(self._on_socket_request)
        self.socket = socket
        try:
            await asyncio.wait_for(socket.connect(), 15)
        except TimeoutError:
            raise ChannelNotReady("slack socket mode: could not connect to the WebSocket") from None
        down_since: float | None = None
        checked = 0.0
        while True:
            connected = await socket.is_connected()
            if connected:
                if not self.status.connected:
                    self.status.connected = True
                    self.status.last_connected_at = time.time()
                down_since = None
            else:
                if self.status.connected:
                    self.status.connected = False
                    self.status.reconnect_attempts += 1
                    self.status.error("slack socket disconnected; reconnecting")
                down_since = down_since or time.monotonic()
                if time.monotonic() - checked >= AUTH_CHECK_S:
                    checked = time.monotonic()
                    await self._check_app_token(app_client)
                if time.monotonic() - down_since > DISCONNECTED_GRACE_S:
                    raise ChannelNotReady(
                        f"slack socket mode: disconnected for {DISCONNECTED_GRACE_S:.0f}s"
                    )
            await asyncio.sleep(1.0)

    async def _check_app_token(self, app_client: Any) -> None:
        """Raise ChannelAuthFailed when Slack refuses the app token now (the app was
        uninstalled, the token revoked); any other trouble is the reconnect's."""
        try:
            await self._call(
                lambda: app_client.apps_connections_open(app_token=self.config.app_token)
            )
        except ChannelAuthFailed:
            raise
        except ChannelError as exc:
            self.log.debug("app token check inconclusive: %s", exc.message)

    async def _on_socket_request(self, client: Any, request: Any) -> None:
        from slack_sdk.socket_mode.response import SocketModeResponse

        if request.type == "slash_commands":
            answer = self.handle_slash(request.payload)
            await client.send_socket_mode_response(
                SocketModeResponse(envelope_id=request.envelope_id, payload=answer)
            )
            return
        if request.type == "events_api":
            try:
                await self.handle_payload(request.payload)
            except ChannelNotReady as exc:  # not taken: no ack, so Slack delivers it again
                self.log.info("event not acknowledged: %s", exc.message)
                return
        await client.send_socket_mode_response(SocketModeResponse(envelope_id=request.envelope_id))

    # -- inbound: shared ------------------------------------------------------

    async def handle_payload(self, payload: Mapping[str, Any]) -> None:
        """One ``event_callback`` payload (from the socket or an HTTP request)."""
        if payload.get("type") != "event_callback":
            return
        event = payload.get("event") or {}
        event_id = str(payload.get("event_id") or "")
        if event_id and event_id in self._handling:  # a retry while the first is undecided
            raise ChannelNotReady(f"event {event_id} is still being handled")
        if event_id and self._seen.seen("event:" + event_id):
            return
        self._handling.add(event_id)
        try:
            await self._handle_event(payload, event, event_id)
        except ChannelNotReady:
            if event_id:
                self._seen.forget("event:" + event_id)
            raise
        finally:
            self._handling.discard(event_id)

    async def _handle_event(
        self, payload: Mapping[str, Any], event: Mapping[str, Any], event_id: str
    ) -> None:
        try:
            message = normalize_event(
                event,
                account_id=self.account_id,
                bot_user_id=self.bot_user_id,
                bot_id=self.bot_id,
                payload=payload,
            )
        except UnsupportedMessage as exc:
            self.log.debug("skipped event %s: %s", event_id, exc.message)
            return
        if message.sender.id in (self.bot_user_id, self.bot_id):
            return
        # `message` and `app_mention` both arrive for one mention: keep the first.
        key = f"{message.chat_id}:{message.message_id}"
        if self._seen.seen(key):
            return
        if message.sender.name is None and not message.sender.is_bot:
            message = replace(message, sender=await self._user(message.sender))
        try:
            await self.context.on_inbound(message)
        except ChannelNotReady:
            self._seen.forget(key)
            raise

    # -- inbound: slash commands ---------------------------------------------

    def _slash_names(self) -> set[str]:
        """Every slash command name this account answers."""
        names = {name for name, _ in self.native_menu() or ()}
        if self.config.slash_command.enabled:
            names.add(self.config.slash_command.name)
        return names

    def handle_slash(self, payload: Mapping[str, Any]) -> dict[str, Any] | None:
        """Take one slash command (from the socket or an HTTP request): the immediate
        answer to acknowledge it with (None: an empty acknowledgement, the reply
        follows on ``response_url``)."""
        from moltbot.commands import REGISTRY

        native = {name for name, _ in self.native_menu() or ()}
        catch_all = self.config.slash_command
        text = slash_text(
            payload,
            native=native,
            catch_all=catch_all.name if catch_all.enabled else None,
            known={command.name for command in REGISTRY.all()},
        )
        if text is None:
            return _ephemeral(f"{payload.get('command')} is not a command of this assistant.")
        if not text:
            return _ephemeral(f"Usage: /{catch_all.name} <message or command>")
        url = str(payload.get("response_url") or "")
        if not response_url_allowed(url, self.config.api_url):
            self.log.warning("slash command with a foreign response_url refused: %s", url[:80])
            return _ephemeral("This command cannot be answered (unexpected response URL).")
        try:
            message = normalize_slash(
                payload, text, account_id=self.account_id, private=catch_all.ephemeral
            )
        except UnsupportedMessage as exc:
            return _ephemeral(exc.message)
        if message.sender.id in (self.bot_user_id, self.bot_id):
            return None
        now = time.monotonic()
        for key, (expires, _, _) in list(self._slash.items()):
            if expires < now:
                del self._slash[key]
        self._slash[message.message_id] = (now + RESPONSE_URL_TTL_S, url, RESPONSES_PER_URL)
        task = asyncio.create_task(self._run_slash(message), name=f"slack slash {message.text}")
        self._slash_tasks.add(task)
        task.add_done_callback(self._slash_tasks.discard)
        return None

    async def _run_slash(self, message: InboundMessage) -> None:
        if message.sender.name is None:
            message = replace(message, sender=await self._user(message.sender))
        try:
            await self.context.on_inbound(message)
        except ChannelNotReady as exc:  # acknowledged already: say so instead of a retry
            self.log.info("slash command not taken: %s", exc.message)
            with contextlib.suppress(Exception):
                await self.send(
                    message.message_id,
                    OutboundMessage(
                        text="⚠️ The assistant is restarting; send the command again shortly.",
                        plain=True,
                    ),
                )

    async def _respond(self, target: str, message: OutboundMessage) -> SendResult:
        """Answer a slash command on its ``response_url`` (text only)."""
        import aiohttp

        found = self._slash.get(target)
        if found is None or found[0] < time.monotonic() or found[2] <= 0:
            raise TargetError(f"the slash command {target} can no longer be answered")
        expires, url, left = found
        chunks = chunk_text(message.text, self.text_chunk_limit()) if message.text else []
        if not chunks:
            raise TargetError("nothing to send: a slash command answer needs text")
        kind = "ephemeral" if self.config.slash_command.ephemeral else "in_channel"
        timeout = aiohttp.ClientTimeout(total=20)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            for chunk in chunks[:left]:
                body = {
                    "text": chunk if message.plain else to_slack_mrkdwn(chunk),
                    "response_type": kind,
                }
                try:
                    async with session.post(url, json=body) as response:
                        if response.status >= 400:
                            raise TargetError(f"slack refused the answer: HTTP {response.status}")
                except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                    raise ChannelNotReady(f"slack response_url unreachable: {exc}") from None
                left -= 1
        self._slash[target] = (expires, url, left)
        return SendResult("slack", self.account_id, target, (target,))

    async def _user(self, sender: Sender) -> Sender:
        """The sender with name and handle from ``users.info`` (cached for an hour)."""
        cached = self._users.get(sender.id)
        if cached and time.monotonic() - cached[0] < 3600:
            return cached[1]
        try:
            info = await self._web().users_info(user=sender.id)
        except Exception as exc:  # a name is nice to have, never required
            self.log.debug("users.info %s failed: %s", sender.id, exc)
            return sender
        user = info.get("user") or {}
        profile = user.get("profile") or {}
        found = Sender(
            id=sender.id,
            name=profile.get("real_name")
            or user.get("real_name")
            or profile.get("display_name")
            or None,
            username=user.get("name"),
            is_bot=bool(user.get("is_bot")),
        )
        self._users[sender.id] = (time.monotonic(), found)
        return found

    # -- outbound -------------------------------------------------------------

    async def _resolve_target(self, target: str) -> str:
        text = target.strip()
        if text.lower().startswith("slack:"):
            text = text[len("slack:") :]
        kind = None
        if ":" in text:
            kind, text = text.split(":", 1)
            kind = kind.lower()
        text = text.strip().strip("<>@#")
        if kind not in (None, "channel", "user"):
            raise TargetError(
                f"invalid slack target {target!r}",
                hint="use channel:<id>, user:<id> or a bare C/G/D/U id",
            )
        if not re.fullmatch(r"[A-Z0-9]+", text):
            raise TargetError(
                f"invalid slack target {target!r}",
                hint="use channel:<id>, user:<id> or a bare C/G/D/U id",
            )
        if kind == "user" or (kind is None and text[0] in "UW"):
            cached = self._dm_channels.get(text)
            if cached:
                return cached
            opened = await self._call(lambda: self._web().conversations_open(users=text))
            channel_id = str(opened["channel"]["id"])
            self._dm_channels[text] = channel_id
            return channel_id
        return text

    async def send(self, target: str, message: OutboundMessage) -> SendResult:
        if target.startswith("slash:"):
            return await self._respond(target, message)
        web = self._web()
        channel_id = await self._resolve_target(target)
        thread_ts = message.thread_id or message.reply_to_id
        ids: list[str] = []
        for chunk in chunk_text(message.text, self.text_chunk_limit()):
            text = chunk if message.plain else to_slack_mrkdwn(chunk)
            result = await self._call(
                lambda text=text: web.chat_postMessage(
                    channel=channel_id,
                    text=text,
                    thread_ts=thread_ts,
                    mrkdwn=not message.plain,
                    unfurl_links=False,
                )
            )
            ids.append(str(result.get("ts")))
        for item in message.media:
            ids.append(await self._upload(web, channel_id, item, thread_ts))
        if not ids:
            raise TargetError("nothing to send: the message has no text and no media")
        return SendResult("slack", self.account_id, channel_id, tuple(ids))

    async def _upload(self, web: Any, channel_id: str, item: Media, thread_ts: str | None) -> str:
        """``files.getUploadURLExternal``, the upload, ``files.completeUploadExternal``
        (slack_sdk's ``files_upload_v2``); a URL is fetched first (within mediaMaxMb)."""
        from moltbot.channels.media import fetch_url

        if item.url:
            content: bytes = await fetch_url(item.url, self.media_max_bytes(), what="media")
        else:
            path = Path(item.path or "")
            if not path.is_file():
                raise TargetError(f"media file not found: {item.path}")
            content = await asyncio.to_thread(path.read_bytes)
        name = item.file_name or "file"
        result = await self._call(
            lambda: web.files_upload_v2(
                channel=channel_id,
                content=content,
                filename=name,
                title=name,
                initial_comment=item.caption,
                thread_ts=thread_ts,
            )
        )
        files = result.get("files") or [{}]
        return str(files[0].get("id"))

    async def download_media(self, media: Media, max_bytes: int) -> bytes:
        """A file's ``url_private``, fetched with the bot token (Slack requires it)."""
        from moltbot.channels.media import fetch_url

        if not media.remote_id:
            raise TargetError("the file has no url_private")
        return await fetch_url(
            media.remote_id,
            max_bytes,
            headers={"Authorization": f"Bearer {self.config.bot_token}"},
            what=f"slack {media.kind}",
        )

    def route_target(self, message: InboundMessage) -> str:
        if message.message_id in self._slash:  # a response_url expires: the DM or channel
            return f"user:{message.sender.id}" if message.chat_type == "direct" else message.chat_id
        return self.reply_target(message)

    def reply_target(self, message: InboundMessage) -> str:
        if message.message_id in self._slash:  # a slash command: answer on its response_url
            return message.message_id
        return message.chat_id

    # -- identity -------------------------------------------------------------

    @classmethod
    def normalize_allow_entry(cls, entry: str) -> str:
        text = str(entry).strip()
        text = re.sub(r"^(slack:|user:)", "", text, flags=re.I)
        return text.strip("<>@").lower()

    def sender_keys(self, message: InboundMessage) -> Collection[str]:
        keys = {message.sender.id.lower()}
        if message.sender.username:
            keys.add(message.sender.username.lower())
        return keys

    # -- plumbing -------------------------------------------------------------

    def _web(self) -> Any:
        if self.web is None:
            raise ChannelNotReady(f"slack account {self.account_id} is not started")
        return self.web

    def _client(self, token: str | None) -> Any:
        """A Web API client whose calls slack_sdk retries (``retry.attempts`` tries in
        all): failed connections and 500/503 answers after a backoff starting at
        ``retry.minDelayMs`` (doubling, at most ``retry.maxDelayMs``), 429 answers
        after the ``Retry-After`` Slack sends."""
        from slack_sdk.http_retry.builtin_async_handlers import (
            AsyncConnectionErrorRetryHandler,
            AsyncRateLimitErrorRetryHandler,
            AsyncServerErrorRetryHandler,
        )
        from slack_sdk.http_retry.builtin_interval_calculators import (
            BackoffRetryIntervalCalculator,
        )
        from slack_sdk.web.async_client import AsyncWebClient

        retry = self.config.retry
        ceiling = retry.max_delay_ms / 1000

        class Backoff(BackoffRetryIntervalCalculator):
            def calculate_sleep_duration(self, current_attempt: int) -> float:
                return min(ceiling, super().calculate_sleep_duration(current_attempt))

        backoff = Backoff(backoff_factor=retry.min_delay_ms / 1000)
        retries = retry.attempts - 1
        return AsyncWebClient(
            token=token,
            base_url=self.config.api_url,
            timeout=20,
            retry_handlers=[
                AsyncConnectionErrorRetryHandler(
                    max_retry_count=retries, interval_calculator=backoff
                ),
                AsyncServerErrorRetryHandler(max_retry_count=retries, interval_calculator=backoff),
                AsyncRateLimitErrorRetryHandler(max_retry_count=retries),
            ],
        )

    async def _call(self, factory: Callable[[], Awaitable[T]]) -> T:
        """Call the Web API (retried by the client, see :meth:`_client`); library
        errors become channel errors."""
        import aiohttp
        from slack_sdk.errors import SlackApiError, SlackClientError

        try:
            return await factory()
        except SlackApiError as exc:
            response = exc.response
            status = getattr(response, "status_code", 200)
            error = response.get("error") if isinstance(response.data, dict) else None
            if error in AUTH_ERRORS or status in (401, 403):
                raise ChannelAuthFailed(
                    f"slack refused the token: {error or status}",
                    hint="check channels.slack.botToken/appToken",
                ) from None
            if status == 429 or error == "ratelimited":
                wait = float(response.headers.get("Retry-After", 1) or 1)
                raise ChannelNotReady(
                    f"slack rate limit: retry after {wait:.0f}s", retry_after=wait
                ) from None
            if status < 500 and error:
                raise TargetError(f"slack refused the request: {error}") from None
            raise ChannelNotReady(f"slack API error: HTTP {status} {error or ''}".strip()) from None
        except (aiohttp.ClientError, SlackClientError, TimeoutError, OSError) as exc:
            raise ChannelNotReady(f"slack API unreachable: {exc or type(exc).__name__}") from None


def _ephemeral(text: str) -> dict[str, Any]:
    return {"response_type": "ephemeral", "text": text}
