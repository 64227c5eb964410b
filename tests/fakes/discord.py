"""A stand-in Discord: the gateway WebSocket protocol and the REST routes discord.py calls.

One aiohttp server on a loopback port:

- REST under ``/api/v10`` (the channel's ``apiRoot`` is ``<url>/api``): ``GET /users/@me``
  (login), ``GET /gateway/bot``, ``GET /channels/{id}``, ``POST /channels/{id}/messages``
  (JSON or multipart with files), ``POST /channels/{id}/typing``, ``PUT
  /channels/{id}/messages/{mid}/reactions/{emoji}/@me``, ``POST /users/@me/channels``
  (open a DM), ``PUT /applications/{app}/commands`` (slash command registration),
  ``POST /interactions/{id}/{token}/callback``; Discord's JSON errors (401 ``{"message":
  "401: Unauthorized", "code": 0}``, 404 ``Unknown Channel`` code 10003);
- attachments under ``/attachments/...`` (the CDN);
- the gateway at ``/gateway``: HELLO (op 10) → IDENTIFY (op 2) → READY and GUILD_CREATE
  dispatches, heartbeats (op 1 → op 11 ACK), dispatches with sequence numbers, RESUME
  (op 6: the missed dispatches replayed, then RESUMED), close code 4004 for a revoked
  token. ``compress=zlib-stream`` gets binary frames from one zlib stream flushed per
  message (``Z_SYNC_FLUSH``), as Discord sends them.

Tests drive it through :class:`Bot`: ``push_message`` (a user writes), ``sent`` (what
the bot posted, files included), ``drop()`` (cut the WebSocket: the client must RESUME),
``revoke()`` (the token stops working).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

API = "/api/v10"
_ids = itertools.count(1_100_000_000_000_000_000)


def snowflake() -> str:
    return str(next(_ids))


@dataclass
class Sent:
    channel_id: str
    payload: dict[str, Any]
    files: list[dict[str, Any]] = field(default_factory=list)
    message_id: str = ""

    @property
    def content(self) -> str:
        return str(self.payload.get("content") or "")


@dataclass
class Session:
    session_id: str
    ws: web.WebSocketResponse | None
    compress: Any = None
    seq: int = 0
    log: list[dict[str, Any]] = field(default_factory=list)
    """Every dispatch sent on this session (for RESUME)."""


class Bot:
    """One bot account (token) of the stand-in."""

    def __init__(self, server: FakeDiscord, token: str, name: str) -> None:
        self.server = server
        self.token = token
        self.user = {
            "id": snowflake(),
            "username": name,
            "discriminator": "0",
            "global_name": None,
            "avatar": None,
            "bot": True,
        }
        self.application_id = snowflake()
        self.revoked = False
        self.guild_id = snowflake()
        self.channel_id = snowflake()
        self.thread_id = snowflake()
        self.sent: list[Sent] = []
        self.reactions: list[tuple[str, str, str]] = []
        self.typing: list[str] = []
        self.commands: list[dict[str, Any]] = []
        self.interaction_replies: list[dict[str, Any]] = []
        self.dm_channels: dict[str, str] = {}
        self.sessions: dict[str, Session] = {}
        self.identifies = 0
        self.resumes = 0
        self._changed = asyncio.Condition()

    @property
    def id(self) -> str:
        return str(self.user["id"])

    # -- the world ----------------------------------------------------------------

    def guild(self) -> dict[str, Any]:
        return {
            "id": self.guild_id,
            "name": "Crew",
            "owner_id": snowflake(),
            "unavailable": False,
            "member_count": 3,
            "roles": [{"id": self.guild_id, "name": "@everyone", "permissions": "1071698660929"}],
            "emojis": [],
            "stickers": [],
            "features": [],
            "members": [],
            "presences": [],
            "voice_states": [],
            "channels": [
                {
                    "id": self.channel_id,
                    "type": 0,
                    "guild_id": self.guild_id,
                    "name": "general",
                    "position": 0,
                    "permission_overwrites": [],
                }
            ],
            "threads": [
                {
                    "id": self.thread_id,
                    "type": 11,
                    "guild_id": self.guild_id,
                    "parent_id": self.channel_id,
                    "owner_id": snowflake(),
                    "name": "deploys",
                    "message_count": 1,
                    "member_count": 1,
                    "thread_metadata": {
                        "archived": False,
                        "auto_archive_duration": 1440,
                        "archive_timestamp": "2026-01-01T00:00:00+00:00",
                        "locked": False,
                    },
                }
            ],
            "large": False,
        }

    def dm_channel(self, user_id: str) -> str:
        return self.dm_channels.setdefault(user_id, snowflake())

    def channel_info(self, channel_id: str) -> dict[str, Any] | None:
        for user_id, dm in self.dm_channels.items():
            if dm == channel_id:
                return {"id": dm, "type": 1, "recipients": [user(user_id)], "last_message_id": None}
        guild = self.guild()
        for item in [*guild["channels"], *guild["threads"]]:
            if item["id"] == channel_id:
                return item
        return None

    # -- what users do ------------------------------------------------------------

    async def push_message(
        self,
        content: str,
        *,
        author: dict[str, Any] | None = None,
        channel: str = "dm",
        mention: bool = False,
        attachments: list[dict[str, Any]] | None = None,
        reply_to: str | None = None,
    ) -> dict[str, Any]:
        """A user writes: in their DM (``channel="dm"``), in #general (``"guild"``) or in
        the thread (``"thread"``). Returns the MESSAGE_CREATE payload."""
        author = author or user("4242", "ann")
        if channel == "dm":
            channel_id, guild_id = self.dm_channel(author["id"]), None
        elif channel == "guild":
            channel_id, guild_id = self.channel_id, self.guild_id
        else:
            channel_id, guild_id = self.thread_id, self.guild_id
        mentions = [self.user] if mention else []
        if mention:
            content = f"<@{self.id}> {content}"
        message: dict[str, Any] = {
            "id": snowflake(),
            "channel_id": channel_id,
            "author": author,
            "content": content,
            "timestamp": "2026-01-30T12:00:00.000000+00:00",
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": mentions,
            "mention_roles": [],
            "attachments": attachments or [],
            "embeds": [],
            "pinned": False,
            "type": 0,
        }
        if guild_id:
            message["guild_id"] = guild_id
            message["member"] = {"roles": [], "joined_at": "2026-01-01T00:00:00+00:00"}
        if reply_to:
            message["message_reference"] = {"message_id": reply_to, "channel_id": channel_id}
        await self.dispatch("MESSAGE_CREATE", message)
        return message

    def attachment(self, name: str, data: bytes, content_type: str) -> dict[str, Any]:
        """An attachment served by the stand-in's CDN."""
        key = snowflake()
        self.server.files[key] = (data, content_type)
        url = f"{self.server.url}/attachments/{key}/{name}"
        return {
            "id": key,
            "filename": name,
            "size": len(data),
            "url": url,
            "proxy_url": url,
            "content_type": content_type,
        }

    async def push_slash(
        self,
        name: str,
        *,
        args: str | None = None,
        author: dict[str, Any] | None = None,
        channel: str = "dm",
        expired: bool = False,
    ) -> str:
        """A user runs ``/name`` (with the ``args`` option when given) in their DM
        (``channel="dm"``) or in #general (``"guild"``); returns the interaction id.
        ``expired``: its token is not valid any more (the callback gets 404 10062)."""
        author = author or user("4242", "ann")
        interaction_id = snowflake()
        data: dict[str, Any] = {"id": snowflake(), "name": name, "type": 1}
        if args is not None:
            data["options"] = [{"name": "args", "type": 3, "value": args}]
        payload: dict[str, Any] = {
            "id": interaction_id,
            "application_id": self.application_id,
            "type": 2,
            "data": data,
            "token": "itoken-expired" if expired else f"itoken-{interaction_id}",
            "version": 1,
            "locale": "en-US",
            "app_permissions": "0",
            "entitlements": [],
            "authorizing_integration_owners": {},
            "attachment_size_limit": 8 * 1024 * 1024,
        }
        if channel == "dm":
            dm = self.dm_channel(author["id"])
            payload.update(channel_id=dm, channel={"id": dm, "type": 1}, user=author, context=1)
        else:
            payload.update(
                channel_id=self.channel_id,
                channel={**(self.channel_info(self.channel_id) or {}), "flags": 0},
                guild_id=self.guild_id,
                member={
                    "user": author,
                    "roles": [],
                    "joined_at": "2026-01-01T00:00:00+00:00",
                    "permissions": "1071698660929",
                    "flags": 0,
                    "deaf": False,
                    "mute": False,
                },
                context=0,
            )
        await self.dispatch("INTERACTION_CREATE", payload)
        return interaction_id

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        """Send a dispatch (op 0) on the live session, or log it for a RESUME."""
        session = self.live() or (list(self.sessions.values())[-1] if self.sessions else None)
        if session is None:
            raise AssertionError("no gateway session to dispatch on")
        await self.server.send_dispatch(session, event, data)

    async def drop(self) -> None:
        """Cut the gateway connection without a close frame reason the client must
        act on (like a network blip): discord.py reconnects and RESUMEs."""
        session = self.live()
        if session is not None and session.ws is not None:
            ws, session.ws = session.ws, None
            await ws.close(code=4000, message=b"unknown error")

    def revoke(self) -> None:
        """The token stops working: REST answers 401, the gateway closes with 4004."""
        self.revoked = True
        for session in self.sessions.values():
            if session.ws is not None:
                ws, session.ws = session.ws, None
                asyncio.ensure_future(ws.close(code=4004, message=b"Authentication failed."))

    def live(self) -> Session | None:
        return next((s for s in self.sessions.values() if s.ws is not None), None)

    # -- waiting ------------------------------------------------------------------

    async def changed(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait(self, predicate: Any, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        async with self._changed:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("condition not met on the stand-in Discord")
                try:
                    await asyncio.wait_for(self._changed.wait(), left)
                except TimeoutError:
                    pass

    async def wait_sent(self, count: int, timeout: float = 15.0) -> list[Sent]:
        await self.wait(lambda: len(self.sent) >= count, timeout)
        return self.sent[:count]

    async def wait_ready(self, identifies: int = 1, timeout: float = 15.0) -> None:
        await self.wait(lambda: self.identifies >= identifies and self.live() is not None, timeout)


def user(user_id: str, name: str = "user") -> dict[str, Any]:
    return {
        "id": user_id,
        "username": name,
        "discriminator": "0",
        "global_name": name.title(),
        "avatar": None,
    }


class FakeDiscord:
    def __init__(self) -> None:
        self.bots: dict[str, Bot] = {}
        self.files: dict[str, tuple[bytes, str]] = {}
        self.port = 0
        self._runner: web.AppRunner | None = None
        self.requests: list[tuple[str, str]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_root(self) -> str:
        return f"{self.url}/api"

    def bot(self, token: str, name: str = "moltbot") -> Bot:
        if token not in self.bots:
            self.bots[token] = Bot(self, token, name)
        return self.bots[token]

    async def start(self) -> FakeDiscord:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/gateway", self._gateway)
        app.router.add_get("/attachments/{key}/{name}", self._attachment)
        app.router.add_route("*", API + "/{tail:.*}", self._rest)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        for bot in self.bots.values():
            for session in bot.sessions.values():
                if session.ws is not None:
                    await session.ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # -- gateway --------------------------------------------------------------------

    async def _gateway(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        compress = zlib.compressobj() if request.query.get("compress") == "zlib-stream" else None
        pending = Session(session_id="", ws=ws, compress=compress)
        await self._send(
            pending, {"op": 10, "d": {"heartbeat_interval": 41250}, "s": None, "t": None}
        )
        session: Session | None = None
        bot: Bot | None = None
        async for frame in ws:
            if frame.type != WSMsgType.TEXT:
                continue
            message = json.loads(frame.data)
            op, data = message.get("op"), message.get("d")
            if op == 1:  # heartbeat
                await self._send(pending, {"op": 11, "d": None, "s": None, "t": None})
            elif op == 2:  # identify
                bot = self.bots.get(str(data.get("token")))
                if bot is None or bot.revoked:
                    await ws.close(code=4004, message=b"Authentication failed.")
                    break
                session = Session(session_id=snowflake(), ws=ws, compress=compress)
                bot.sessions[session.session_id] = session
                bot.identifies += 1
                await self.send_dispatch(
                    session,
                    "READY",
                    {
                        "v": 10,
                        "user": bot.user,
                        "guilds": [{"id": bot.guild_id, "unavailable": True}],
                        "session_id": session.session_id,
                        "resume_gateway_url": f"ws://127.0.0.1:{self.port}/gateway",
                        "application": {"id": bot.application_id, "flags": 0},
                        "private_channels": [],
                        "relationships": [],
                    },
                )
                await self.send_dispatch(session, "GUILD_CREATE", bot.guild())
                await bot.changed()
            elif op == 6:  # resume
                bot = self.bots.get(str(data.get("token")))
                old = bot.sessions.get(str(data.get("session_id"))) if bot else None
                if bot is None or bot.revoked:
                    await ws.close(code=4004, message=b"Authentication failed.")
                    break
                if old is None:
                    await self._send(pending, {"op": 9, "d": False, "s": None, "t": None})
                    continue
                old.ws, old.compress = ws, compress
                session = old
                bot.resumes += 1
                missed = [d for d in old.log if d["s"] > int(data.get("seq") or 0)]
                for dispatch in missed:
                    await self._send(old, dispatch)
                await self.send_dispatch(old, "RESUMED", {})
                await bot.changed()
        if session is not None and session.ws is ws:
            session.ws = None
        return ws

    async def send_dispatch(self, session: Session, event: str, data: dict[str, Any]) -> None:
        session.seq += 1
        frame = {"op": 0, "s": session.seq, "t": event, "d": data}
        session.log.append(frame)
        if session.ws is not None:
            await self._send(session, frame)

    async def _send(self, session: Session, frame: dict[str, Any]) -> None:
        ws = session.ws
        if ws is None or ws.closed:
            return
        text = json.dumps(frame)
        if session.compress is None:
            await ws.send_str(text)
        else:
            body = session.compress.compress(text.encode()) + session.compress.flush(
                zlib.Z_SYNC_FLUSH
            )
            await ws.send_bytes(body)

    # -- CDN --------------------------------------------------------------------------

    async def _attachment(self, request: web.Request) -> web.Response:
        found = self.files.get(request.match_info["key"])
        if found is None:
            return web.Response(status=404)
        data, content_type = found
        return web.Response(body=data, content_type=content_type)

    # -- REST ---------------------------------------------------------------------------

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        tail = "/" + request.match_info["tail"]
        self.requests.append((request.method, tail))
        interaction = tail.startswith("/interactions/")
        bot = None
        if not interaction:
            auth = request.headers.get("Authorization", "")
            bot = self.bots.get(auth.removeprefix("Bot "))
            if bot is None or bot.revoked or not auth.startswith("Bot "):
                return _error(401, "401: Unauthorized", 0)
        parts = tail.strip("/").split("/")
        method = request.method
        if interaction:
            return await self._interaction(request, parts)
        assert bot is not None
        if method == "GET" and tail == "/users/@me":
            return _json(bot.user)
        if method == "GET" and tail == "/gateway/bot":
            return _json(
                {
                    "url": f"ws://127.0.0.1:{self.port}/gateway",
                    "shards": 1,
                    "session_start_limit": {
                        "total": 1000,
                        "remaining": 999,
                        "reset_after": 0,
                        "max_concurrency": 1,
                    },
                }
            )
        if method == "GET" and tail == "/oauth2/applications/@me":
            return _json(
                {
                    "id": bot.application_id,
                    "name": "moltbot",
                    "description": "",
                    "icon": None,
                    "bot_public": False,
                    "bot_require_code_grant": False,
                    "owner": user(snowflake(), "owner"),
                    "verify_key": "0" * 64,
                    "flags": 0,
                }
            )
        if method == "PUT" and parts[:1] == ["applications"] and parts[-1] == "commands":
            commands = await request.json()
            bot.commands = [
                {**c, "id": snowflake(), "application_id": bot.application_id, "version": "1"}
                for c in commands
            ]
            await bot.changed()
            return _json(bot.commands)
        if method == "POST" and tail == "/users/@me/channels":
            body = await request.json()
            recipient = str(body.get("recipient_id"))
            channel_id = bot.dm_channel(recipient)
            return _json(
                {
                    "id": channel_id,
                    "type": 1,
                    "recipients": [user(recipient)],
                    "last_message_id": None,
                }
            )
        if parts[0] == "channels" and len(parts) >= 2:
            channel_id = parts[1]
            info = bot.channel_info(channel_id)
            if info is None:
                return _error(404, "Unknown Channel", 10003)
            if method == "GET" and len(parts) == 2:
                return _json(info)
            if method == "POST" and parts[2:] == ["typing"]:
                bot.typing.append(channel_id)
                await bot.changed()
                return web.Response(status=204)
            if method == "PUT" and len(parts) == 7 and parts[4] == "reactions":
                from urllib.parse import unquote

                bot.reactions.append((channel_id, parts[3], unquote(parts[5])))
                await bot.changed()
                return web.Response(status=204)
            if method == "POST" and parts[2:] == ["messages"]:
                return await self._create_message(request, bot, channel_id, info)
        return _error(404, f"404: Not Found ({method} {tail})", 0)

    async def _create_message(
        self, request: web.Request, bot: Bot, channel_id: str, info: dict[str, Any]
    ) -> web.Response:
        files: list[dict[str, Any]] = []
        if request.content_type.startswith("multipart/"):
            payload: dict[str, Any] = {}
            reader = await request.multipart()
            async for part in reader:
                if part.name == "payload_json":
                    payload = json.loads(await part.text())
                else:
                    files.append(
                        {
                            "field": part.name,
                            "filename": part.filename,
                            "content_type": part.headers.get("Content-Type"),
                            "data": bytes(await part.read()),
                        }
                    )
        else:
            payload = await request.json()
        content = str(payload.get("content") or "")
        if len(content) > 2000:
            return _error(400, "Invalid Form Body", 50035)
        message_id = snowflake()
        bot.sent.append(Sent(channel_id, payload, files, message_id))
        await bot.changed()
        body = {
            "id": message_id,
            "channel_id": channel_id,
            "author": bot.user,
            "content": content,
            "timestamp": "2026-01-30T12:00:01.000000+00:00",
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": [
                {
                    "id": snowflake(),
                    "filename": f["filename"],
                    "size": len(f["data"]),
                    "url": f"{self.url}/attachments/x/{f['filename']}",
                    "proxy_url": f"{self.url}/attachments/x/{f['filename']}",
                }
                for f in files
            ],
            "embeds": [],
            "pinned": False,
            "type": 0,
        }
        if info.get("guild_id"):
            body["guild_id"] = info["guild_id"]
        return _json(body)

    async def _interaction(self, request: web.Request, parts: list[str]) -> web.Response:
        """``POST /interactions/{id}/{token}/callback?with_response=true``: the
        callback's resource, as Discord answers it."""
        interaction_id = parts[1] if len(parts) > 1 else ""
        token = parts[2] if len(parts) > 2 else ""
        for bot in self.bots.values():
            if token == f"itoken-{interaction_id}":
                body = (
                    await request.json()
                    if request.content_type == "application/json"
                    else {"multipart": True}
                )
                bot.interaction_replies.append(body)
                await bot.changed()
                return _json(
                    {
                        "interaction": {
                            "id": interaction_id,
                            "type": 2,
                            "response_message_id": snowflake(),
                            "response_message_loading": False,
                            "response_message_ephemeral": True,
                        }
                    }
                )
        return _error(404, "Unknown interaction", 10062)


def _json(data: Any, status: int = 200) -> web.Response:
    """JSON as Discord sends it: ``Content-Type: application/json`` exactly (discord.py
    parses a body as JSON only then)."""
    return web.Response(
        body=json.dumps(data).encode(), status=status, headers={"Content-Type": "application/json"}
    )


def _error(status: int, message: str, code: int) -> web.Response:
    return _json({"message": message, "code": code}, status)
