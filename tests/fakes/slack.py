"""A stand-in Slack: Web API, Socket Mode and Events API (aiohttp, loopback).

Web API: ``POST /api/<method>`` with the token in ``Authorization: Bearer``
(or a ``token`` parameter), form or JSON bodies, answers ``{"ok": true, ...}``
or ``{"ok": false, "error": "..."}`` as Slack does. Implemented: auth.test,
apps.connections.open (app token; returns a ``ws://`` URL served here),
chat.postMessage, conversations.open, files.getUploadURLExternal (+ the upload
URL) and files.completeUploadExternal.

Socket Mode: the WebSocket sends ``hello``, then envelopes
``{envelope_id, type: "events_api", payload, accepts_response_payload}`` and
records the client's acks ``{envelope_id}``. As Slack does, an event whose
envelope is not acknowledged is delivered again (``retry_attempt`` 1..3, after
``Workspace.retry_delays``; Slack's own are 0 s, 1 min and 5 min) over whatever
socket is open then, waiting for one while none is.

Slash commands: ``ws.slash(command, text, user=..., channel=...)`` builds the
payload Slack sends (its ``response_url`` is served here and records each answer in
``ws.responses``); ``ws.push_slash(payload)`` sends it over Socket Mode
(``type: "slash_commands"``) and returns the acknowledgement's payload; over HTTP it
is ``ws.post_event(url, {}, secret, form=payload)``.

Test controls: :meth:`FakeSlack.workspace` creates a bot (bot token + app
token); ``ws.push_event(event)`` sends an event over Socket Mode;
``ws.post_event(url, event, signing_secret)`` delivers it by signed HTTP as the
Events API does; ``ws.posted`` records chat.postMessage calls;
:meth:`FakeSlack.fail` scripts 5xx answers; :meth:`FakeSlack.drop_sockets`
closes every socket abruptly.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import itertools
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from tests.fakes.loopback import serve


@dataclass
class Workspace:
    server: FakeSlack
    bot_token: str
    app_token: str
    team_id: str
    bot_user_id: str
    bot_id: str
    posted: list[dict[str, Any]] = field(default_factory=list)
    uploads: list[dict[str, Any]] = field(default_factory=list)
    acks: list[str] = field(default_factory=list)
    ack_payloads: dict[str, Any] = field(default_factory=dict)
    responses: list[dict[str, Any]] = field(default_factory=list)
    """Answers posted to slash commands' response URLs (``{"url_id", **body}``)."""
    sockets: list[web.WebSocketResponse] = field(default_factory=list)
    connections_opened: int = 0
    retry_delays: tuple[float, ...] = (1.0, 3.0, 10.0)
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    """Every envelope sent, retries included."""
    users: dict[str, str] = field(default_factory=dict)
    """user id -> handle, for users.info (default: the id's last three letters)."""
    _ts: itertools.count = field(default_factory=lambda: itertools.count(1))

    def next_ts(self) -> str:
        return f"{int(time.time())}.{next(self._ts):06d}"

    def event(
        self,
        *,
        channel: str,
        user: str,
        text: str,
        channel_type: str = "im",
        kind: str = "message",
        thread_ts: str | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        event = {
            "type": kind,
            "channel": channel,
            "user": user,
            "text": text,
            "ts": self.next_ts(),
            "channel_type": channel_type,
            "team": self.team_id,
            "event_ts": self.next_ts(),
            **extra,
        }
        if thread_ts:
            event["thread_ts"] = thread_ts
        return event

    def file(self, name: str, data: bytes, mimetype: str) -> dict[str, Any]:
        """A file a user shared: its object for an event's ``files``; ``url_private``
        answers only with this workspace's bot token, as Slack's does."""
        file_id = f"F{uuid.uuid4().hex[:8].upper()}"
        self.server.private_files[file_id] = (self.bot_token, data, mimetype)
        return {
            "id": file_id,
            "name": name,
            "title": name,
            "mimetype": mimetype,
            "filetype": name.rsplit(".", 1)[-1],
            "size": len(data),
            "url_private": f"{self.server.url}/files-pri/{file_id}/{name}",
            "url_private_download": f"{self.server.url}/files-pri/{file_id}/download/{name}",
        }

    def payload(self, event: dict[str, Any]) -> dict[str, Any]:
        return {
            "token": "verification-token",
            "team_id": self.team_id,
            "api_app_id": "A0APP",
            "event": event,
            "type": "event_callback",
            "event_id": f"Ev{uuid.uuid4().hex[:10]}",
            "event_time": int(time.time()),
            "authorizations": [
                {"team_id": self.team_id, "user_id": self.bot_user_id, "is_bot": True}
            ],
        }

    async def push_event(self, event: dict[str, Any], timeout: float = 10.0) -> str:
        """Send ``event`` over the live socket and wait until one delivery of it is
        acknowledged (retrying as Slack does); returns the acknowledged envelope id."""
        payload = self.payload(event)
        deadline = time.monotonic() + timeout
        attempts = [await self._deliver(payload, 0, deadline)]
        for attempt, delay in enumerate(self.retry_delays, start=1):
            retry_at = time.monotonic() + delay
            while time.monotonic() < retry_at:
                acked = [e for e in attempts if e in self.acks]
                if acked:
                    return acked[0]
                if time.monotonic() > deadline:
                    raise TimeoutError("envelope not acknowledged")
                await asyncio.sleep(0.02)
            attempts.append(await self._deliver(payload, attempt, deadline))
        while not [e for e in attempts if e in self.acks]:
            if time.monotonic() > deadline:
                raise TimeoutError("envelope not acknowledged")
            await asyncio.sleep(0.02)
        return [e for e in attempts if e in self.acks][0]

    async def _deliver(self, payload: dict[str, Any], attempt: int, deadline: float) -> str:
        while True:
            open_sockets = [s for s in self.sockets if not s.closed]
            if open_sockets:
                break
            if time.monotonic() > deadline:
                raise TimeoutError("no socket mode connection")
            await asyncio.sleep(0.02)
        envelope = {
            "envelope_id": str(uuid.uuid4()),
            "type": "events_api",
            "accepts_response_payload": False,
            "retry_attempt": attempt,
            "retry_reason": "timeout" if attempt else "",
            "payload": payload,
        }
        self.deliveries.append(envelope)
        with contextlib.suppress(ConnectionError, RuntimeError):
            await open_sockets[-1].send_json(envelope)
        return str(envelope["envelope_id"])

    def slash(
        self, command: str, text: str = "", *, user: str, channel: str, channel_name: str = ""
    ) -> dict[str, str]:
        """A slash command's payload as Slack sends it (form fields)."""
        url_id = uuid.uuid4().hex[:12]
        self.server.response_urls[url_id] = self
        return {
            "token": "verification-token",
            "team_id": self.team_id,
            "team_domain": "acme",
            "channel_id": channel,
            "channel_name": channel_name or ("directmessage" if channel[0] == "D" else "general"),
            "user_id": user,
            "user_name": user.lower(),
            "command": command,
            "text": text,
            "api_app_id": "A0APP",
            "response_url": f"{self.server.url}/respond/{url_id}",
            "trigger_id": f"{int(time.time())}.{uuid.uuid4().hex[:10]}",
        }

    async def push_slash(self, payload: dict[str, str], timeout: float = 10.0) -> Any:
        """Send a slash command over Socket Mode; the payload of its acknowledgement."""
        deadline = time.monotonic() + timeout
        while not (open_sockets := [s for s in self.sockets if not s.closed]):
            if time.monotonic() > deadline:
                raise TimeoutError("no socket mode connection")
            await asyncio.sleep(0.02)
        envelope = {
            "envelope_id": str(uuid.uuid4()),
            "type": "slash_commands",
            "accepts_response_payload": True,
            "payload": payload,
        }
        await open_sockets[-1].send_json(envelope)
        while envelope["envelope_id"] not in self.acks:
            if time.monotonic() > deadline:
                raise TimeoutError("slash command not acknowledged")
            await asyncio.sleep(0.02)
        return self.ack_payloads.get(str(envelope["envelope_id"]))

    async def wait_responses(self, count: int = 1, timeout: float = 10.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.responses) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"expected {count} slash answers, got {self.responses}")
            await asyncio.sleep(0.02)
        return self.responses

    async def post_event(
        self,
        url: str,
        event: dict[str, Any],
        signing_secret: str,
        *,
        payload: Any = None,
        timestamp: int | None = None,
        form: dict[str, str] | None = None,
    ) -> tuple[int, str]:
        """POST an Events API request signed with ``signing_secret``; (status, body).
        ``form``: an interactivity / slash-command request (form-encoded) instead."""
        from urllib.parse import urlencode

        if form is not None:
            body = urlencode(form).encode()
        else:
            body = json.dumps(payload if payload is not None else self.payload(event)).encode()
        ts = str(timestamp if timestamp is not None else int(time.time()))
        signature = (
            "v0="
            + hmac.new(
                signing_secret.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256
            ).hexdigest()
        )
        headers = {
            "Content-Type": "application/x-www-form-urlencoded" if form else "application/json",
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": signature,
        }
        async with (
            aiohttp.ClientSession() as session,
            session.post(url, data=body, headers=headers) as response,
        ):
            return response.status, await response.text()

    async def wait_posted(self, count: int = 1, timeout: float = 10.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.posted) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"expected {count} posts, got {len(self.posted)}: "
                    f"{[p.get('text', '')[:60] for p in self.posted]}"
                )
            await asyncio.sleep(0.02)
        return self.posted

    async def wait_connected(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not [s for s in self.sockets if not s.closed]:
            if time.monotonic() > deadline:
                raise TimeoutError("no socket mode connection")
            await asyncio.sleep(0.02)


class FakeSlack:
    def __init__(self) -> None:
        self.workspaces: list[Workspace] = []
        self.failures: dict[str, list[int]] = {}
        self.runner: web.AppRunner | None = None
        self.url = ""
        self._ids = itertools.count(1)
        self._tickets: dict[str, Workspace] = {}
        self._uploads: dict[str, dict[str, Any]] = {}
        self.response_urls: dict[str, Workspace] = {}
        self.private_files: dict[str, tuple[str, bytes, str]] = {}

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/"

    def workspace(self, name: str = "acme") -> Workspace:
        n = next(self._ids)
        ws = Workspace(
            self,
            f"xoxb-{name}-{n}",
            f"xapp-{name}-{n}",
            f"T{n:04d}{name.upper()}",
            f"U0BOT{n:03d}",
            f"B0BOT{n:03d}",
        )
        self.workspaces.append(ws)
        return ws

    def fail(self, method: str, status: int = 500, times: int = 1) -> None:
        self.failures.setdefault(method, []).extend([status] * times)

    async def drop_sockets(self) -> None:
        for ws in self.workspaces:
            for socket in ws.sockets:
                if not socket.closed:
                    transport = socket._req.transport if socket._req else None  # type: ignore[union-attr]
                    if transport is not None:
                        transport.abort()

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/api/{method}", self._api)
        app.router.add_get("/api/{method}", self._api)
        app.router.add_get("/link", self._socket)
        app.router.add_post("/upload/{file_id}", self._upload)
        app.router.add_post("/respond/{url_id}", self._respond)
        app.router.add_get("/files-pri/{file_id}/{tail:.*}", self._private_file)
        self.runner, self.url = await serve(app)
        return self.url

    async def stop(self) -> None:
        for ws in self.workspaces:
            for socket in ws.sockets:
                await socket.close()
        if self.runner:
            await self.runner.cleanup()

    # -- Web API -----------------------------------------------------------

    async def _api(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        queue = self.failures.get(method) or self.failures.get("*")
        if queue:
            status = queue.pop(0)
            if status == 429:  # as Slack rate-limits: a JSON error and Retry-After
                return web.json_response(
                    {"ok": False, "error": "ratelimited"}, status=429, headers={"Retry-After": "1"}
                )
            return web.Response(status=status, text="upstream connect error")
        params: dict[str, Any] = dict(request.query)
        if request.can_read_body:
            if request.content_type == "application/json":
                params.update(await request.json())
            else:
                params.update(dict(await request.post()))
        token = params.pop("token", None)
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            token = auth[len("Bearer ") :]
        if not token:
            return web.json_response({"ok": False, "error": "not_authed"})
        handler = getattr(self, "m_" + method.replace(".", "_"), None)
        if handler is None:
            return web.json_response({"ok": False, "error": "unknown_method"})
        result = handler(token, params)
        return web.json_response(result)

    def _by_bot(self, token: str) -> Workspace | None:
        return next((w for w in self.workspaces if w.bot_token == token), None)

    def m_auth_test(self, token: str, params: dict[str, Any]) -> dict[str, Any]:
        ws = self._by_bot(token)
        if ws is None:
            return {"ok": False, "error": "invalid_auth"}
        return {
            "ok": True,
            "url": "https://acme.slack.com/",
            "team": "Acme",
            "user": "molty",
            "team_id": ws.team_id,
            "user_id": ws.bot_user_id,
            "bot_id": ws.bot_id,
        }

    def m_apps_connections_open(self, token: str, params: dict[str, Any]) -> dict[str, Any]:
        ws = next((w for w in self.workspaces if w.app_token == token), None)
        if ws is None:
            if token.startswith("xoxb-"):
                return {"ok": False, "error": "not_allowed_token_type"}
            return {"ok": False, "error": "invalid_auth"}
        ticket = uuid.uuid4().hex
        self._tickets[ticket] = ws
        ws.connections_opened += 1
        ws_url = self.url.replace("http://", "ws://")
        return {"ok": True, "url": f"{ws_url}/link?ticket={ticket}&app_id=A0APP"}

    def m_chat_postMessage(self, token: str, params: dict[str, Any]) -> dict[str, Any]:
        ws = self._by_bot(token)
        if ws is None:
            return {"ok": False, "error": "invalid_auth"}
        channel = str(params.get("channel") or "")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        if channel == "CNOTFOUND":
            return {"ok": False, "error": "channel_not_found"}
        text = str(params.get("text") or "")
        if not text and not params.get("blocks"):
            return {"ok": False, "error": "no_text"}
        if len(text) > 40000:
            return {"ok": False, "error": "msg_too_long"}
        ts = ws.next_ts()
        ws.posted.append({**params, "ts": ts})
        return {
            "ok": True,
            "channel": channel,
            "ts": ts,
            "message": {
                "type": "message",
                "text": text,
                "user": ws.bot_user_id,
                "ts": ts,
                "bot_id": ws.bot_id,
            },
        }

    def m_users_info(self, token: str, params: dict[str, Any]) -> dict[str, Any]:
        ws = self._by_bot(token)
        if ws is None:
            return {"ok": False, "error": "invalid_auth"}
        user_id = str(params.get("user") or "")
        if not user_id.startswith(("U", "W")):
            return {"ok": False, "error": "user_not_found"}
        name = ws.users.get(user_id, user_id[-3:].lower())
        return {
            "ok": True,
            "user": {
                "id": user_id,
                "team_id": ws.team_id,
                "name": name,
                "real_name": name.title(),
                "is_bot": False,
                "profile": {"real_name": name.title(), "display_name": name},
            },
        }

    def m_conversations_open(self, token: str, params: dict[str, Any]) -> dict[str, Any]:
        ws = self._by_bot(token)
        if ws is None:
            return {"ok": False, "error": "invalid_auth"}
        users = str(params.get("users") or "")
        if not users:
            return {"ok": False, "error": "users_list_not_supplied"}
        return {"ok": True, "channel": {"id": "D" + users.lstrip("UW")}}

    def m_files_getUploadURLExternal(self, token: str, params: dict[str, Any]) -> dict[str, Any]:
        ws = self._by_bot(token)
        if ws is None:
            return {"ok": False, "error": "invalid_auth"}
        file_id = f"F{uuid.uuid4().hex[:8].upper()}"
        self._uploads[file_id] = {
            "filename": params.get("filename"),
            "workspace": ws,
            "content": None,
        }
        return {"ok": True, "upload_url": f"{self.url}/upload/{file_id}", "file_id": file_id}

    def m_files_completeUploadExternal(self, token: str, params: dict[str, Any]) -> dict[str, Any]:
        ws = self._by_bot(token)
        if ws is None:
            return {"ok": False, "error": "invalid_auth"}
        files = params.get("files")
        if isinstance(files, str):
            files = json.loads(files)
        out = []
        for item in files or []:
            upload = self._uploads.get(item["id"])
            if upload is None or upload["content"] is None:
                return {"ok": False, "error": "file_not_found"}
            ws.uploads.append(
                {
                    "id": item["id"],
                    "title": item.get("title"),
                    "filename": upload["filename"],
                    "content": upload["content"],
                    "channel_id": params.get("channel_id"),
                    "thread_ts": params.get("thread_ts"),
                }
            )
            out.append({"id": item["id"], "name": upload["filename"]})
        return {"ok": True, "files": out}

    async def _private_file(self, request: web.Request) -> web.StreamResponse:
        found = self.private_files.get(request.match_info["file_id"])
        if found is None:
            return web.Response(status=404)
        token, data, mimetype = found
        if request.headers.get("Authorization") != f"Bearer {token}":
            # Slack answers an unauthenticated file URL with its HTML login page
            return web.Response(text="<html>sign in</html>", content_type="text/html")
        return web.Response(body=data, content_type=mimetype)

    async def _upload(self, request: web.Request) -> web.StreamResponse:
        upload = self._uploads.get(request.match_info["file_id"])
        if upload is None:
            return web.Response(status=404)
        if request.content_type == "multipart/form-data":
            reader = await request.multipart()
            part = await reader.next()
            upload["content"] = await part.read() if part is not None else b""  # type: ignore[union-attr]
        else:
            upload["content"] = await request.read()
        return web.Response(text="OK - " + str(len(upload["content"] or b"")))

    async def _respond(self, request: web.Request) -> web.StreamResponse:
        url_id = request.match_info["url_id"]
        ws_state = self.response_urls.get(url_id)
        if ws_state is None:
            return web.Response(status=404, text="no_such_url")
        ws_state.responses.append({"url_id": url_id, **(await request.json())})
        return web.Response(text="ok")

    # -- Socket Mode --------------------------------------------------------

    async def _socket(self, request: web.Request) -> web.StreamResponse:
        ws_state = self._tickets.pop(request.query.get("ticket", ""), None)
        if ws_state is None:
            return web.Response(status=401, text="invalid ticket")
        socket = web.WebSocketResponse(autoping=True)
        await socket.prepare(request)
        ws_state.sockets.append(socket)
        await socket.send_json(
            {
                "type": "hello",
                "num_connections": 1,
                "debug_info": {"host": "fake", "approximate_connection_time": 3600},
                "connection_info": {"app_id": "A0APP"},
            }
        )
        async for message in socket:
            if message.type == aiohttp.WSMsgType.TEXT:
                data = json.loads(message.data)
                if "envelope_id" in data:
                    if "payload" in data:
                        ws_state.ack_payloads[data["envelope_id"]] = data["payload"]
                    ws_state.acks.append(data["envelope_id"])
        return socket
