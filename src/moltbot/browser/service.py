"""The browser control service: a gateway subsystem serving HTTP on 127.0.0.1:<base+2>.

Lifecycle: ``start()`` binds the control port (``PortInUseError`` on a clash)
and makes sure the default profile has a CDP port; browsers are launched on
demand (``POST /start`` or any page route) and ``stop()`` kills every Chromium
this service launched. Every HTTP request needs the gateway token as
``Authorization: Bearer`` and a loopback ``Host``; the gateway's
``browser.request`` method and the agent tool call :meth:`BrowserService.request`
in-process instead.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from moltbot.browser import chrome
from moltbot.browser import ports as cdp_ports
from moltbot.browser.config import (
    BrowserSettings,
    ProfileSpec,
    next_color,
    normalize_cdp_url,
    normalize_color,
    resolve,
    validate_profile_name,
)
from moltbot.browser.errors import BrowserError, bad_request, conflict, not_found, unavailable
from moltbot.browser.pw import PlaywrightPool
from moltbot.browser.routes import BrowserRequest, Reply, router
from moltbot.config.schema import Config
from moltbot.errors import MoltbotError
from moltbot.instance import env as envvars
from moltbot.instance.env import without_identity
from moltbot.lifecycle import State, SubsystemContext, serve_http
from moltbot.security.connguard import mark_authenticated
from moltbot.security.origin import (
    bearer,
    is_loopback_addr,
    is_loopback_host,
    same_origin,
    secret_matches,
)

if TYPE_CHECKING:
    from aiohttp import ClientSession, web
    from playwright.async_api import Page

    from moltbot.browser.cdp import DevTools
    from moltbot.instance.registry import KnownInstance

DEFAULT_TIMEOUT_S = 60.0
STOP_GRACE_S = 0.5  # SIGTERM -> SIGKILL when the whole service stops


@dataclass
class _Profile:
    """What the service knows at runtime about one browser profile."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    chrome: chrome.ChromeProcess | None = None
    last_target: str | None = None


@dataclass
class _Stats:
    requests: int = 0
    total_ms: float = 0.0
    last_ms: float = 0.0

    def add(self, ms: float) -> None:
        self.requests += 1
        self.total_ms += ms
        self.last_ms = ms

    def as_dict(self) -> dict[str, Any]:
        mean = self.total_ms / self.requests if self.requests else 0.0
        return {
            "requests": self.requests,
            "meanMs": round(mean, 2),
            "lastMs": round(self.last_ms, 2),
        }


class BrowserService:
    """Subsystem ``browser``. See the module docstring for the contract."""

    name = "browser"

    def __init__(self, context: SubsystemContext) -> None:
        self.context = context
        self.state = State.CREATED
        self.reason: str | None = None
        self.config: Config = context.config
        self.settings: BrowserSettings = self._resolve(context.config)
        self.pw = PlaywrightPool()
        self.stats = _Stats()
        self._profiles: dict[str, _Profile] = {}
        self._runner: web.AppRunner | None = None
        self._session: ClientSession | None = None
        self._devtools: DevTools | None = None
        self._config_lock: asyncio.Lock | None = None
        self._in_flight = 0
        self._quiet = asyncio.Event()
        self._quiet.set()
        self.log = context.logger or logging.getLogger(__name__)

    # -- lifecycle -----------------------------------------------------------------

    @property
    def instance(self) -> Any:
        return self.context.instance

    @property
    def control_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.control_port}"

    def _skipped(self) -> str | None:
        if not self.settings.enabled:
            return "browser.enabled is false"
        return envvars.flag(self.context.env, "SKIP_BROWSER_CONTROL_SERVER")

    async def start(self) -> None:
        skipped = self._skipped()
        if skipped:
            self.state, self.reason = State.DISABLED, skipped
            return
        import aiohttp
        from aiohttp import web

        from moltbot.browser.cdp import DevTools

        self.state, self.reason = State.STARTING, None
        self._config_lock = asyncio.Lock()
        self._session = aiohttp.ClientSession()
        self._devtools = DevTools(self._session)
        port = self.settings.control_port
        app = web.Application(middlewares=[self._make_guard()], client_max_size=1 << 20)
        app.router.add_route("*", "/{tail:.*}", self._handle_http)
        try:
            self._runner = await serve_http(
                app,
                "127.0.0.1",
                port,
                in_use=lambda: (
                    f"browser control port {port} is in use by "
                    f"{chrome.describe_process(chrome.listener_pid(port))}"
                ),
                hint="stop that process, or set browser.controlPort (keep it unique per instance)",
                guard=self.context.shield.connections,
            )
        except MoltbotError as exc:
            await self._session.close()
            self.state, self.reason = State.FAILED, exc.message
            raise
        self.state = State.RUNNING
        default = self.settings.profile(None)
        if default.managed and default.cdp_port is None:
            try:
                await self._assign_port(default.name)
            except MoltbotError as exc:
                self.log.warning(
                    "browser profile %s: no CDP port yet: %s", default.name, exc.message
                )
        self.log.info(
            "browser control listening on %s (CDP range %d-%d)",
            self.control_url,
            self.settings.cdp_range.start,
            self.settings.cdp_range.stop - 1,
        )

    async def stop(self) -> None:
        if self.state in (State.STOPPED, State.DISABLED, State.CREATED):
            self.state = State.STOPPED if self.state != State.DISABLED else self.state
            return
        self.state = State.STOPPING
        # The gateway gives all subsystems about a second to stop: free the port and
        # kill the browsers at the same time (short grace), then let go of Playwright.
        runner, self._runner = self._runner, None
        await asyncio.gather(
            *(self.stop_browser(name, grace=STOP_GRACE_S) for name in list(self._profiles)),
            *([runner.cleanup()] if runner is not None else []),
            return_exceptions=True,
        )
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.pw.close(), 2.0)
        if self._session is not None:
            await self._session.close()
            self._session = None
        self.state = State.STOPPED

    def status(self) -> dict[str, Any]:
        s = self.settings
        running = {
            name: rt.chrome.pid
            for name, rt in self._profiles.items()
            if rt.chrome is not None and rt.chrome.alive()
        }
        return {
            "state": str(self.state),
            "reason": self.reason,
            "enabled": s.enabled,
            "controlPort": s.control_port,
            "controlUrl": self.control_url,
            "cdpRange": [s.cdp_range.start, s.cdp_range.stop - 1],
            "defaultProfile": s.default_profile,
            "profiles": {
                name: {
                    "cdpPort": spec.cdp_port,
                    "cdpUrl": spec.endpoint,
                    "running": name in running,
                    "pid": running.get(name),
                }
                for name, spec in s.profiles.items()
            },
            "headless": s.headless,
            "noSandbox": s.no_sandbox,
            "noSandboxReason": s.no_sandbox_reason,
            **self.stats.as_dict(),
        }

    async def reconfigure(self, config: Config) -> bool:
        old = self.config
        if (
            config.browser.enabled != old.browser.enabled
            or config.browser.control_port != old.browser.control_port
            or config.gateway.port != old.gateway.port
            or config.gateway.auth != old.gateway.auth
        ):
            return False
        await self._apply_config(config)
        return True

    def _resolve(self, config: Config) -> BrowserSettings:
        from moltbot.instance.cdp import read_allocations

        allocations = read_allocations(self.context.instance)
        return resolve(self.context.instance, config, self.context.env, allocations=allocations)

    async def _apply_config(self, config: Config) -> None:
        self.config = config
        self.settings = self._resolve(config)
        for name in [n for n in self._profiles if n not in self.settings.profiles]:
            await self.stop_browser(name)
            self._profiles.pop(name, None)

    # -- transport -------------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        query: Mapping[str, Any] | None = None,
        body: Any = None,
        timeout_ms: int | None = None,
    ) -> Reply:
        """Run one route in-process (used by HTTP, ``browser.request`` and the agent tool).

        Never raises for route errors: the reply carries the status (504 on timeout).
        """
        if self.state != State.RUNNING:
            return Reply(
                503,
                {
                    "error": f"browser control is not running ({self.state}"
                    + (f": {self.reason}" if self.reason else "")
                    + ")"
                },
            )
        from urllib.parse import parse_qsl

        path, _, raw_query = path.partition("?")
        merged = dict(parse_qsl(raw_query))
        merged.update({k: _query_value(v) for k, v in (query or {}).items() if v is not None})
        req = BrowserRequest(method.upper(), path or "/", merged, body)
        timeout = (timeout_ms / 1000) if timeout_ms else DEFAULT_TIMEOUT_S
        started = time.perf_counter()
        self._in_flight += 1
        self._quiet.clear()
        try:
            reply = await asyncio.wait_for(router.dispatch(self, req), timeout)
        except TimeoutError:
            reply = Reply(
                504, {"error": f"{req.method} {req.path} timed out after {timeout * 1000:.0f} ms"}
            )
        finally:
            self._in_flight -= 1
            if not self._in_flight:
                self._quiet.set()
        self.stats.add((time.perf_counter() - started) * 1000)
        return reply

    async def drain(self, timeout: float) -> None:
        """Wait (at most ``timeout`` seconds) for the requests in progress, so that a
        restart of this service for a new config does not cut them."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._quiet.wait(), timeout)

    def _secrets(self) -> tuple[str | None, ...]:
        return (self.context.token, self.context.password)

    def _make_guard(self) -> Any:
        from aiohttp import web

        @web.middleware
        async def guard(request: web.Request, handler: Callable[..., Any]) -> Any:
            refusal = self._refusal(request)
            return refusal if refusal is not None else await handler(request)

        return guard

    def _refusal(self, request: web.Request) -> web.Response | None:
        """421 for a non-loopback Host, 403 for a foreign peer or Origin, 401 without the token."""
        port = self.settings.control_port
        if not is_loopback_host(request.host, port):
            return _json(
                421,
                {
                    "error": f"misdirected request: Host {request.host!r} is not "
                    "this loopback service",
                    "hint": f"use {self.control_url}",
                },
            )
        if not is_loopback_addr(request.remote):
            return _json(403, {"error": "the browser control service only serves loopback"})
        if not same_origin(request.headers.get("Origin"), request.host):
            return _json(403, {"error": "cross-origin requests are refused"})
        secrets = self._secrets()
        if not any(secrets):
            return _json(
                401,
                {
                    "error": "the gateway has no token configured",
                    "hint": "run `moltbot setup` (it creates gateway.auth.token)",
                },
            )
        throttle = self.context.shield.throttle
        wait = throttle.retry_after(request.remote)
        if wait is not None:
            return _too_many(wait)
        if not secret_matches(bearer(request.headers), secrets):
            throttle.failed(request.remote)
            response = _json(
                401,
                {"error": "unauthorized: send the gateway token as Authorization: Bearer <token>"},
            )
            response.headers["WWW-Authenticate"] = 'Bearer realm="moltbot-browser"'
            return response
        mark_authenticated(request)
        return None

    async def _handle_http(self, request: web.Request) -> web.StreamResponse:
        from aiohttp import web

        if request.method not in ("GET", "POST", "DELETE"):
            return _json(405, {"error": f"method {request.method} not allowed"})
        body: Any = None
        if request.body_exists:
            try:
                body = await request.json(loads=_loads)
            except ValueError:
                return _json(400, {"error": "the request body is not valid JSON"})
        reply = await self.request(request.method, request.path, dict(request.query), body)
        accept = request.headers.get("Accept", "")
        if (
            reply.ok
            and request.path.rstrip("/") == "/screenshot"
            and "image/" in accept
            and isinstance(reply.body, dict)
        ):
            return web.Response(
                body=base64.b64decode(reply.body["data"]),
                content_type=reply.body["mimeType"],
                headers={"X-Target-Id": str(reply.body["targetId"])},
            )
        return _json(reply.status, reply.body)

    # -- profiles --------------------------------------------------------------------

    def _runtime(self, name: str) -> _Profile:
        return self._profiles.setdefault(name, _Profile())

    async def _known(self) -> list[KnownInstance]:
        from moltbot.instance.registry import discover

        return await asyncio.to_thread(discover, self.instance.home, self.context.env)

    async def _persist(self, mutate: Callable[[dict[str, Any]], None]) -> None:
        from moltbot.config.store import update_config

        assert self._config_lock is not None
        snapshot = await asyncio.to_thread(
            update_config, self.instance.config_path, mutate, self.context.env
        )
        await self._apply_config(snapshot.config)

    async def _record(self, name: str, port: int | None) -> None:
        """Record the gateway's own CDP allocation in the state dir (never the config)."""
        from moltbot.instance.cdp import record_allocation

        await asyncio.to_thread(record_allocation, self.instance, name, port)
        self.settings = self._resolve(self.config)

    async def _assign_port(self, name: str) -> ProfileSpec:
        """Allocate and record a CDP port for managed profile ``name`` (idempotent)."""
        assert self._config_lock is not None
        async with self._config_lock:
            for _attempt in range(3):
                spec = self.settings.profile(name)
                if spec.cdp_port or not spec.managed:
                    return spec
                port = cdp_ports.allocate(spec, self.settings, self.instance, await self._known())
                await self._record(name, port)
                # Another instance may have allocated the same port at the same moment.
                if port not in cdp_ports.host_claims(self.instance, await self._known()):
                    self.log.info("browser profile %s: CDP port %d", name, port)
                    return self.settings.profile(name)
                await self._record(name, None)
            raise conflict(f'could not allocate a CDP port for browser profile "{name}"')

    async def profiles(self) -> list[dict[str, Any]]:
        known = await self._known()
        return [await self.profile_status(name, known) for name in self.settings.profiles]

    async def profile_status(
        self, name: str, known: list[KnownInstance] | None = None
    ) -> dict[str, Any]:
        assert self._devtools is not None
        spec = self.settings.profile(name)
        rt = self._profiles.get(spec.name)
        out: dict[str, Any] = {
            **spec.as_dict(),
            "isDefault": spec.name == self.settings.default_profile,
        }
        if spec.managed:
            out["userDataDir"] = str(self.instance.browser_user_data(spec.name))
        endpoint = spec.endpoint
        version = await self._devtools.version(endpoint, 0.5) if endpoint else None
        out["running"] = version is not None
        out["browser"] = version.get("Browser") if version else None
        out["tabCount"] = 0
        if version and endpoint:
            with contextlib.suppress(Exception):
                out["tabCount"] = len(await self._devtools.targets(endpoint, 1.0))
        own = rt is not None and rt.chrome is not None and rt.chrome.alive()
        out["pid"] = rt.chrome.pid if own and rt and rt.chrome else None
        out["launchedByService"] = own
        if own and rt and rt.chrome:
            out["startupMs"] = rt.chrome.startup_ms
        if spec.managed and spec.cdp_port:
            try:
                cdp_ports.check(
                    spec,
                    spec.cdp_port,
                    self.settings,
                    self.instance,
                    known if known is not None else await self._known(),
                )
            except BrowserError as exc:
                out["conflict"] = exc.message
        return out

    async def full_status(self, profile: str | None) -> dict[str, Any]:
        spec = self.settings.profile(profile)
        known = await self._known()
        profiles = [await self.profile_status(name, known) for name in self.settings.profiles]
        selected = next(p for p in profiles if p["name"] == spec.name)
        exe: dict[str, Any] | None
        try:
            exe = chrome.find_executable(self.settings.executable_path, self.context.env).as_dict()
            exe_error = None
        except BrowserError as exc:
            exe, exe_error = None, exc.message
        s = self.settings
        return {
            "enabled": s.enabled,
            "state": str(self.state),
            "controlPort": s.control_port,
            "controlUrl": self.control_url,
            "cdpRange": [s.cdp_range.start, s.cdp_range.stop - 1],
            "defaultProfile": s.default_profile,
            "profile": spec.name,
            "running": selected["running"],
            "cdpPort": selected["cdpPort"],
            "cdpUrl": selected["cdpUrl"],
            "pid": selected["pid"],
            "executable": exe,
            "executableError": exe_error,
            "headless": s.headless,
            "headlessReason": s.headless_reason,
            "noSandbox": s.no_sandbox,
            "noSandboxReason": s.no_sandbox_reason,
            "profiles": profiles,
        }

    async def create_profile(
        self,
        name: str,
        *,
        color: str | None = None,
        cdp_url: str | None = None,
        cdp_port: int | None = None,
    ) -> dict[str, Any]:
        validate_profile_name(name)
        if name in self.settings.profiles:
            raise conflict(f'browser profile "{name}" already exists')
        if cdp_url and cdp_port:
            raise bad_request("give cdpUrl (attach to a running Chrome) or cdpPort, not both")
        used = {spec.color for spec in self.settings.profiles.values()}
        chosen = normalize_color(color) or next_color(used)
        entry: dict[str, Any] = {"color": chosen}
        if cdp_url:
            entry["cdpUrl"] = normalize_cdp_url(cdp_url)
        assert self._config_lock is not None
        async with self._config_lock:
            if cdp_port:
                probe = ProfileSpec(name, cdp_port, None, chosen, True)
                cdp_ports.check(probe, cdp_port, self.settings, self.instance, await self._known())
                entry["cdpPort"] = cdp_port
            await self._persist(_set_profile(name, entry))
        spec = self.settings.profile(name)
        if spec.managed and not spec.cdp_port:
            spec = await self._assign_port(name)
        return {
            "ok": True,
            "profile": name,
            "cdpPort": spec.cdp_port,
            "cdpUrl": spec.endpoint,
            "color": spec.color,
            "isRemote": spec.remote,
        }

    async def delete_profile(self, name: str) -> dict[str, Any]:
        spec = self.settings.profile(name)
        if spec.name == self.settings.default_profile:
            raise bad_request(
                f'cannot delete the default browser profile "{name}"',
                hint="set browser.defaultProfile to another profile first",
            )
        if not spec.configured:
            raise not_found(f'browser profile "{name}" is not in the config file')
        await self.stop_browser(name)
        assert self._config_lock is not None
        async with self._config_lock:
            await self._persist(_delete_profile(name))
            await self._record(name, None)
        moved = await asyncio.to_thread(self._trash, name, whole=True) if spec.managed else None
        return {"ok": True, "profile": name, "deleted": True, "movedTo": moved}

    async def reset_profile(self, name: str | None) -> dict[str, Any]:
        spec = self.settings.profile(name)
        if not spec.managed:
            raise bad_request(
                f'browser profile "{spec.name}" attaches to {spec.cdp_url}; '
                "there is no local user data to reset"
            )
        await self.stop_browser(spec.name)
        source = self.instance.browser_user_data(spec.name)
        moved = await asyncio.to_thread(self._trash, spec.name, whole=False)
        return {
            "ok": True,
            "profile": spec.name,
            "moved": moved is not None,
            "from": str(source),
            "to": moved,
        }

    def _trash(self, name: str, *, whole: bool) -> str | None:
        """Move a profile's data (or just its user-data) to ``<browser>/.trash``."""
        user_data = self.instance.browser_user_data(name)
        source = user_data.parent if whole else user_data
        if not source.exists():
            return None
        trash = self.instance.browser_root / ".trash"
        trash.mkdir(parents=True, exist_ok=True, mode=0o700)
        target = trash / f"{name}{'' if whole else '-user-data'}-{int(time.time() * 1000)}"
        os.replace(source, target)
        return str(target)

    # -- browsers --------------------------------------------------------------------

    async def ensure_browser(self, name: str | None) -> ProfileSpec:
        """Make the profile's Chrome reachable: attach (cdpUrl), reuse, adopt or launch."""
        assert self._devtools is not None
        spec = self.settings.profile(name)
        rt = self._runtime(spec.name)
        async with rt.lock:
            if not spec.managed:
                endpoint = spec.endpoint or ""
                if await self._devtools.reachable(endpoint, 3.0 if spec.remote else 1.0):
                    return spec
                raise unavailable(
                    f'Chrome for browser profile "{spec.name}" is not reachable at {endpoint}',
                    hint="start that Chrome with --remote-debugging-port, or fix "
                    f"browser.profiles.{spec.name}.cdpUrl (moltbot never launches it)",
                )
            if spec.cdp_port is None:
                spec = await self._assign_port(spec.name)
            port = spec.cdp_port
            assert port is not None
            cdp_ports.check(spec, port, self.settings, self.instance, await self._known())
            endpoint = f"http://127.0.0.1:{port}"
            if rt.chrome is not None:
                if rt.chrome.alive() and await self._devtools.reachable(endpoint):
                    return spec
                await self.pw.disconnect(endpoint)
                await chrome.stop(rt.chrome)
                rt.chrome = None
            user_data = self.instance.browser_user_data(spec.name)
            if await self._devtools.reachable(endpoint):
                pid = chrome.listener_pid(port)
                if pid and f"--user-data-dir={user_data}" in chrome.process_cmdline(pid):
                    rt.chrome = chrome.ChromeProcess(spec.name, pid, port, user_data, None, None)
                    self.log.info(
                        "browser profile %s: adopted running Chromium pid %d", spec.name, pid
                    )
                    return spec
                busy = f"already served by {chrome.describe_process(pid)}, which is not this "
                busy += "profile's browser"
            elif not cdp_ports.port_is_free(port):
                busy = f"already in use by {chrome.describe_process(chrome.listener_pid(port))}"
            else:
                busy = ""
            if busy and spec.allocated:  # our own allocation: take another port
                self.log.info("browser profile %s: CDP port %d is %s", spec.name, port, busy)
                await self._record(spec.name, None)
                spec = await self._assign_port(spec.name)
                port = spec.cdp_port
                assert port is not None
            elif busy:
                raise conflict(
                    f'CDP port {port} of browser profile "{spec.name}" is {busy}',
                    hint="stop that process, or give this profile another port: "
                    f"moltbot config unset browser.profiles.{spec.name}.cdpPort",
                )
            exe = chrome.find_executable(self.settings.executable_path, self.context.env)
            rt.chrome = await chrome.launch(
                spec.name,
                exe,
                port=port,
                user_data=user_data,
                headless=self.settings.headless,
                no_sandbox=self.settings.no_sandbox,
                env=_child_env(self.context.env),
                ready=self._ready,
            )
            rt.last_target = None
            self.log.info(
                "browser profile %s: launched %s pid %d on CDP port %d in %d ms",
                spec.name,
                exe.path,
                rt.chrome.pid,
                port,
                rt.chrome.startup_ms or 0,
            )
            return spec

    async def _ready(self, port: int) -> bool:
        assert self._devtools is not None
        return await self._devtools.reachable(f"http://127.0.0.1:{port}", 0.5)

    async def stop_browser(self, name: str, grace: float = chrome.STOP_GRACE_S) -> bool:
        """Stop the profile's Chromium if this service launched it. True if one was stopped."""
        rt = self._profiles.get(name)
        if rt is None or rt.chrome is None:
            spec = self.settings.profiles.get(name)
            if spec is not None and spec.endpoint:
                await self.pw.disconnect(spec.endpoint)
            return False
        async with rt.lock:
            proc, rt.chrome = rt.chrome, None
            if proc is None:
                return False
            rt.last_target = None
            await chrome.stop(proc, grace)
            await self.pw.disconnect(f"http://127.0.0.1:{proc.port}")
            return True

    # -- tabs and pages ----------------------------------------------------------------

    async def tabs(self, name: str | None) -> dict[str, Any]:
        assert self._devtools is not None
        spec = self.settings.profile(name)
        endpoint = spec.endpoint
        if not endpoint or not await self._devtools.reachable(endpoint, 1.0):
            return {"profile": spec.name, "running": False, "tabs": []}
        return {
            "profile": spec.name,
            "running": True,
            "tabs": await self._devtools.targets(endpoint),
        }

    async def open_tab(self, name: str | None, url: str) -> dict[str, Any]:
        from moltbot.browser.actions import check_url

        assert self._devtools is not None
        url = check_url(url)
        spec = await self.ensure_browser(name)
        tab = await self._devtools.open(spec.endpoint or "", url)
        self._runtime(spec.name).last_target = tab["targetId"]
        return {"ok": True, "profile": spec.name, **tab}

    async def focus_tab(self, name: str | None, target_id: str) -> str:
        assert self._devtools is not None
        spec = await self._running(name)
        target = await self._match(spec, target_id)
        await self._devtools.activate(spec.endpoint or "", target)
        self._runtime(spec.name).last_target = target
        return target

    async def close_tab(self, name: str | None, target_id: str | None) -> str:
        """Close a tab (default: the current one, as page routes would pick it)."""
        assert self._devtools is not None
        spec = await self._running(name)
        rt = self._runtime(spec.name)
        if target_id:
            target = await self._match(spec, target_id)
        else:
            ids = [str(t["targetId"]) for t in await self._devtools.targets(spec.endpoint or "")]
            if not ids:
                raise not_found(f'browser profile "{spec.name}" has no tab open')
            target = rt.last_target if rt.last_target in ids else ids[0]
        await self._devtools.close(spec.endpoint or "", target)
        if rt.last_target == target:
            rt.last_target = None
        return target

    async def _running(self, name: str | None) -> ProfileSpec:
        assert self._devtools is not None
        spec = self.settings.profile(name)
        if not spec.endpoint or not await self._devtools.reachable(spec.endpoint, 1.0):
            raise conflict(
                f'browser profile "{spec.name}" is not running',
                hint="start it with `moltbot browser start`",
            )
        return spec

    async def _match(self, spec: ProfileSpec, target_id: str) -> str:
        from moltbot.browser.cdp import match_target

        assert self._devtools is not None
        tabs = await self._devtools.targets(spec.endpoint or "")
        return str(match_target(tabs, target_id)["targetId"])

    async def page(self, name: str | None, target_id: str | None, feature: str) -> tuple[Page, str]:
        """The Playwright page for a tab (default: the last used tab, else the first one;
        a browser with no tab gets ``about:blank``). Launches the browser if needed."""
        assert self._devtools is not None
        spec = await self.ensure_browser(name)
        endpoint = spec.endpoint or ""
        rt = self._runtime(spec.name)
        if target_id:
            target = await self._match(spec, target_id)
        else:
            tabs = await self._devtools.targets(endpoint)
            ids = [str(t["targetId"]) for t in tabs]
            if rt.last_target in ids:
                target = rt.last_target or ""
            elif ids:
                target = ids[0]
            else:
                target = str((await self._devtools.open(endpoint, "about:blank"))["targetId"])
        page = await self.pw.page(endpoint, target, feature)
        rt.last_target = target
        return page, target


def _set_profile(name: str, values: Mapping[str, Any]) -> Callable[[dict[str, Any]], None]:
    def mutate(data: dict[str, Any]) -> None:
        browser = data.setdefault("browser", {})
        profiles = browser.setdefault("profiles", {})
        entry = profiles.setdefault(name, {})
        for key, value in values.items():
            if value is None:
                entry.pop(key, None)
            else:
                entry[key] = value

    return mutate


def _delete_profile(name: str) -> Callable[[dict[str, Any]], None]:
    def mutate(data: dict[str, Any]) -> None:
        profiles = (data.get("browser") or {}).get("profiles") or {}
        profiles.pop(name, None)

    return mutate


def _child_env(env: Mapping[str, str]) -> dict[str, str]:
    out = without_identity(env)
    out.setdefault("HOME", os.path.expanduser("~"))
    return out


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _loads(text: str) -> Any:
    import orjson

    return orjson.loads(text)


def _json(status: int, body: Any) -> web.Response:
    import orjson
    from aiohttp import web

    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json")


def _too_many(wait: float) -> web.Response:
    seconds = max(1, math.ceil(wait))
    response = _json(
        429,
        {
            "error": f"too many failed authentication attempts; retry in {seconds} s",
            "retryAfterMs": int(wait * 1000),
        },
    )
    response.headers["Retry-After"] = str(seconds)
    return response
