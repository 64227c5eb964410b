"""The gateway's one port: WebSocket protocol v3 and HTTP on one aiohttp app."""

from __future__ import annotations

import asyncio
import logging
import re
import socket
from pathlib import Path
from typing import Any

import orjson
from aiohttp import WSMsgType, web

from moltbot.config.history import WRITER
from moltbot.devices.registry import NodeSession
from moltbot.errors import AuthError, MoltbotError, NotFoundError, RetryLaterError, UsageError
from moltbot.gateway import handshake, protocol
from moltbot.gateway.connection import Connection
from moltbot.gateway.http.guard import refuse_foreign
from moltbot.gateway.methods.registry import MethodCall, MethodSpec, error_for
from moltbot.gateway.runtime import GatewayRuntime
from moltbot.gateway.status import wire
from moltbot.lazy import load
from moltbot.lifecycle import State
from moltbot.security import process
from moltbot.security.connguard import body_deadline, mark_authenticated
from moltbot.security.origin import is_local
from moltbot.sessions.keys import MAIN_KEY, main_key
from moltbot.subsystems import CANVAS, NODES

log = logging.getLogger("moltbot.gateway.ws")

RUNTIME_KEY = web.AppKey("runtime", GatewayRuntime)
UI_DIR = Path(__file__).resolve().parent.parent / "ui"

# Modules with `setup_routes(app, runtime)`, loaded in this order (a missing one is an error).
HTTP_ROUTE_MODULES = (
    "moltbot.gateway.http.hooks",
    "moltbot.gateway.http.tools_invoke",
    "moltbot.gateway.http.openai",  # also /v1/responses (moltbot.gateway.http.responses)
    "moltbot.channels.webhook",  # every channel manifest's routes
    "moltbot.gateway.http.media",  # stored attachments, by signed URL
    "moltbot.gateway.http.api",  # last: every other API path is a JSON 404, never the UI
)

SCOPES_FOR = {
    "read": ("operator.read", "operator.write"),
    "write": ("operator.write",),
    "admin": (),
    "pairing": ("operator.pairing",),
    "approvals": ("operator.approvals",),
}


# The Control UI is static and same-origin only: no framing, no foreign scripts.
UI_HEADERS = {
    "Cache-Control": "no-cache",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
UI_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'{sockets}; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'; object-src 'none'"
)
_PLAIN_HOST = re.compile(r"[A-Za-z0-9.\-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")
BACKLOG_TRIM_BYTES = 4 * 1024 * 1024  # a client that had this much queued: trim the heap after


def build_app(runtime: GatewayRuntime) -> web.Application:
    endpoints = runtime.config.gateway.http.endpoints
    hooks = runtime.config.hooks
    largest = max(
        (e.max_body_bytes for e in vars(endpoints).values() if getattr(e, "enabled", False)),
        default=0,
    )
    largest = max(largest, hooks.max_body_bytes if hooks.enabled else 0)
    app = web.Application(
        # bodies are read (within the body deadline) before any handler: this bounds them
        client_max_size=max(protocol.MAX_PAYLOAD_BYTES, largest),
        middlewares=[body_deadline(runtime.shield.connections)],
    )
    app[RUNTIME_KEY] = runtime
    app.router.add_get("/health", health_endpoint)
    app.router.add_get("/healthz", health_endpoint)
    for module_name in HTTP_ROUTE_MODULES:
        load(module_name, "HTTP routes").setup_routes(app, runtime)
    app.router.add_route("GET", "/{tail:.*}", root_endpoint)
    return app


async def health_endpoint(request: web.Request) -> web.Response:
    """Liveness for supervisors and load balancers: no secrets, no auth."""
    return web.json_response({"ok": True})


async def root_endpoint(request: web.Request) -> web.StreamResponse:
    if request.headers.get("Upgrade", "").lower() == "websocket":
        return await websocket_endpoint(request)
    return await serve_ui(request)


async def serve_ui(request: web.Request) -> web.StreamResponse:
    tail = request.match_info.get("tail", "")
    if tail == "favicon.ico":  # asked for by browsers that did not read the page's <link>
        tail = "favicon.svg"
    root = UI_DIR.resolve()
    target = (root / tail).resolve() if tail else root / "index.html"
    if not target.is_relative_to(root):
        raise web.HTTPNotFound()
    if target.is_dir():
        target = target / "index.html"
    if not target.is_file():
        if "." in tail.rsplit("/", 1)[-1]:
            raise web.HTTPNotFound()
        target = root / "index.html"  # single-page app fallback
    if not target.is_file():
        return web.Response(status=503, text="Control UI files are missing from this install.")
    host = request.host or ""
    sockets = f" ws://{host} wss://{host}" if _PLAIN_HOST.fullmatch(host) else ""
    headers = {**UI_HEADERS, "Content-Security-Policy": UI_CSP.format(sockets=sockets)}
    return web.FileResponse(target, headers=headers)


async def websocket_endpoint(request: web.Request) -> web.StreamResponse:
    runtime = request.app[RUNTIME_KEY]
    peer, refusal = refuse_foreign(request, runtime)
    if refusal is not None:
        return refusal
    ws = web.WebSocketResponse(
        max_msg_size=protocol.MAX_PAYLOAD_BYTES, autoping=True, timeout=2.0, compress=False
    )
    await ws.prepare(request)
    conn = Connection(
        ws,
        remote=peer.address,
        local=is_local(peer, request.headers.get("Origin")),
        transport=request.transport,  # type: ignore[arg-type]
    )
    try:
        await _serve_connection(runtime, conn, request)
    finally:
        if conn.peak_backlog >= BACKLOG_TRIM_BYTES:
            process.release_memory()
        runtime.connections.pop(conn.conn_id, None)
        if conn.role == "node" and (nodes := runtime.subsystem(NODES)) is not None:
            nodes.unregister(conn.conn_id)
        if conn.presence_key:
            runtime.presence.upsert(conn.presence_key, {"reason": "disconnect"})
            runtime.presence_changed()
        await conn.finish()
        if not ws.closed:
            await ws.close()
    return ws


async def _serve_connection(
    runtime: GatewayRuntime, conn: Connection, request: web.Request
) -> None:
    try:
        accepted = await handshake.perform(runtime, conn)
    except handshake.HandshakeFailed as failure:
        log.debug("handshake from %s failed: %s", conn.remote, failure.message)
        if failure.request_id and failure.answer:
            conn.send(protocol.response(failure.request_id, None, failure.answer.error_shape()))
            await conn.flush(0.5)
        await conn.close(failure.close_code, failure.message)
        return
    mark_authenticated(request)
    if runtime.state in (State.STOPPING, State.STOPPED):  # a restart: the next runtime will
        await conn.close(protocol.CLOSE_SERVICE_RESTART, "service restart")
        return
    runtime.connections[conn.conn_id] = conn
    log.debug(
        "client %s connected (%s/%s, role %s)", conn.conn_id, conn.client_id, conn.mode, conn.role
    )
    conn.send(protocol.response(accepted.request_id, hello_ok(runtime, conn, accepted)))
    if conn.mode != "cli":
        client = accepted.params.client
        conn.presence_key = conn.device_id or client.instance_id or conn.conn_id
        runtime.presence.upsert(
            conn.presence_key,
            {
                "host": client.display_name or client.id,
                "version": client.version,
                "platform": client.platform,
                "deviceFamily": client.device_family,
                "modelIdentifier": client.model_identifier,
                "mode": client.mode,
                "reason": "connect",
                "deviceId": conn.device_id,
                "instanceId": client.instance_id,
                "roles": [conn.role],
                "scopes": sorted(conn.scopes),
                "ip": None if conn.local else conn.remote,
            },
        )
        runtime.presence_changed()
    if conn.role == "node":
        register_node(runtime, conn, accepted)
    runtime.request_health_refresh()

    tasks: set[asyncio.Task[None]] = set()
    try:
        async for message in conn.ws:
            if message.type == WSMsgType.TEXT:
                dispatch(runtime, conn, message.data, tasks)
                if conn.saturated:  # pipelining faster than it reads: stop reading for now
                    await conn.wait_writable()
            elif message.type == WSMsgType.ERROR:
                break
    finally:
        for task in tasks:
            task.cancel()


def register_node(runtime: GatewayRuntime, conn: Connection, accepted: handshake.Accepted) -> None:
    """A ``role: node`` client joins the node registry (its commands already filtered
    by the handshake) and gets the wake words."""
    nodes = runtime.subsystem(NODES)
    if nodes is None:
        log.warning("node %s connected but the node registry is not running", conn.conn_id)
        return
    params = accepted.params
    client = params.client

    def send(event: str, payload: dict[str, Any]) -> bool:
        return conn.enqueue_event(protocol.dumps(protocol.event(event, payload)))

    node_id = conn.device_id or client.instance_id or client.id
    session = nodes.register(
        NodeSession(
            node_id=node_id,
            conn_id=conn.conn_id,
            send=send,
            display_name=client.display_name,
            platform=client.platform,
            version=client.version,
            device_family=client.device_family,
            model_identifier=client.model_identifier,
            remote_ip=None if conn.local else conn.remote,
            caps=list(params.caps or []),
            commands=list(params.commands or []),
            permissions=params.permissions,
            path_env=params.path_env,
        )
    )
    runtime.node_pairing.touch(node_id, lastConnectedAtMs=session.connected_at_ms)
    send("voicewake.changed", {"triggers": runtime.voicewake.triggers()})


def hello_ok(
    runtime: GatewayRuntime, conn: Connection, accepted: handshake.Accepted
) -> dict[str, Any]:
    methods = runtime.methods.advertised
    default_agent = runtime.default_agent_id()
    payload: dict[str, Any] = {
        "type": "hello-ok",
        "protocol": protocol.PROTOCOL_VERSION,
        "server": {
            "version": runtime.version,
            "host": socket.gethostname(),
            "connId": conn.conn_id,
        },
        "features": {"methods": methods, "events": list(protocol.EVENTS)},
        "snapshot": {
            "presence": runtime.presence.entries(),
            "health": wire(runtime.health_cache) if runtime.health_cache else {},
            "stateVersion": dict(runtime.state_version),
            "uptimeMs": runtime.uptime_ms,
            "configPath": str(runtime.instance.config_path),
            "stateDir": str(runtime.instance.state_dir),
            "sessionDefaults": {
                "defaultAgentId": default_agent,
                "mainKey": MAIN_KEY,
                "mainSessionKey": main_key(default_agent, MAIN_KEY),
                "scope": "per-sender",
            },
        },
        "policy": {
            "maxPayload": protocol.MAX_PAYLOAD_BYTES,
            "maxBufferedBytes": protocol.MAX_BUFFERED_BYTES,
            "tickIntervalMs": protocol.TICK_INTERVAL_MS,
        },
    }
    canvas = runtime.subsystem(CANVAS)
    if canvas is not None:
        # the host's base URL; clients append /__openclaw__/canvas/ (or /__moltbot__/canvas/)
        payload["canvasHostUrl"] = canvas.url().split("/__", 1)[0]
    token = accepted.device_token
    if token:
        payload["auth"] = {
            "deviceToken": token["token"],
            "role": token["role"],
            "scopes": list(token.get("scopes") or []),
            "issuedAtMs": token.get("rotatedAtMs") or token.get("createdAtMs") or 0,
        }
    return payload


def dispatch(
    runtime: GatewayRuntime, conn: Connection, data: str, tasks: set[asyncio.Task[None]]
) -> None:
    try:
        frame = orjson.loads(data)
    except orjson.JSONDecodeError:
        log.debug("ignoring non-JSON frame from %s", conn.conn_id)
        return
    request_id = frame.get("id") if isinstance(frame, dict) else None
    problem = _frame_problem(frame)
    if problem:
        rid = request_id if isinstance(request_id, str) and request_id else "invalid"
        refused = UsageError(f"invalid request frame: {problem}")
        conn.send(protocol.response(rid, None, refused.error_shape()))
        return
    method = frame["method"]
    spec = runtime.methods.get(method)
    if spec is None and runtime.methods.declares(method):
        conn.started()
        task = asyncio.create_task(
            _first_call(runtime, conn, method, request_id, frame.get("params"))
        )
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        return
    denied = authorize(conn, method, spec)
    if denied is not None:
        conn.send(protocol.response(request_id, None, denied.error_shape()))
        return
    assert spec is not None
    if not spec.is_async and runtime.subsystems_started.is_set():
        _run_inline(runtime, conn, spec, request_id, frame.get("params"))
        return
    conn.started()
    task = asyncio.create_task(_run(runtime, conn, spec, request_id, frame.get("params")))
    tasks.add(task)
    task.add_done_callback(tasks.discard)


async def _first_call(
    runtime: GatewayRuntime, conn: Connection, method: str, request_id: str, raw_params: Any
) -> None:
    """A method whose family is not imported yet: import it (a family that fails to
    import answers with that error), then authorize and run the request as usual."""
    try:
        spec = await runtime.methods.load(method)
        refused = authorize(conn, method, spec)
    except MoltbotError as exc:
        refused = exc
    if refused is not None:
        conn.answered()
        conn.send(protocol.response(request_id, None, refused.error_shape()))
        return
    await _run(runtime, conn, spec, request_id, raw_params)


_FRAME_KEYS = frozenset({"type", "id", "method", "params"})


def _frame_problem(frame: Any) -> str | None:
    if type(frame) is not dict:
        return "expected an object"
    if frame.get("type") != "req":
        return "type must be 'req'"
    request_id = frame.get("id")
    if type(request_id) is not str or not request_id:
        return "id must be a non-empty string"
    method = frame.get("method")
    if type(method) is not str or not method:
        return "method must be a non-empty string"
    if not _FRAME_KEYS.issuperset(frame):
        return f"unexpected property '{sorted(set(frame) - _FRAME_KEYS)[0]}'"
    return None


def authorize(conn: Connection, method: str, spec: MethodSpec | None) -> MoltbotError | None:
    """Why ``conn`` may not call ``method`` (``None``: it may). Upstream's order: role,
    then scope, then whether the method exists; every refusal is ``INVALID_REQUEST``."""
    if method == "connect":
        return UsageError("connect is only valid as the first request")
    if spec is not None and spec.scope == "node":
        return None if conn.role == "node" else AuthError(f"unauthorized role: {conn.role}")
    if conn.role == "node":
        return AuthError("unauthorized role: node")
    if "operator.admin" in conn.scopes:
        return None if spec is not None else NotFoundError(f"unknown method: {method}")
    if spec is None or spec.scope == "admin":
        return AuthError("missing scope: operator.admin")
    allowed = SCOPES_FOR[spec.scope]
    if any(scope in conn.scopes for scope in allowed):
        return None
    return AuthError(f"missing scope: {allowed[0]}")


def _validate(spec: MethodSpec, raw_params: Any) -> Any:
    from moltbot.validation import ValidationError

    if not raw_params and spec.default_params is not None and raw_params in (None, {}):
        return spec.default_params
    try:
        return spec.params.model_validate(raw_params if raw_params is not None else {})
    except ValidationError as exc:
        raise UsageError(
            f"invalid {spec.name} params: {protocol.describe_validation(exc)}"
        ) from None


NOT_READING = "not run: this client has not read its earlier answers yet (read them, then retry)"


def _run_inline(
    runtime: GatewayRuntime, conn: Connection, spec: MethodSpec, request_id: str, raw_params: Any
) -> None:
    try:
        params = _validate(spec, raw_params)
        call = MethodCall(runtime, conn, request_id, spec.name, _slot_held=False)
        payload = spec.handler(call, params)
    except Exception as exc:
        conn.send(protocol.response(request_id, None, error_for(spec.name, exc)))
        return
    conn.send(protocol.response(request_id, payload))


async def _run(
    runtime: GatewayRuntime, conn: Connection, spec: MethodSpec, request_id: str, raw_params: Any
) -> None:
    """Run one request; its in-flight slot is freed at its first answer (``agent``
    answers twice: the slot goes with ``accepted``). A config file this request writes
    names it as the writer in the config history (this task's ``WRITER``). A client's
    bulky requests run one at a time, so one that does not read its answers gets one
    built, not one per in-flight slot, before the rest are refused."""
    if not spec.bulky:
        await _run_one(runtime, conn, spec, request_id, raw_params)
        return
    async with conn.bulky:
        await _run_one(runtime, conn, spec, request_id, raw_params)


async def _run_one(
    runtime: GatewayRuntime, conn: Connection, spec: MethodSpec, request_id: str, raw_params: Any
) -> None:
    call = MethodCall(runtime, conn, request_id, spec.name)
    WRITER.set(call.writer)
    if conn.over_ceiling:  # it is not reading its answers: do not do the work for nothing
        call.release_slot()
        behind = RetryLaterError(NOT_READING, retry_after=None)
        conn.send(protocol.response(request_id, None, behind.error_shape()))
        return
    try:
        if not runtime.subsystems_started.is_set():  # the handler may need a sidecar still starting
            await runtime.subsystems_started.wait()
        params = _validate(spec, raw_params)
        payload = spec.handler(call, params)
        if spec.is_async:  # a synchronous one comes here only while the subsystems start
            payload = await payload
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        conn.send(protocol.response(request_id, None, error_for(spec.name, exc)))
        return
    finally:
        call.release_slot()
    conn.send(protocol.response(request_id, payload))


__all__ = ["RUNTIME_KEY", "build_app", "hello_ok"]
