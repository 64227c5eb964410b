"""`moltbot gateway run`: the foreground process lifecycle.

lock → port preflight → bind → runtime file → subsystems → serve until a
signal. SIGTERM/SIGINT stop (``shutdown`` event to clients, exit 0);
SIGUSR1 and restart-requiring config changes restart in-process (the lock
stays held) after draining: no new agent runs, the ones in flight get
``gateway.restartGraceSeconds`` to finish. Never forks.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import json
import logging
import os
import signal
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moltbot.config.store import ConfigSnapshot, read_config
from moltbot.errors import AlreadyRunningError, ConfigError, PortInUseError
from moltbot.fsutil import write_json_atomic
from moltbot.gateway import filewatch, preflight, protocol
from moltbot.gateway.auth import AuthSettings, resolve_auth
from moltbot.gateway.lock import GatewayLock
from moltbot.gateway.reload import changed_paths, needs_restart
from moltbot.gateway.runtime import GatewayRuntime
from moltbot.gateway.status import wire
from moltbot.instance.bind import listen_host
from moltbot.instance.registry import discover, others
from moltbot.instance.resolve import (
    Identity,
    Instance,
    Invocation,
    resolve_instance,
    write_identity_file,
)
from moltbot.lifecycle import State
from moltbot.security import process
from moltbot.security.connguard import RUNNER_KWARGS, GuardedSite
from moltbot.security.origin import is_loopback_name
from moltbot.security.secrets import weakness
from moltbot.security.shield import Shield

log = logging.getLogger("moltbot.gateway")

SHUTDOWN_BUDGET_S = 1.5


@dataclass(frozen=True)
class RunOptions:
    port: int | None = None
    bind: str | None = None
    token: str | None = None
    password: str | None = None
    force: bool = False
    verbose: bool = False
    color: bool = True
    show_token: bool = False
    """Print the dashboard URL with the token (only when stdout is a terminal: a
    service's stdout ends up in journald or a log file)."""


@dataclass
class Prepared:
    identity: Identity
    instance: Instance
    snapshot: ConfigSnapshot
    auth: AuthSettings
    host: str


def prepare(identity: Identity, env: Mapping[str, str], options: RunOptions) -> Prepared:
    """Read and check everything that can fail before any port is touched."""
    snapshot = read_config(identity.config_path, env)
    for warning in snapshot.warnings:
        log.warning("%s", warning)
    config = snapshot.config
    if config.gateway.mode == "remote":
        raise ConfigError(
            f'{identity.config_path}: gateway.mode is "remote" (this config points at a gateway '
            "elsewhere)",
            hint="set gateway.mode to local to run a gateway here",
        )
    instance = resolve_instance(identity, config, env, Invocation(port=options.port))
    if options.bind:
        instance = dataclasses.replace(instance, bind=options.bind)
    auth = resolve_auth(config, env, token=options.token, password=options.password)
    if options.password and not options.token:
        auth = dataclasses.replace(auth, mode="password")
    if options.token:
        auth = dataclasses.replace(auth, mode="token")
    if not auth.configured:
        raise ConfigError(
            f"gateway auth mode is {auth.mode} but no {auth.mode} is configured",
            hint=f"set gateway.auth.{auth.mode} in {identity.config_path}, "
            f"CLAWDBOT_GATEWAY_{auth.mode.upper()}, or pass --{auth.mode}",
        )
    host = listen_host(instance.bind, config.gateway.custom_bind_host)
    secret = auth.token if auth.mode == "token" else auth.password
    problem = weakness(secret)
    if problem and not is_loopback_name(host):
        raise ConfigError(
            f"gateway.bind {instance.bind} listens on {host} but the gateway {auth.mode} is "
            f"weak: {problem}",
            hint="use a long random secret beyond loopback (`moltbot setup` generates one; "
            'e.g. python3 -c "import secrets; print(secrets.token_urlsafe(32))"), '
            "or bind to loopback",
        )
    return Prepared(identity, instance, snapshot, auth, host)


def write_runtime_file(runtime: GatewayRuntime, host: str) -> None:
    inst = runtime.instance
    facts = wire(runtime.instance_facts())
    data = {**facts, "host": host, "url": f"ws://{_url_host(host)}:{inst.port}"}
    write_json_atomic(inst.runtime_file, data, mode=0o644, sync=False)


def remove_runtime_file(instance: Instance) -> None:
    with contextlib.suppress(OSError, ValueError):
        data = json.loads(instance.runtime_file.read_text(encoding="utf-8"))
        if data.get("pid") == os.getpid():
            instance.runtime_file.unlink()


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", "::"):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def run(
    identity: Identity, env: Mapping[str, str], options: RunOptions, echo: Callable[[str], None]
) -> int:
    from moltbot.config.schema import Config
    from moltbot.errors import MoltbotError
    from moltbot.gateway.logs import configure, record_to_file

    process.pure_python_frozenlist()  # all three before aiohttp is imported
    process.system_cas_on_demand()
    process.mime_table_on_demand()
    log_file = resolve_instance(identity, Config(), env).log_file
    file_handler = configure(log_file, verbose=options.verbose, color=options.color)
    lock: GatewayLock | None = None
    try:
        prepared = prepare(identity, env, options)
        instance = prepared.instance
        lock = GatewayLock(instance.lock_file)
        lock.acquire(instance.port)
        write_identity_file(identity)
        neighbours = check_registry(prepared, env)
        if options.force:
            for stopped in preflight.force_free(instance.port, neighbours):
                echo(f"force: stopped {stopped.describe()} on port {instance.port}")
        check_listening(prepared)
        limits = process.raise_open_files_limit()
        log.debug("open-files limit %s", limits)
        return asyncio.run(_serve(prepared, env, options, lock, echo))
    except AlreadyRunningError:
        raise  # the running gateway's log is not ours to write
    except MoltbotError as exc:
        record_to_file(file_handler, f"gateway failed to start: {exc.message}", exc.exit_code)
        raise
    finally:
        if lock is not None:
            lock.release()


def _wanted_ports(prepared: Prepared) -> dict[int, str]:
    config = prepared.snapshot.config
    return preflight.instance_ports(
        prepared.instance, browser=config.browser.enabled, canvas=config.canvas_host.enabled
    )


def check_registry(prepared: Prepared, env: Mapping[str, str]) -> list[Any]:
    """Refuse ports another known instance uses; the other instances, for ``--force``."""
    instance = prepared.instance
    neighbours = others(discover(instance.home, env), instance)
    preflight.check_registry(instance, _wanted_ports(prepared), neighbours)
    return neighbours


def check_listening(prepared: Prepared) -> None:
    preflight.check_listening(prepared.host, _wanted_ports(prepared))


def check_ports(prepared: Prepared, env: Mapping[str, str]) -> None:
    check_registry(prepared, env)
    check_listening(prepared)


class _Signals:
    def __init__(self) -> None:
        self.stop = asyncio.Event()
        self.restart = asyncio.Event()
        self.reason = "gateway stopping"

    def install(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self._on_stop)
        loop.add_signal_handler(signal.SIGINT, self._on_stop)
        loop.add_signal_handler(signal.SIGUSR1, self.request_restart, "SIGUSR1")

    def _on_stop(self) -> None:
        self.reason = "gateway stopping"
        self.stop.set()

    def request_restart(self, why: str) -> None:
        log.info("restarting in-process (%s)", why)
        self.restart.set()


async def _serve(
    prepared: Prepared,
    env: Mapping[str, str],
    options: RunOptions,
    lock: GatewayLock,
    echo: Callable[[str], None],
) -> int:
    from aiohttp import web

    from moltbot.gateway.methods.registry import MethodTable
    from moltbot.gateway.server import build_app

    signals = _Signals()
    signals.install()
    methods = MethodTable()
    shield = Shield()  # outlives in-process restarts: a restart does not lift a lockout
    first = True
    while True:
        runtime = GatewayRuntime(
            prepared.instance, prepared.snapshot, env, prepared.auth, methods, shield
        )
        runtime.bind_host = prepared.host
        runtime.state = State.STARTING
        runner = web.AppRunner(
            build_app(runtime),
            access_log=None,
            handle_signals=False,
            shutdown_timeout=0.5,
            **RUNNER_KWARGS,
        )
        await runner.setup()
        await _bind(runner, prepared, shield)
        lock.update_port(prepared.instance.port)
        write_runtime_file(runtime, prepared.host)
        runtime.state = State.RUNNING
        _announce(runtime, prepared, echo, first, show_token=options.show_token)
        first = False
        sidecars = asyncio.create_task(_start_sidecars(runtime, prepared.host))
        background = [
            asyncio.create_task(_tick(runtime)),
            asyncio.create_task(_watch_config(runtime, prepared, signals)),
        ]
        stop_wait = asyncio.create_task(signals.stop.wait())
        restart_wait = asyncio.create_task(signals.restart.wait())
        await asyncio.wait({stop_wait, restart_wait}, return_when=asyncio.FIRST_COMPLETED)
        for task in (sidecars, *background, restart_wait):
            task.cancel()
        await asyncio.gather(sidecars, return_exceptions=True)  # no start racing the stop
        if not signals.stop.is_set():
            await _drain(runtime, stop_wait)
        stop_wait.cancel()
        restarting = not signals.stop.is_set()
        await _shutdown(runtime, runner, restarting)
        if not restarting:
            remove_runtime_file(prepared.instance)
            log.info("gateway stopped", extra={"exit_code": 0})
            return 0
        signals.restart.clear()
        gc.unfreeze()  # the old runtime's objects are garbage now: let GC see them again
        prepared = _reprepare(prepared, env, options)


async def _start_sidecars(runtime: GatewayRuntime, host: str) -> None:
    """After the port answers: start the subsystems, then settle in for the long run."""
    # first, in a thread that finishes even if a stop cancels this task: the config the
    # gateway answers with is the instance's last good one
    await asyncio.to_thread(remember_good_config, runtime)
    await asyncio.to_thread(process.tune_allocator)
    await runtime.start_subsystems()
    gc.collect()  # once: what start-up left behind (the CLI turned the GC off for it)
    gc.freeze()  # start-up objects live for the whole run: keep them out of GC scans
    gc.enable()
    process.release_memory()  # the heap pages start-up freed go back to the OS
    write_runtime_file(runtime, host)


async def _bind(runner: Any, prepared: Prepared, shield: Shield) -> None:
    port = prepared.instance.port
    guard = shield.connections
    site = GuardedSite(runner, prepared.host, port, backlog=512, guard=guard)
    try:
        await site.start()
    except OSError as exc:
        holders = preflight.listeners(port)
        who = ", ".join(h.describe() for h in holders) or "another process"
        raise PortInUseError(
            f"cannot bind {prepared.host}:{port}: {exc.strerror} (held by {who})",
            hint="stop that process, choose another port, or pass --force",
        ) from None
    if prepared.host == "127.0.0.1" and socket.has_ipv6:
        with contextlib.suppress(OSError):
            await GuardedSite(runner, "::1", port, guard=guard).start()


def _announce(
    runtime: GatewayRuntime,
    prepared: Prepared,
    echo: Callable[[str], None],
    first: bool,
    *,
    show_token: bool = False,
) -> None:
    inst = runtime.instance
    host = _url_host(prepared.host)
    listening = describe_bind(prepared.host, inst.port)
    if not first:
        log.info("gateway restarted, listening on %s", listening)
        return
    log.info("listening on %s (pid %d, profile %s)", listening, os.getpid(), inst.profile)
    token_shown = show_token and prepared.auth.mode == "token"
    fragment = f"#token={prepared.auth.token}" if token_shown else ""
    echo(f"moltbot gateway ready — profile {inst.profile}, pid {os.getpid()}")
    echo(f"  Listening  {listening}")
    echo(f"  WebSocket  ws://{host}:{inst.port}")
    dashboard = f"http://{host}:{inst.port}/{fragment}"
    if not token_shown and prepared.auth.mode == "token":
        dashboard += "  (token: gateway.auth.token; printed here only on a terminal)"
    echo(f"  Dashboard  {dashboard}")
    echo(
        f"  Ports      browser control {inst.control_port}, canvas {inst.canvas_port}, "
        f"CDP {inst.cdp_ports.start}-{inst.cdp_ports.stop - 1}"
    )
    echo(f"  State      {inst.state_dir}")
    echo(f"  Logs       {inst.log_file}")


def describe_bind(host: str, port: int) -> str:
    """The address actually bound, said plainly (``0.0.0.0`` is every interface)."""
    shown = f"[{host}]" if ":" in host else host
    if host in ("0.0.0.0", "::"):
        return f"{shown}:{port} (all interfaces: reachable from the network)"
    if is_loopback_name(host):
        return f"{shown}:{port} (loopback only)"
    return f"{shown}:{port}"


async def _drain(runtime: GatewayRuntime, stop_wait: asyncio.Task[Any]) -> None:
    """Before a restart: finish the work in flight, for up to
    ``gateway.restartGraceSeconds``; SIGTERM meanwhile cuts it short."""
    grace = runtime.config.gateway.restart_grace_seconds
    drain = asyncio.create_task(runtime.drain_subsystems(grace))
    await asyncio.wait({drain, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
    if not drain.done():
        drain.cancel()
        await asyncio.gather(drain, return_exceptions=True)


async def _shutdown(runtime: GatewayRuntime, runner: Any, restarting: bool) -> None:
    runtime.state = State.STOPPING
    reason = "gateway restarting" if restarting else "gateway stopping"
    runtime.broadcast(
        "shutdown", {"reason": reason, "restartExpectedMs": 1500 if restarting else None}
    )
    connections = list(runtime.connections.values())
    with contextlib.suppress(Exception):
        await asyncio.wait_for(asyncio.gather(*(c.flush(0.3) for c in connections)), 0.4)
    # Each close cuts its peer off after its own timeout; a close cancelled from
    # outside would leave the socket open on a runtime that is gone.
    closes = (
        c.close(protocol.CLOSE_SERVICE_RESTART, "service restart", timeout=0.3) for c in connections
    )
    with contextlib.suppress(Exception):
        await asyncio.wait_for(asyncio.gather(*closes, return_exceptions=True), 0.5)
    for connection in connections:
        if not connection.ws.closed:
            connection.abort_transport()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(runtime.stop_subsystems(), SHUTDOWN_BUDGET_S - 0.6)
    with contextlib.suppress(Exception):
        await asyncio.wait_for(runner.cleanup(), 0.5)
    runtime.state = State.STOPPED


def _reprepare(prepared: Prepared, env: Mapping[str, str], options: RunOptions) -> Prepared:
    try:
        fresh = prepare(prepared.identity, env, options)
    except ConfigError as exc:
        log.error("config change rejected, keeping the running config: %s", exc.message)
        return prepared
    if fresh.instance.port != prepared.instance.port or fresh.host != prepared.host:
        try:
            check_ports(fresh, env)
        except Exception as exc:
            log.error("new ports refused, keeping the old ones: %s", getattr(exc, "message", exc))
            return dataclasses.replace(fresh, instance=prepared.instance, host=prepared.host)
    return fresh


async def _tick(runtime: GatewayRuntime) -> None:
    interval = protocol.TICK_INTERVAL_MS / 1000
    last_health = time.monotonic()
    while True:
        await asyncio.sleep(interval)
        runtime.broadcast("tick", {"ts": int(time.time() * 1000)}, drop_if_slow=True)
        runtime.dedupe.sweep()
        if time.monotonic() - last_health >= protocol.HEALTH_REFRESH_S:
            runtime.refresh_health()
            last_health = time.monotonic()


async def _watch_config(runtime: GatewayRuntime, prepared: Prepared, signals: _Signals) -> None:
    path = prepared.identity.config_path
    path.parent.mkdir(parents=True, exist_ok=True)
    debounce = max(50, runtime.config.gateway.reload.debounce_ms)
    await runtime.subsystems_started.wait()  # a change is applied to subsystems that have started
    async for _ in filewatch.changes(path, debounce):  # the first: the watch is in place
        if _file_hash(path) != runtime.snapshot.hash:  # (e.g. changed while we were starting)
            await _apply_config_change(runtime, prepared, signals)


def _file_hash(path: Path) -> str | None:
    from moltbot.config.store import content_hash, read_text

    try:
        raw = read_text(path)
    except (OSError, ConfigError):
        return None
    return content_hash(raw) if raw else None


async def _apply_config_change(
    runtime: GatewayRuntime, prepared: Prepared, signals: _Signals
) -> None:
    path = prepared.identity.config_path
    try:
        snapshot = read_config(path, runtime.env)
    except ConfigError as exc:
        log.error("config change rejected, keeping the running config: %s", exc.message)
        return
    if snapshot.hash == runtime.snapshot.hash:
        return
    mode = snapshot.config.gateway.reload.mode
    if mode == "off":
        log.info("config changed; gateway.reload.mode=off, not applying")
        return
    paths = changed_paths(runtime.config, snapshot.config)
    if not paths:
        runtime.snapshot = snapshot
        remember_good_config(runtime)
        return
    if needs_restart(paths, mode):
        log.info("config change needs a restart: %s", ", ".join(paths[:5]))
        signals.request_restart("config change")
        return
    runtime.snapshot = snapshot
    await runtime.reconfigure_subsystems()
    # logged once in effect: a client that saw this line gets the new config's behaviour
    log.info("applied config change live: %s", ", ".join(paths[:5]))
    remember_good_config(runtime)


def remember_good_config(runtime: GatewayRuntime) -> None:
    """Record the config this gateway now runs with as the instance's last good one
    (``<state>/config-history/last-good.json``); rescue diffs and restores against it."""
    from moltbot.config.history import record_last_good

    snapshot = runtime.snapshot
    if not snapshot.exists or not snapshot.hash:
        return
    try:
        record_last_good(runtime.instance.state_dir, snapshot.path, snapshot.raw, snapshot.hash)
    except OSError as exc:
        log.warning("could not record the last good config: %s", exc)


__all__ = ["RunOptions", "run"]
