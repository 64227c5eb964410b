"""The browser control service: a gateway subsystem serving HTTP on 127.0.0.1:<base+2>.

Lifecycle (:class:`~moltbot.lifecycle.HttpSubsystem`): ``start()`` binds the
control port (``PortInUseError`` on a clash) and makes sure the default profile
has a CDP port; browsers are launched on demand (``POST /start`` or any page
route) and ``stop()`` kills every Chromium this service launched. Every HTTP
request needs the gateway token as ``Authorization: Bearer`` and a loopback
``Host`` (:mod:`moltbot.browser.http`); the gateway's ``browser.request`` method
and the agent tool call :meth:`BrowserService.request` in-process instead.

The parts: :mod:`~moltbot.browser.profiles` (settings, CDP port allocation,
create/delete/reset), :mod:`~moltbot.browser.supervisor` (one Chromium per
profile), :mod:`~moltbot.browser.tabs` (tabs and pages),
:mod:`~moltbot.browser.status` (status views) and :mod:`~moltbot.browser.routes`
(the route table every transport shares).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from moltbot.browser import chrome, http
from moltbot.browser.cdp import DevTools
from moltbot.browser.config import BrowserSettings
from moltbot.browser.profiles import Profiles
from moltbot.browser.pw import PlaywrightPool
from moltbot.browser.supervisor import Supervisor
from moltbot.browser.tabs import Tabs
from moltbot.config.schema import Config
from moltbot.errors import MoltbotError
from moltbot.instance import env as envvars
from moltbot.lifecycle import HttpSubsystem, State, SubsystemContext

if TYPE_CHECKING:
    from aiohttp import web

    from moltbot.browser.routes import Reply

DEFAULT_TIMEOUT_S = 60.0
STOP_GRACE_S = 0.5  # SIGTERM -> SIGKILL when the whole service stops


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


class BrowserService(HttpSubsystem):
    """Subsystem ``browser``. See the module docstring for the contract."""

    name = "browser"
    port_hint = "stop that process, or set browser.controlPort (keep it unique per instance)"

    def __init__(self, context: SubsystemContext) -> None:
        super().__init__(context)
        self.pw = PlaywrightPool()
        self.devtools = DevTools()
        self.stats = _Stats()
        self.profiles = Profiles(context, self.log)
        self.supervisor = Supervisor(context, self.profiles, self.devtools, self.pw, self.log)
        self.tabs = Tabs(self.supervisor, self.devtools, self.pw)
        self._in_flight = 0
        self._quiet = asyncio.Event()
        self._quiet.set()

    @property
    def settings(self) -> BrowserSettings:
        return self.profiles.settings

    @property
    def control_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.control_port}"

    # -- lifecycle (HttpSubsystem) ---------------------------------------------------

    def skipped(self) -> str | None:
        if not self.settings.enabled:
            return "browser.enabled is false"
        return envvars.flag(self.context.env, "SKIP_BROWSER_CONTROL_SERVER")

    def address(self) -> tuple[str, int]:
        return "127.0.0.1", self.settings.control_port

    def in_use(self) -> str:
        port = self.settings.control_port
        holder = chrome.describe_process(chrome.listener_pid(port))
        return f"browser control port {port} is in use by {holder}"

    def refusal(self, request: web.Request) -> web.StreamResponse | None:
        return http.refusal(self, request)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        return await http.handle(self, request)

    async def started(self) -> None:
        default = self.settings.profile(None)
        if default.managed and default.cdp_port is None:
            try:
                await self.profiles.assign_port(default.name)
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

    async def closing(self) -> None:
        # The gateway gives all subsystems about a second to stop: the browsers are
        # killed (short grace) while the port is freed.
        await self.supervisor.stop_all(STOP_GRACE_S)

    async def release(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.pw.close(), 2.0)
        await self.devtools.shutdown()

    def status(self) -> dict[str, Any]:
        s = self.settings
        running = self.supervisor.pids()
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
        self.config = config
        self.profiles.apply(config)
        await self.supervisor.prune()
        return True

    # -- profile operations that touch a running browser -------------------------------

    async def delete_profile(self, name: str) -> dict[str, Any]:
        self.profiles.check_deletable(name)
        await self.supervisor.stop(name)
        result = await self.profiles.delete(name)
        await self.supervisor.prune()
        return result

    async def reset_profile(self, name: str | None) -> dict[str, Any]:
        spec = self.profiles.check_resettable(name)
        await self.supervisor.stop(spec.name)
        return await self.profiles.reset(spec.name)

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
        The route table (with the actions' models) is imported with the first request.
        """
        from moltbot.browser.routes import BrowserRequest, Reply, router

        if self.state != State.RUNNING:
            return Reply(
                503,
                {
                    "error": f"browser control is not running ({self.state}"
                    + (f": {self.reason}" if self.reason else "")
                    + ")"
                },
            )
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


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
