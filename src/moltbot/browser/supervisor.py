"""Chromium supervision, one browser per profile: attach, reuse, adopt or launch; stop.

:meth:`Supervisor.ensure` makes a profile's browser reachable. A ``cdpUrl``
profile is only attached to (moltbot never launches or kills it). A managed
profile reuses the Chromium this service launched, adopts one still running on
its user-data dir (after a gateway restart), or launches one on its CDP port,
taking another port when its own allocation turns out busy (an explicit port
that is busy is a 409 naming the holder). Each profile has its own lock, so two
requests never launch two browsers for it. :meth:`Supervisor.stop` kills only
browsers this service launched.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from moltbot.browser import chrome
from moltbot.browser import ports as cdp_ports
from moltbot.browser.cdp import DevTools
from moltbot.browser.config import ProfileSpec
from moltbot.browser.errors import conflict, unavailable
from moltbot.browser.profiles import Profiles
from moltbot.browser.pw import PlaywrightPool
from moltbot.instance.env import without_identity
from moltbot.lifecycle import SubsystemContext


@dataclass
class Running:
    """What the service knows at run time about one profile's browser."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    chrome: chrome.ChromeProcess | None = None
    last_target: str | None = None
    """The tab page routes act on when none is named (see :mod:`moltbot.browser.tabs`)."""


class Supervisor:
    """The browsers of one instance's profiles (see the module docstring)."""

    def __init__(
        self,
        context: SubsystemContext,
        profiles: Profiles,
        devtools: DevTools,
        pw: PlaywrightPool,
        log: logging.Logger,
    ) -> None:
        self.context = context
        self.profiles = profiles
        self.devtools = devtools
        self.pw = pw
        self.log = log
        self._running: dict[str, Running] = {}

    def record(self, name: str) -> Running:
        return self._running.setdefault(name, Running())

    def launched(self, name: str) -> chrome.ChromeProcess | None:
        """The live Chromium this service launched (or adopted) for ``name``."""
        rt = self._running.get(name)
        if rt is None or rt.chrome is None or not rt.chrome.alive():
            return None
        return rt.chrome

    def pids(self) -> dict[str, int]:
        """Profile name → pid of every live browser this service launched."""
        return {
            name: rt.chrome.pid
            for name, rt in self._running.items()
            if rt.chrome is not None and rt.chrome.alive()
        }

    async def ready(self, port: int) -> bool:
        """Whether DevTools answers on ``port`` (the launch readiness probe)."""
        return await self.devtools.reachable(f"http://127.0.0.1:{port}", 0.5)

    async def ensure(self, name: str | None) -> ProfileSpec:
        """Make the profile's Chrome reachable: attach (cdpUrl), reuse, adopt or launch."""
        spec = self.profiles.settings.profile(name)
        rt = self.record(spec.name)
        async with rt.lock:
            if not spec.managed:
                return await self._attach(spec)
            return await self._managed(spec, rt)

    async def _attach(self, spec: ProfileSpec) -> ProfileSpec:
        endpoint = spec.endpoint or ""
        if await self.devtools.reachable(endpoint, 3.0 if spec.remote else 1.0):
            return spec
        raise unavailable(
            f'Chrome for browser profile "{spec.name}" is not reachable at {endpoint}',
            hint="start that Chrome with --remote-debugging-port, or fix "
            f"browser.profiles.{spec.name}.cdpUrl (moltbot never launches it)",
        )

    async def _managed(self, spec: ProfileSpec, rt: Running) -> ProfileSpec:
        instance = self.context.instance
        if spec.cdp_port is None:
            spec = await self.profiles.assign_port(spec.name)
        port = spec.cdp_port
        assert port is not None
        settings = self.profiles.settings
        cdp_ports.check(spec, port, settings, instance, await self.profiles.known())
        endpoint = f"http://127.0.0.1:{port}"
        if rt.chrome is not None:
            if rt.chrome.alive() and await self.devtools.reachable(endpoint):
                return spec
            await self.pw.disconnect(endpoint)
            await chrome.stop(rt.chrome)
            rt.chrome = None
        user_data = instance.browser_user_data(spec.name)
        if await self.devtools.reachable(endpoint):
            pid = chrome.listener_pid(port)
            if pid and f"--user-data-dir={user_data}" in chrome.process_cmdline(pid):
                rt.chrome = chrome.ChromeProcess(spec.name, pid, port, user_data, None, None)
                self.log.info("browser profile %s: adopted running Chromium pid %d", spec.name, pid)
                return spec
            busy = f"already served by {chrome.describe_process(pid)}, which is not this "
            busy += "profile's browser"
        elif not cdp_ports.port_is_free(port):
            busy = f"already in use by {chrome.describe_process(chrome.listener_pid(port))}"
        else:
            busy = ""
        if busy and spec.allocated:  # our own allocation: take another port
            self.log.info("browser profile %s: CDP port %d is %s", spec.name, port, busy)
            spec = await self.profiles.reallocate(spec.name)
            port = spec.cdp_port
            assert port is not None
        elif busy:
            raise conflict(
                f'CDP port {port} of browser profile "{spec.name}" is {busy}',
                hint="stop that process, or give this profile another port: "
                f"moltbot config unset browser.profiles.{spec.name}.cdpPort",
            )
        exe = chrome.find_executable(settings.executable_path, self.context.env)
        rt.chrome = await chrome.launch(
            spec.name,
            exe,
            port=port,
            user_data=user_data,
            headless=settings.headless,
            no_sandbox=settings.no_sandbox,
            env=_child_env(self.context.env),
            ready=self.ready,
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

    async def stop(self, name: str, grace: float = chrome.STOP_GRACE_S) -> bool:
        """Stop the profile's Chromium if this service launched it. True if one was stopped."""
        rt = self._running.get(name)
        if rt is None or rt.chrome is None:
            spec = self.profiles.settings.profiles.get(name)
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

    async def stop_all(self, grace: float) -> None:
        """Stop every browser this service launched, all at once."""
        await asyncio.gather(
            *(self.stop(name, grace=grace) for name in list(self._running)),
            return_exceptions=True,
        )

    async def prune(self) -> None:
        """Stop and forget the browsers of profiles the settings no longer have."""
        for name in [n for n in self._running if n not in self.profiles.settings.profiles]:
            await self.stop(name)
            self._running.pop(name, None)


def _child_env(env: Mapping[str, str]) -> dict[str, str]:
    out = without_identity(env)
    out.setdefault("HOME", os.path.expanduser("~"))
    return out
