"""Tabs of a profile's browser, and the Playwright page a route acts on.

Page routes act on the tab they name (``targetId``, a unique prefix is enough),
else on the profile's last used tab, else on its first tab; a browser without a
tab gets ``about:blank``. Page routes launch the browser when needed; focus and
close need it running already (409 with a hint otherwise).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from moltbot.browser.cdp import DevTools
from moltbot.browser.config import ProfileSpec
from moltbot.browser.errors import conflict, not_found
from moltbot.browser.pw import PlaywrightPool
from moltbot.browser.supervisor import Supervisor

if TYPE_CHECKING:
    from playwright.async_api import Page


class Tabs:
    def __init__(self, supervisor: Supervisor, devtools: DevTools, pw: PlaywrightPool) -> None:
        self.supervisor = supervisor
        self.profiles = supervisor.profiles
        self.devtools = devtools
        self.pw = pw

    async def list(self, name: str | None) -> dict[str, Any]:
        spec = self.profiles.settings.profile(name)
        endpoint = spec.endpoint
        if not endpoint or not await self.devtools.reachable(endpoint, 1.0):
            return {"profile": spec.name, "running": False, "tabs": []}
        return {
            "profile": spec.name,
            "running": True,
            "tabs": await self.devtools.targets(endpoint),
        }

    async def open(self, name: str | None, url: str) -> dict[str, Any]:
        from moltbot.browser.actions import check_url

        url = check_url(url)
        spec = await self.supervisor.ensure(name)
        tab = await self.devtools.open(spec.endpoint or "", url)
        self.supervisor.record(spec.name).last_target = tab["targetId"]
        return {"ok": True, "profile": spec.name, **tab}

    async def focus(self, name: str | None, target_id: str) -> str:
        spec = await self._running(name)
        target = await self._match(spec, target_id)
        await self.devtools.activate(spec.endpoint or "", target)
        self.supervisor.record(spec.name).last_target = target
        return target

    async def close(self, name: str | None, target_id: str | None) -> str:
        """Close a tab (default: the current one, as page routes would pick it)."""
        spec = await self._running(name)
        rt = self.supervisor.record(spec.name)
        if target_id:
            target = await self._match(spec, target_id)
        else:
            ids = [str(t["targetId"]) for t in await self.devtools.targets(spec.endpoint or "")]
            if not ids:
                raise not_found(f'browser profile "{spec.name}" has no tab open')
            target = rt.last_target if rt.last_target in ids else ids[0]
        await self.devtools.close(spec.endpoint or "", target)
        if rt.last_target == target:
            rt.last_target = None
        return target

    async def page(self, name: str | None, target_id: str | None, feature: str) -> tuple[Page, str]:
        """The Playwright page for a tab (see the module docstring) and its target id."""
        spec = await self.supervisor.ensure(name)
        endpoint = spec.endpoint or ""
        rt = self.supervisor.record(spec.name)
        if target_id:
            target = await self._match(spec, target_id)
        else:
            tabs = await self.devtools.targets(endpoint)
            ids = [str(t["targetId"]) for t in tabs]
            if rt.last_target in ids:
                target = rt.last_target or ""
            elif ids:
                target = ids[0]
            else:
                target = str((await self.devtools.open(endpoint, "about:blank"))["targetId"])
        page = await self.pw.page(endpoint, target, feature)
        rt.last_target = target
        return page, target

    async def _running(self, name: str | None) -> ProfileSpec:
        spec = self.profiles.settings.profile(name)
        if not spec.endpoint or not await self.devtools.reachable(spec.endpoint, 1.0):
            raise conflict(
                f'browser profile "{spec.name}" is not running',
                hint="start it with `moltbot browser start`",
            )
        return spec

    async def _match(self, spec: ProfileSpec, target_id: str) -> str:
        from moltbot.browser.cdp import match_target

        tabs = await self.devtools.targets(spec.endpoint or "")
        return str(match_target(tabs, target_id)["targetId"])
