"""The channels this installation knows, found through their manifests.

Built-in channels are the sub-packages of :mod:`moltbot.channels` that have a
``manifest`` module; other distributions add channels through the entry-point
group ``moltbot.channels`` (``toy = "toy_channel.manifest:MANIFEST"``, the
entry point's name being the channel id). Both are read once per process,
without importing any platform SDK. A manifest that cannot be loaded is left
out and reported by :func:`problems` (``channels status``, the gateway log).
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import pkgutil
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from moltbot.channels.config import ResolvedAccount, account_ids, resolve_account
from moltbot.channels.errors import ChannelConfigError, UnknownChannel
from moltbot.channels.manifest import ChannelManifest

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "moltbot.channels"


@lru_cache(maxsize=1)
def _discover() -> tuple[dict[str, ChannelManifest], dict[str, str]]:
    found: dict[str, ChannelManifest] = {}
    problems: dict[str, str] = {}

    def add(name: str, loader: Any, where: str) -> None:
        try:
            manifest = loader()
        except Exception as exc:  # a broken plugin must not hide the other channels
            problems[name] = f"cannot load the manifest of {name} ({where}): {exc}"
            return
        if not isinstance(manifest, ChannelManifest):
            problems[name] = f"{where} is not a ChannelManifest"
            return
        if manifest.id in found:
            problems[manifest.id] = f"channel {manifest.id} is defined twice; {where} ignored"
            return
        found[manifest.id] = manifest

    import moltbot.channels as package

    for info in pkgutil.iter_modules(package.__path__):
        name = f"{package.__name__}.{info.name}.manifest"
        if info.ispkg and importlib.util.find_spec(name) is not None:
            add(info.name, lambda name=name: importlib.import_module(name).MANIFEST, name)
    from importlib.metadata import entry_points

    for point in entry_points(group=ENTRY_POINT_GROUP):
        add(point.name, point.load, f"entry point {point.value}")
    ordered = sorted(found.values(), key=lambda m: (m.order, m.id))
    for problem in problems.values():
        log.warning("%s", problem)
    return {m.id: m for m in ordered}, problems


def manifests() -> dict[str, ChannelManifest]:
    """Every known channel by id, in display order."""
    return dict(_discover()[0])


def problems() -> dict[str, str]:
    """Channels whose manifest could not be loaded: id → why."""
    return dict(_discover()[1])


def names() -> list[str]:
    return list(_discover()[0])


def manifest(name: str) -> ChannelManifest:
    """The manifest of ``name``. Raises UnknownChannel naming the known channels."""
    found = _discover()[0].get(name.lower())
    if found is None:
        raise UnknownChannel(f"unsupported channel: {name}", hint=f"known channels: {known()}")
    return found


def known() -> str:
    return ", ".join(names()) or "none"


def channel_class(name: str) -> type[Any]:
    """The Channel class of ``name``. Raises UnknownChannel, or a clear error
    when the channel's library is not installed."""
    spec = manifest(name)
    try:
        return spec.load_channel()
    except ModuleNotFoundError as exc:
        if exc.name and not exc.name.startswith(spec.channel.split(".")[0]):
            raise UnknownChannel(
                f"channel {spec.id} needs the Python package {exc.name!r}, which is not installed",
                hint=f"pip install {exc.name}",
            ) from None
        raise


def resolve_accounts(
    name: str, channels: Mapping[str, Any], env: Mapping[str, str]
) -> list[ResolvedAccount[Any]]:
    """Every account of channel ``name``, validated. Raises ChannelConfigError."""
    section = channels.get(name)
    if section is None:
        section = {}
    if not isinstance(section, dict):
        raise ChannelConfigError(f"channels.{name} must be an object")
    spec = manifest(name)
    return [
        resolve_account(name, spec.config_model, section, account_id, env, spec.env_tokens)
        for account_id in account_ids(
            section, env_token=env_configured(name, env), credential_keys=spec.credential_keys
        )
    ]


def env_configured(name: str, env: Mapping[str, str]) -> bool:
    """True when the environment supplies the channel's main token (e.g. TELEGRAM_BOT_TOKEN)."""
    variable = manifest(name).main_env
    return bool(variable) and bool(env.get(variable or "", "").strip())


def active_channels(channels: Mapping[str, Any], env: Mapping[str, str]) -> list[str]:
    """Channels to start: those with a config section, plus those configured by env alone."""
    return [
        name
        for name in names()
        if isinstance(channels.get(name), dict) or env_configured(name, env)
    ]


def unknown_sections(channels: Mapping[str, Any]) -> list[str]:
    """Sections of ``channels`` no known channel reads (they are never run)."""
    known_ids = set(names())
    return [name for name in channels if name not in known_ids]


def config_warnings(channels: Mapping[str, Any]) -> list[str]:
    """Warnings about ``channels``: every section no known channel reads."""
    return [unknown_section_warning(name) for name in unknown_sections(channels)]


def unknown_section_warning(name: str) -> str:
    """The message for a ``channels.<name>`` section no channel reads."""
    why = problems().get(name)
    if why:
        return f"channels.{name} is not run: {why}"
    return f"channels.{name} is not a known channel and is not run (known channels: {known()})"
