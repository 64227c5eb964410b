"""The ``nodes`` subsystem: connected nodes and the commands invoked on them.

A client that connects with ``role: node`` (``moltbot node run``, upstream's node
host, a phone app) is registered here under its node id (its device id) with
what it declared: ``caps``, ``commands`` (only those the platform's allowlist
permits, see :func:`allowed_commands`), ``permissions`` and ``pathEnv``.

:meth:`NodeRegistry.invoke` sends the node a ``node.invoke.request`` event (to that
connection only, without ``seq``) and waits for the node's ``node.invoke.result``
request with the same id, up to ``timeoutMs`` (default 30 s). A node that leaves
fails its pending invokes at once ("node disconnected"); a late result is ignored.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from moltbot.errors import MoltbotError, UsageError
from moltbot.lifecycle import State, SubsystemContext

if TYPE_CHECKING:
    from moltbot.config.schema import Config

__all__ = [
    "InvokeResult",
    "NodeRegistry",
    "NodeSession",
    "allowed_commands",
    "match_node",
    "platform_id",
]

DEFAULT_INVOKE_TIMEOUT_MS = 30_000

_CANVAS = (
    "canvas.present",
    "canvas.hide",
    "canvas.navigate",
    "canvas.eval",
    "canvas.snapshot",
    "canvas.a2ui.push",
    "canvas.a2ui.pushJSONL",
    "canvas.a2ui.reset",
)
_CAMERA = ("camera.list", "camera.snap", "camera.clip")
_SCREEN = ("screen.record",)
_LOCATION = ("location.get",)
_SMS = ("sms.send",)
_SYSTEM = (
    "system.run",
    "system.which",
    "system.notify",
    "system.execApprovals.get",
    "system.execApprovals.set",
    "browser.proxy",
)
PLATFORM_COMMANDS: dict[str, tuple[str, ...]] = {
    "ios": (*_CANVAS, *_CAMERA, *_SCREEN, *_LOCATION),
    "android": (*_CANVAS, *_CAMERA, *_SCREEN, *_LOCATION, *_SMS),
    "macos": (*_CANVAS, *_CAMERA, *_SCREEN, *_LOCATION, *_SYSTEM),
    "linux": _SYSTEM,
    "windows": _SYSTEM,
    "unknown": (*_CANVAS, *_CAMERA, *_SCREEN, *_LOCATION, *_SMS, *_SYSTEM),
}
"""What a node of each platform may be asked to do (upstream's defaults)."""


def platform_id(platform: str | None, device_family: str | None = None) -> str:
    raw = (platform or "").strip().lower()
    for prefix, name in (
        ("ios", "ios"),
        ("android", "android"),
        ("mac", "macos"),
        ("darwin", "macos"),
        ("win", "windows"),
        ("linux", "linux"),
    ):
        if raw.startswith(prefix):
            return name
    family = (device_family or "").strip().lower()
    for needle, name in (
        ("iphone", "ios"),
        ("ipad", "ios"),
        ("ios", "ios"),
        ("android", "android"),
        ("mac", "macos"),
        ("windows", "windows"),
        ("linux", "linux"),
    ):
        if needle in family:
            return name
    return "unknown"


def allowed_commands(config: Config, platform: str | None, device_family: str | None) -> set[str]:
    """The platform's commands plus ``gateway.nodes.allowCommands``, minus
    ``gateway.nodes.denyCommands``."""
    nodes = config.gateway.nodes
    allowed = {c.strip() for c in PLATFORM_COMMANDS[platform_id(platform, device_family)]}
    allowed |= {c.strip() for c in nodes.allow_commands if c.strip()}
    return allowed - {c.strip() for c in nodes.deny_commands}


def match_node(rows: list[dict[str, Any]], wanted: str) -> str:
    """The ``nodeId`` of the one row that ``wanted`` names: its id, an id prefix of 6+
    characters, its display name (any case) or its IP. Raises UsageError naming the
    candidates when none or several match."""
    wanted = wanted.strip()
    if any(r["nodeId"] == wanted for r in rows):
        return wanted
    low = wanted.lower()
    found = [
        r["nodeId"]
        for r in rows
        if (len(low) >= 6 and str(r["nodeId"]).lower().startswith(low))
        or str(r.get("displayName") or "").lower() == low
        or (r.get("remoteIp") or "") == wanted
    ]
    if len(found) == 1:
        return str(found[0])
    names = ", ".join(f"{r.get('displayName') or '?'} ({str(r['nodeId'])[:12]})" for r in rows)
    if not found:
        known = f"; known: {names}" if names else "; no node is known"
        raise UsageError(f"no node matches {wanted!r}{known}")
    raise UsageError(f"several nodes match {wanted!r}: {names}")


@dataclass
class NodeSession:
    """One connected node."""

    node_id: str
    conn_id: str
    send: Callable[[str, dict[str, Any]], bool] = field(repr=False)
    """Send this node an event (no ``seq``); False when it could not be queued."""
    display_name: str | None = None
    platform: str | None = None
    version: str | None = None
    device_family: str | None = None
    model_identifier: str | None = None
    remote_ip: str | None = None
    caps: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    permissions: dict[str, bool] | None = None
    path_env: str | None = None
    connected_at_ms: int = field(default_factory=lambda: int(time.time() * 1000))


def failure(code: str, message: str) -> InvokeResult:
    return InvokeResult(False, error={"code": code, "message": message})


@dataclass(frozen=True)
class InvokeResult:
    ok: bool
    payload: Any = None
    payload_json: str | None = None
    error: dict[str, Any] | None = None

    def value(self) -> Any:
        """The payload, decoded from ``payloadJSON`` when the node sent that."""
        if self.payload_json:
            try:
                return json.loads(self.payload_json)
            except ValueError:
                return {"payloadJSON": self.payload_json}
        return self.payload


@dataclass
class _Waiting:
    node_id: str
    command: str
    future: asyncio.Future[InvokeResult]


class NodeRegistry:
    """Connected nodes (see the module docstring)."""

    name = "nodes"

    def __init__(self, context: SubsystemContext) -> None:
        self.ctx = context
        self.state = State.CREATED
        self.nodes: dict[str, NodeSession] = {}
        self._by_conn: dict[str, str] = {}
        self._waiting: dict[str, _Waiting] = {}
        self.invokes = 0

    async def start(self) -> None:
        self.state = State.RUNNING

    async def stop(self) -> None:
        self.state = State.STOPPING
        for conn_id in list(self._by_conn):
            self.unregister(conn_id)
        self.state = State.STOPPED

    def status(self) -> dict[str, Any]:
        return {"state": str(self.state), "connected": len(self.nodes), "invokes": self.invokes}

    async def reconfigure(self, config: Config) -> bool:
        self.ctx.config = config
        return True

    # connections -------------------------------------------------------------

    def register(self, session: NodeSession) -> NodeSession:
        """Add a connected node (a reconnect replaces its previous session)."""
        previous = self.nodes.get(session.node_id)
        if previous is not None:
            self.unregister(previous.conn_id)
        self.nodes[session.node_id] = session
        self._by_conn[session.conn_id] = session.node_id
        self.ctx.logger.info(
            "node %s connected (%s, %d commands)",
            session.display_name or session.node_id[:12],
            session.platform,
            len(session.commands),
        )
        return session

    def unregister(self, conn_id: str) -> str | None:
        node_id = self._by_conn.pop(conn_id, None)
        if node_id is None:
            return None
        self.nodes.pop(node_id, None)
        for request_id, waiting in list(self._waiting.items()):
            if waiting.node_id == node_id and not waiting.future.done():
                waiting.future.set_result(
                    failure("UNAVAILABLE", f"node disconnected ({waiting.command})")
                )
                self._waiting.pop(request_id, None)
        return node_id

    def node_of(self, conn_id: str) -> str | None:
        return self._by_conn.get(conn_id)

    def connected(self) -> list[NodeSession]:
        return list(self.nodes.values())

    def get(self, node_id: str) -> NodeSession | None:
        return self.nodes.get(node_id)

    def resolve(self, wanted: str) -> NodeSession:
        """A connected node by id, id prefix, display name or IP (:func:`match_node`)."""
        rows = [
            {"nodeId": n.node_id, "displayName": n.display_name, "remoteIp": n.remote_ip}
            for n in self.nodes.values()
        ]
        return self.nodes[match_node(rows, wanted)]

    # invoking ----------------------------------------------------------------

    def check_command(self, session: NodeSession, command: str) -> str | None:
        """Why ``command`` may not be invoked on ``session`` (``None``: it may)."""
        allowed = allowed_commands(self.ctx.config, session.platform, session.device_family)
        if command not in allowed:
            return "command not allowlisted"
        if not session.commands:
            return "node did not declare commands"
        if command not in session.commands:
            return "command not declared by node"
        return None

    async def invoke(
        self,
        node_id: str,
        command: str,
        params: Any = None,
        *,
        timeout_ms: int | None = None,
        idempotency_key: str | None = None,
    ) -> InvokeResult:
        """Run ``command`` on a connected node; never raises for the node's own failure
        (``ok: false`` with its error, or ``TIMEOUT``, ``NOT_CONNECTED``)."""
        session = self.nodes.get(node_id)
        if session is None:
            return failure("NOT_CONNECTED", "node not connected")
        request_id = str(uuid.uuid4())
        event: dict[str, Any] = {"id": request_id, "nodeId": node_id, "command": command}
        if params is not None:
            event["paramsJSON"] = json.dumps(params)
        if timeout_ms is not None:
            event["timeoutMs"] = timeout_ms
        if idempotency_key:
            event["idempotencyKey"] = idempotency_key
        future: asyncio.Future[InvokeResult] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = _Waiting(node_id, command, future)
        self.invokes += 1
        if not session.send("node.invoke.request", event):
            self._waiting.pop(request_id, None)
            return failure("UNAVAILABLE", "failed to send invoke to node")
        limit = (timeout_ms if timeout_ms is not None else DEFAULT_INVOKE_TIMEOUT_MS) / 1000
        try:
            return await asyncio.wait_for(asyncio.shield(future), limit)
        except TimeoutError:
            return failure("TIMEOUT", "node invoke timed out")
        finally:
            self._waiting.pop(request_id, None)

    def result(
        self,
        request_id: str,
        node_id: str,
        ok: bool,
        payload: Any = None,
        payload_json: str | None = None,
        error: dict[str, Any] | None = None,
    ) -> bool:
        """A node's answer to an invoke; False when nobody waits for it (late, or not
        this node's)."""
        waiting = self._waiting.get(request_id)
        if waiting is None or waiting.node_id != node_id or waiting.future.done():
            return False
        waiting.future.set_result(InvokeResult(ok, payload, payload_json, error))
        return True

    def send_event(self, node_id: str, event: str, payload: dict[str, Any]) -> bool:
        session = self.nodes.get(node_id)
        return session is not None and session.send(event, payload)

    def broadcast_nodes(self, event: str, payload: dict[str, Any]) -> None:
        """Send every connected node an event (``voicewake.changed``)."""
        for session in list(self.nodes.values()):
            session.send(event, payload)

    def require(self, node_id: str) -> NodeSession:
        session = self.nodes.get(node_id)
        if session is None:
            raise MoltbotError("node not connected", details={"code": "NOT_CONNECTED"})
        return session
