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
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from moltbot.channels.errors import ChannelConfigError, UnknownChannel
from moltbot.channels.manifest import ChannelManifest

if TYPE_CHECKING:
    from moltbot.channels.config import ResolvedAccount

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "moltbot.channels"


Source = tuple[str, Callable[[], Any]]
"""(where the manifest comes from, a function loading it)."""


@lru_cache(maxsize=1)
def _builtin_sources() -> dict[str, Source]:
    """The sub-packages of :mod:`moltbot.channels` with a manifest module (none imported)."""
    import moltbot.channels as package

    sources: dict[str, Source] = {}
    for info in pkgutil.iter_modules(package.__path__):
        module = f"{package.__name__}.{info.name}.manifest"
        if info.ispkg and importlib.util.find_spec(module) is not None:
            sources[info.name] = (
                module,
                lambda module=module: importlib.import_module(module).MANIFEST,
            )
    return sources


@lru_cache(maxsize=1)
def _sources() -> tuple[dict[str, Source], dict[str, str]]:
    """Channel id -> source, built-ins first, then the entry points of other
    distributions; a package's or entry point's name is the channel's id."""
    from importlib.metadata import entry_points

    sources = dict(_builtin_sources())
    problems: dict[str, str] = {}
    for point in entry_points(group=ENTRY_POINT_GROUP):
        where = f"entry point {point.value}"
        if point.name in sources:
            problems[point.name] = f"channel {point.name} is defined twice; {where} ignored"
            continue
        sources[point.name] = (where, point.load)
    return sources, problems


@lru_cache(maxsize=1)
def _discover() -> tuple[dict[str, ChannelManifest], dict[str, str]]:
    sources, found_problems = _sources()
    found: list[ChannelManifest] = []
    problems = dict(found_problems)
    for name, (where, loader) in sources.items():
        try:
            manifest = loader()
        except Exception as exc:  # a broken plugin must not hide the other channels
            problems[name] = f"cannot load the manifest of {name} ({where}): {exc}"
            continue
        if not isinstance(manifest, ChannelManifest):
            problems[name] = f"{where} is not a ChannelManifest"
        elif manifest.id != name:
            problems[name] = f"{where} describes channel {manifest.id!r}, not {name!r}"
        else:
            found.append(manifest)
    for problem in problems.values():
        log.warning("%s", problem)
    ordered = sorted(found, key=lambda m: (m.order, m.id))
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
    manifests, broken = _discover()
    found = manifests.get(name.lower())
    if found is None:
        if name.lower() in broken:
            raise UnknownChannel(broken[name.lower()], hint=f"known channels: {known()}")
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
    from moltbot.channels.config import account_ids, resolve_account

    section = channels.get(name)
    if section is None:
        section = {}
    if not isinstance(section, dict):
        raise ChannelConfigError(f"channels.{name} must be an object")
    spec = manifest(name)
    return [
        resolve_account(name, spec.load_config_model(), section, account_id, env, spec.env_tokens)
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
    """Sections of ``channels`` no known channel reads (they are never run). Built-in
    channels are recognised without importing anything."""
    if all(name in _builtin_sources() for name in channels):
        return []
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
