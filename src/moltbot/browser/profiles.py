"""Browser profiles at run time: settings, CDP port allocation, create/delete/reset.

:class:`Profiles` owns the resolved :class:`~moltbot.browser.config.BrowserSettings`.
Profiles the user creates or deletes are written to the config file (through the
config store, under its lock); CDP ports the service allocates for itself are
recorded in the state dir, never in the config (DESIGN §2). Every write re-resolves
the settings. Writers hold :attr:`Profiles.lock`, so two concurrent creates can
neither pick the same port nor lose each other's entry.

Nothing here touches a running browser: stopping one before a delete or reset is
the service's job (:class:`~moltbot.browser.service.BrowserService`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

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
from moltbot.browser.errors import bad_request, conflict, not_found
from moltbot.config.schema import Config
from moltbot.lifecycle import SubsystemContext

if TYPE_CHECKING:
    from pathlib import Path

    from moltbot.instance.registry import KnownInstance

Mutation = Callable[[dict[str, Any]], None]


class Profiles:
    """The browser profiles of one instance (see the module docstring)."""

    def __init__(self, context: SubsystemContext, log: logging.Logger) -> None:
        self.context = context
        self.instance = context.instance
        self.log = log
        self.config: Config = context.config
        self.settings: BrowserSettings = self._resolve(context.config)
        self.lock = asyncio.Lock()

    def _resolve(self, config: Config) -> BrowserSettings:
        from moltbot.instance.cdp import read_allocations

        allocations = read_allocations(self.instance)
        return resolve(self.instance, config, self.context.env, allocations=allocations)

    def apply(self, config: Config) -> None:
        """Adopt a new config (browsers of vanished profiles: ``Supervisor.prune``)."""
        self.config = config
        self.settings = self._resolve(config)

    async def known(self) -> list[KnownInstance]:
        """Every instance known on this host (their ports are not ours to take)."""
        from moltbot.instance.registry import discover

        return await asyncio.to_thread(discover, self.instance.home, self.context.env)

    # -- writes (hold :attr:`lock`) ------------------------------------------------

    async def _persist(self, mutate: Mutation) -> None:
        from moltbot.config.store import update_config

        snapshot = await asyncio.to_thread(
            update_config, self.instance.config_path, mutate, self.context.env
        )
        self.apply(snapshot.config)

    async def record(self, name: str, port: int | None) -> None:
        """Record (``None``: drop) the service's own CDP allocation in the state dir."""
        from moltbot.instance.cdp import record_allocation

        await asyncio.to_thread(record_allocation, self.instance, name, port)
        self.settings = self._resolve(self.config)

    async def assign_port(self, name: str) -> ProfileSpec:
        """Allocate and record a CDP port for managed profile ``name`` (idempotent)."""
        async with self.lock:
            for _attempt in range(3):
                spec = self.settings.profile(name)
                if spec.cdp_port or not spec.managed:
                    return spec
                port = cdp_ports.allocate(spec, self.settings, self.instance, await self.known())
                await self.record(name, port)
                # Another instance may have allocated the same port at the same moment.
                if port not in cdp_ports.host_claims(self.instance, await self.known()):
                    self.log.info("browser profile %s: CDP port %d", name, port)
                    return self.settings.profile(name)
                await self.record(name, None)
            raise conflict(f'could not allocate a CDP port for browser profile "{name}"')

    async def reallocate(self, name: str) -> ProfileSpec:
        """Drop the profile's own allocation (its port is busy) and take another one."""
        await self.record(name, None)
        return await self.assign_port(name)

    async def create(
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
        async with self.lock:
            if cdp_port:
                probe = ProfileSpec(name, cdp_port, None, chosen, True)
                cdp_ports.check(probe, cdp_port, self.settings, self.instance, await self.known())
                entry["cdpPort"] = cdp_port
            await self._persist(_set_profile(name, entry))
        spec = self.settings.profile(name)
        if spec.managed and not spec.cdp_port:
            spec = await self.assign_port(name)
        return {
            "ok": True,
            "profile": name,
            "cdpPort": spec.cdp_port,
            "cdpUrl": spec.endpoint,
            "color": spec.color,
            "isRemote": spec.remote,
        }

    def check_deletable(self, name: str) -> ProfileSpec:
        spec = self.settings.profile(name)
        if spec.name == self.settings.default_profile:
            raise bad_request(
                f'cannot delete the default browser profile "{name}"',
                hint="set browser.defaultProfile to another profile first",
            )
        if not spec.configured:
            raise not_found(f'browser profile "{name}" is not in the config file')
        return spec

    async def delete(self, name: str) -> dict[str, Any]:
        """Remove the profile from the config and its data to the trash (its browser
        must be stopped first)."""
        spec = self.check_deletable(name)
        async with self.lock:
            await self._persist(_delete_profile(name))
            await self.record(name, None)
        moved = await asyncio.to_thread(self._trash, name, whole=True) if spec.managed else None
        return {"ok": True, "profile": name, "deleted": True, "movedTo": moved}

    def check_resettable(self, name: str | None) -> ProfileSpec:
        spec = self.settings.profile(name)
        if not spec.managed:
            raise bad_request(
                f'browser profile "{spec.name}" attaches to {spec.cdp_url}; '
                "there is no local user data to reset"
            )
        return spec

    async def reset(self, name: str) -> dict[str, Any]:
        """Move the profile's user data to the trash (its browser must be stopped first)."""
        spec = self.check_resettable(name)
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
        user_data: Path = self.instance.browser_user_data(name)
        source = user_data.parent if whole else user_data
        if not source.exists():
            return None
        trash = self.instance.browser_root / ".trash"
        trash.mkdir(parents=True, exist_ok=True, mode=0o700)
        target = trash / f"{name}{'' if whole else '-user-data'}-{int(time.time() * 1000)}"
        os.replace(source, target)
        return str(target)


def _set_profile(name: str, values: Mapping[str, Any]) -> Mutation:
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


def _delete_profile(name: str) -> Mutation:
    def mutate(data: dict[str, Any]) -> None:
        profiles = (data.get("browser") or {}).get("profiles") or {}
        profiles.pop(name, None)

    return mutate
