"""The canvas host: a gateway subsystem serving the canvas root on <base+4>.

``<workspace>/canvas`` (``Instance.canvas_root``) is served under
``/__moltbot__/canvas/`` (and ``/__openclaw__/canvas/`` for upstream clients);
a directory serves its ``index.html``; HTML responses get the live-reload
script, which connects to ``/__moltbot__/ws`` (``/__openclaw__/ws``).

Exposure follows the gateway: with ``gateway.bind=loopback`` (the default) the
host listens on 127.0.0.1 only and accepts only loopback ``Host`` headers. When
the gateway binds wider, the canvas host binds the same address and every
request must carry the gateway token (``Authorization: Bearer``) or use the
instance's capability prefix ``/__moltbot__/cap/<capability>/...`` (a secret
URL a WebView can load without headers; see :meth:`CanvasHost.url`). A foreign
``Origin`` is refused everywhere.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import errno
import hashlib
import hmac
import importlib
import math
import mimetypes
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any

from moltbot.canvas import files, livereload
from moltbot.config.schema import Config
from moltbot.instance import env as envvars
from moltbot.lifecycle import HttpSubsystem, State, SubsystemContext
from moltbot.safepath import ensure_dir
from moltbot.security.connguard import mark_authenticated
from moltbot.security.origin import (
    bearer,
    is_loopback_addr,
    is_loopback_host,
    is_loopback_name,
    same_origin,
    secret_matches,
)
from moltbot.security.secrets import secret_equals

if TYPE_CHECKING:
    from aiohttp import web

MOUNTS = ("/__moltbot__/canvas", "/__openclaw__/canvas")
CAPABILITY_PREFIX = "/__moltbot__/cap/"

WELCOME = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Canvas</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
 body { font: 16px system-ui, sans-serif; margin: 3rem; color: #222; }
 code { background: #eee; padding: 0 .3em; }
</style></head>
<body>
<h1>Canvas</h1>
<p>This page is <code>index.html</code> in this instance's canvas folder. Agents put pages
here; open pages reload when a file changes.</p>
</body>
</html>
"""


class CanvasHost(HttpSubsystem):
    """Subsystem ``canvas``. See the module docstring for the contract."""

    name = "canvas"
    port_hint = "stop the other process, or set canvasHost.port (unique per instance)"

    def __init__(self, context: SubsystemContext) -> None:
        super().__init__(context)
        self.root: Path = context.instance.canvas_root
        self.port: int = context.instance.canvas_port
        self.host = context.bind_host
        self.live_reload = context.config.canvas_host.live_reload
        self._clients: set[web.WebSocketResponse] = set()
        self._watch_stop: asyncio.Event | None = None
        self._watch_task: asyncio.Task[None] | None = None
        self.reloads = 0
        secret = context.token or context.password or secrets.token_urlsafe(32)
        digest = hmac.new(
            secret.encode(),
            b"moltbot canvas capability\0" + str(context.instance.state_dir).encode(),
            hashlib.sha256,
        ).digest()
        self.capability = base64.urlsafe_b64encode(digest[:18]).decode().rstrip("=")

    @property
    def wide(self) -> bool:
        """Whether the host listens beyond loopback (then requests need a credential)."""
        return not is_loopback_name(self.host)

    def url(self, rel: str = "", *, capability: bool | None = None) -> str:
        """The URL of ``rel`` in the canvas, for a browser on this host.

        Includes the capability prefix when the host is exposed beyond loopback
        (or when ``capability`` is true).
        """
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        if ":" in host:
            host = f"[{host}]"
        prefix = MOUNTS[0]
        if capability if capability is not None else self.wide:
            prefix = f"{CAPABILITY_PREFIX}{self.capability}/canvas"
        return f"http://{host}:{self.port}{prefix}/{rel.lstrip('/')}"

    # -- lifecycle (HttpSubsystem) ---------------------------------------------------

    def skipped(self) -> str | None:
        if not self.config.canvas_host.enabled:
            return "canvasHost.enabled is false"
        return envvars.flag(self.context.env, "SKIP_CANVAS_HOST")

    def address(self) -> tuple[str, int]:
        return self.host, self.port

    async def prepare(self) -> None:
        await asyncio.to_thread(self._prepare_root)

    async def started(self) -> None:
        self.log.info("canvas host serving %s on %s", self.root, self.url())

    async def closing(self) -> None:
        await self._stop_watcher()
        for ws in list(self._clients):
            with contextlib.suppress(Exception):
                await ws.close(code=1001, message=b"canvas host stopping")
        self._clients.clear()

    def _prepare_root(self) -> None:
        ensure_dir(self.root)
        if not any(self.root.iterdir()):
            files.write(self.root, "index.html", WELCOME.encode("utf-8"))

    def _start_watcher(self) -> None:
        self._watch_stop = asyncio.Event()
        self._watch_task = asyncio.create_task(
            livereload.watch(self.root, self._changed, self._watch_stop, self.log),
            name="canvas-watch",
        )

    async def _ensure_watcher(self) -> None:
        """The folder is watched from the first live-reload page on: an idle host does
        not load watchfiles (about 2 MiB, docs/benchmarks.md). watchfiles sets its
        watch up before its first wait, so once the task has run a step, a change made
        after the page's greeting is seen."""
        if self._watch_task is not None:
            return
        await asyncio.to_thread(importlib.import_module, "watchfiles")
        if self._watch_task is None and self.live_reload:
            self._start_watcher()
            await asyncio.sleep(0)

    async def _stop_watcher(self) -> None:
        if self._watch_stop is not None:
            self._watch_stop.set()
        if self._watch_task is not None:
            self._watch_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._watch_task
        self._watch_task = self._watch_stop = None

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "state": str(self.state),
            "reason": self.reason,
            "port": self.port,
            "bind": self.host,
            "root": str(self.root),
            "url": self.url(capability=False),
            "liveReload": self.live_reload and self.state == State.RUNNING,
            "clients": len(self._clients),
            "reloads": self.reloads,
            "requiresAuth": self.wide,
        }
        if self.wide:
            out["capabilityUrl"] = self.url(capability=True)
        return out

    async def reconfigure(self, config: Config) -> bool:
        old = self.config
        if (
            config.canvas_host.model_dump(exclude={"live_reload"})
            != old.canvas_host.model_dump(exclude={"live_reload"})
            or config.gateway.port != old.gateway.port
            or config.gateway.auth != old.gateway.auth
            or config.agents.defaults.workspace != old.agents.defaults.workspace
        ):
            return False
        self.config = config
        wanted = config.canvas_host.live_reload
        if wanted != self.live_reload and self.state == State.RUNNING:
            if not wanted:
                await self._stop_watcher()
            elif self._clients:
                self._start_watcher()
        self.live_reload = wanted
        return True

    # -- live reload -----------------------------------------------------------------

    async def _changed(self, paths: set[str]) -> None:
        self.reloads += 1
        self.log.debug(
            "canvas changed (%d files): reloading %d pages", len(paths), len(self._clients)
        )
        for ws in list(self._clients):
            try:
                await ws.send_str("reload")
            except Exception:
                self._clients.discard(ws)

    # -- HTTP ------------------------------------------------------------------------

    def refusal(self, request: web.Request) -> web.StreamResponse | None:
        """421 for a non-loopback Host or peer while loopback-only; 403 for a foreign
        Origin always. Credentials are checked per path in :meth:`handle`."""
        from aiohttp import web

        if not self.wide and not (
            is_loopback_host(request.host) and is_loopback_addr(request.remote)
        ):
            return web.Response(
                status=421,
                text="misdirected request: this canvas host "
                "only answers to loopback names (127.0.0.1, localhost)\n",
            )
        if not same_origin(request.headers.get("Origin"), request.host):
            return web.Response(status=403, text="cross-origin request refused\n")
        return None

    def _authorized(self, request: web.Request) -> bool:
        if not self.wide:
            return True
        presented = bearer(request.headers)
        if presented is None:
            return False
        if secret_matches(presented, (self.context.token, self.context.password)):
            mark_authenticated(request)
            return True
        self.context.shield.throttle.failed(request.remote)
        return False

    async def handle(self, request: web.Request) -> web.StreamResponse:
        from aiohttp import web

        raw = request.rel_url.raw_path
        wait = self.context.shield.throttle.retry_after(request.remote) if self.wide else None
        if wait is not None:
            seconds = max(1, math.ceil(wait))
            return web.Response(
                status=429,
                text=f"too many failed authentication attempts; retry in {seconds} s\n",
                headers={"Retry-After": str(seconds)},
            )
        authorized = self._authorized(request)
        prefix = ""
        if raw.startswith(CAPABILITY_PREFIX):
            given, _, rest = raw[len(CAPABILITY_PREFIX) :].partition("/")
            if not secret_equals(given, self.capability):
                if self.wide:
                    self.context.shield.throttle.failed(request.remote)
                return web.Response(status=404, text="not found\n")
            mark_authenticated(request)
            prefix, raw, authorized = CAPABILITY_PREFIX + given, "/__moltbot__/" + rest, True
        if not authorized:
            return web.Response(
                status=401,
                text="unauthorized: use the gateway token or the canvas capability URL\n",
                headers={"WWW-Authenticate": 'Bearer realm="moltbot-canvas"'},
            )
        if raw in ("", "/"):
            raise web.HTTPFound(MOUNTS[0] + "/")
        for family in ("/__moltbot__", "/__openclaw__"):
            if raw == family + "/ws":
                return await self._websocket(request)
            mount = family + "/canvas"
            if raw == mount:
                raise web.HTTPFound((prefix or family) + "/canvas/")
            if raw.startswith(mount + "/"):
                ws_path = (prefix or family) + "/ws"
                return await self._file(request, raw[len(mount) + 1 :], ws_path)
        return web.Response(status=404, text="not found\n")

    async def _file(self, request: web.Request, rel: str, ws_path: str) -> web.StreamResponse:
        from aiohttp import web

        if request.method not in ("GET", "HEAD"):
            return web.Response(
                status=405, text="method not allowed\n", headers={"Allow": "GET, HEAD"}
            )
        try:
            found = await asyncio.to_thread(files.resolve, self.root, rel)
            body = await asyncio.to_thread(files.read, found) if found else None
        except (files.Refused, UnicodeDecodeError) as exc:
            return web.Response(status=403, text=f"forbidden: {exc}\n")
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                return web.Response(status=403, text="forbidden: symlink\n")
            return web.Response(status=404, text="not found\n")
        headers = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
        if found is None or body is None:
            if rel == "" or rel.endswith("/"):
                return web.Response(
                    status=404,
                    content_type="text/html",
                    headers=headers,
                    text="<pre>Missing file.\nCreate index.html in the canvas folder "
                    "(the canvas tool's write action, or canvasHost.root).</pre>\n",
                )
            return web.Response(status=404, text="not found\n", headers=headers)
        suffix = found.path.suffix.lower()
        if suffix in (".html", ".htm"):
            text = body.decode("utf-8", errors="replace")
            if self.live_reload:
                text = livereload.inject(text, ws_path, self.reloads)
            return web.Response(
                text=text, content_type="text/html", charset="utf-8", headers=headers
            )
        content_type = mimetypes.guess_type(found.path.name)[0] or "application/octet-stream"
        return web.Response(body=body, content_type=content_type, headers=headers)

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        from aiohttp import WSMsgType, web

        if not self.live_reload:
            return web.Response(status=404, text="live reload is off\n")
        ws = web.WebSocketResponse(heartbeat=30)
        if not ws.can_prepare(request).ok:
            return web.Response(
                status=426, text="upgrade required\n", headers={"Upgrade": "websocket"}
            )
        await ws.prepare(request)
        await self._ensure_watcher()
        self._clients.add(ws)
        await ws.send_str(f"generation {self.reloads}")
        try:
            async for message in ws:
                if message.type == WSMsgType.ERROR:
                    break
        finally:
            self._clients.discard(ws)
        return ws
