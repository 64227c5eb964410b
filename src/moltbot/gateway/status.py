"""The gateway's ``status`` and ``health`` payloads, typed once for both ends: the
gateway builds them (``GatewayRuntime.status()`` / ``health()``) and the CLI reads them
back (``moltbot status``, ``moltbot health``, ``gateway probe``).

The models are named tuples, not validated models (nor dataclasses): ``moltbot status``
reads them on its fast path, where any import counts (creating a dozen dataclasses
costs ~5 ms). :func:`wire` gives exactly the
JSON upstream clients and the Control UI read (camelCase keys, in field order, ``null``
for an unknown value); :func:`parse` reads it back, ignoring keys it does not know and
raising :class:`MoltbotError` for a payload that is not one (a missing key, a value of
the wrong type).
"""

from __future__ import annotations

import types
import typing
from typing import Any, NamedTuple, TypeVar

from moltbot.errors import MoltbotError

if typing.TYPE_CHECKING:
    from moltbot.instance.resolve import Instance

M = TypeVar("M", bound=tuple[Any, ...])


class ConfiguredPorts(NamedTuple):
    """The ports the config gives (what a plain restart would use)."""

    port: int
    control_port: int
    canvas_port: int
    cdp_range: list[int]


class InstanceStatus(NamedTuple):
    """``status.instance``: the instance's facts; from a running gateway also what runs
    (``None`` when read from the config instead)."""

    profile: str
    state_dir: str
    config_path: str
    workspace: str
    port: int
    control_port: int
    canvas_port: int
    cdp_range: list[int]
    configured: ConfiguredPorts | None = None
    drift: str | None = None
    pid: int | None = None
    bind: str | None = None
    host: str | None = None
    version: str | None = None
    started_at: int | None = None
    uptime_ms: int | None = None
    state: str | None = None

    @classmethod
    def of(cls, instance: Instance, **running: Any) -> InstanceStatus:
        """The facts of ``instance`` (:meth:`Instance.facts`), plus ``running``."""
        return parse(cls, instance.facts())._replace(**running)

    def ports(self) -> ConfiguredPorts:
        return ConfiguredPorts(self.port, self.control_port, self.canvas_port, self.cdp_range)


class SessionRow(NamedTuple):
    key: str
    updated_at: int | None
    age: int | None


class SessionsSummary(NamedTuple):
    """One agent's session index: where, how many, the five most recent."""

    path: str
    count: int
    recent: list[SessionRow]


class AgentSessions(NamedTuple):
    agent_id: str
    path: str
    count: int
    recent: list[SessionRow]


class SessionDefaults(NamedTuple):
    model: str | None
    context_tokens: int | None = None


class SessionsStatus(NamedTuple):
    paths: list[str]
    count: int
    defaults: SessionDefaults
    recent: list[SessionRow]
    by_agent: list[AgentSessions]


class Heartbeat(NamedTuple):
    default_agent_id: str
    agents: list[Any]


class StatusPayload(NamedTuple):
    """The answer of ``status``."""

    instance: InstanceStatus
    heartbeat: Heartbeat
    channel_summary: list[str]
    queued_system_events: list[str]
    sessions: SessionsStatus
    subsystems: dict[str, dict[str, Any]]
    connections: int


class AgentHealth(NamedTuple):
    agent_id: str
    is_default: bool
    sessions: SessionsSummary


class HealthPayload(NamedTuple):
    """The answer of ``health`` (and the ``health`` event, and ``hello-ok``'s snapshot)."""

    ok: bool
    ts: int
    duration_ms: int
    channels: dict[str, Any]
    channel_order: list[str]
    channel_labels: dict[str, str]
    heartbeat_seconds: int
    default_agent_id: str
    agents: list[AgentHealth]
    sessions: SessionsSummary


def uptime_text(ms: int | None) -> str:
    """An uptime for people: ``42s``, ``5m``, ``3h``, ``2d`` (``-`` when unknown)."""
    if not ms:
        return "-"
    seconds = ms // 1000
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


# The codec ------------------------------------------------------------------------------


def wire(value: Any) -> Any:
    """``value`` as JSON data: a model becomes an object with camelCase keys."""
    kind = type(value)
    if kind in _SCALARS:
        return value
    keys = _WIRE_KEYS.get(kind)
    if keys is None and isinstance(value, tuple) and hasattr(value, "_fields"):
        keys = _WIRE_KEYS[kind] = tuple(_camel(name) for name in value._fields)
    if keys is not None:
        return {key: wire(item) for key, item in zip(keys, value, strict=True)}
    if isinstance(value, list | tuple):
        return [wire(item) for item in value]
    if isinstance(value, dict):
        return {key: wire(item) for key, item in value.items()}
    return value


_SCALARS = frozenset({str, int, float, bool, type(None)})
_WIRE_KEYS: dict[type, tuple[str, ...]] = {}
"""Each model's camelCase keys, computed once: ``health`` is answered with this codec
on every request, and renaming the fields each time was most of its cost."""


def parse(model: type[M], data: Any) -> M:
    """``data`` (JSON) as a ``model``; :class:`MoltbotError` when it is not one."""
    return _decode(model, data, model.__name__)  # type: ignore[no-any-return]


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(model: type) -> dict[str, Any]:
    hints = _HINTS.get(model)
    if hints is None:
        hints = _HINTS[model] = typing.get_type_hints(model)
    return hints


def _decode(kind: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(kind)
    if kind is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(kind)
        if value is None and type(None) in options:
            return None
        (inner,) = [option for option in options if option is not type(None)]
        return _decode(inner, value, where)
    if isinstance(kind, type) and issubclass(kind, tuple) and hasattr(kind, "_fields"):
        if not isinstance(value, dict):
            raise _refused(where, "an object", value)
        hints, defaults, values = _hints(kind), kind._field_defaults, {}  # type: ignore[attr-defined]
        for name in kind._fields:  # type: ignore[attr-defined]
            key = _camel(name)
            if key in value:
                values[name] = _decode(hints[name], value[key], f"{where}.{key}")
            elif name not in defaults:
                raise _refused(f"{where}.{key}", "present", None)
        return kind(**values)
    if origin is list:
        if not isinstance(value, list):
            raise _refused(where, "a list", value)
        (item,) = typing.get_args(kind)
        return [_decode(item, entry, f"{where}[{i}]") for i, entry in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise _refused(where, "an object", value)
        _, item = typing.get_args(kind)
        return {str(k): _decode(item, entry, f"{where}.{k}") for k, entry in value.items()}
    if kind is int and (not isinstance(value, int) or isinstance(value, bool)):
        raise _refused(where, "an integer", value)
    if kind in (str, bool) and not isinstance(value, kind):
        raise _refused(where, f"a {kind.__name__}", value)
    return value


def _refused(where: str, wanted: str, value: Any) -> MoltbotError:
    root = where.split(".")[0].split("[")[0]
    got = "missing" if wanted == "present" else f"{type(value).__name__}, not {wanted}"
    return MoltbotError(f"not a {root}: {where} is {got}")


__all__ = [
    "AgentHealth",
    "AgentSessions",
    "ConfiguredPorts",
    "HealthPayload",
    "Heartbeat",
    "InstanceStatus",
    "SessionDefaults",
    "SessionRow",
    "SessionsStatus",
    "SessionsSummary",
    "StatusPayload",
    "parse",
    "uptime_text",
    "wire",
]
