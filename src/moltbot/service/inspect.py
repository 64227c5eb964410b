"""Facts about one instance's service and process, each gathered on its own.

``gateway status`` and ``status --all`` report these side by side and never
infer one from another: a unit can be enabled while nothing listens, a
gateway can run in the foreground with no unit, and the port can be held by
something else entirely. Only this instance's own service name is queried;
another profile's service is never looked at here.
"""

from __future__ import annotations

import json
import os
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

from moltbot.errors import MoltbotError
from moltbot.instance.resolve import Instance
from moltbot.instance.running import read_record
from moltbot.service.base import ServiceManager
from moltbot.service.spec import build_spec, differences

HEALTH_TIMEOUT_S = 1.0


def service_facts(
    instance: Instance,
    env: Mapping[str, str] | None = None,
    *,
    manager: ServiceManager | None = None,
) -> dict[str, Any]:
    """This instance's service: installed / current / loaded / running, as separate facts.

    Never raises for an unsupported platform or a missing service manager; the
    reason is reported in ``unavailable``. Keys (camelCase, JSON-ready):
    ``manager, title, name, file, installed, current, changes, command,
    available, unavailable, loaded, loadedText, running, runtime, startCommand,
    stopCommand, restartCommand, logHint``.
    """
    from moltbot.service import get_manager

    env = dict(os.environ if env is None else env)
    try:
        manager = manager or get_manager(env, instance.home)
    except MoltbotError as exc:
        return {
            "manager": None,
            "installed": False,
            "available": False,
            "unavailable": exc.message,
            "loaded": None,
            "running": None,
        }
    spec = build_spec(instance, platform=manager.platform)
    path = manager.primary_file(spec)
    installed = path.exists()
    facts: dict[str, Any] = {
        "manager": manager.name,
        "title": manager.title,
        "name": manager.service_name(spec),
        "file": str(path),
        "installed": installed,
        "current": None,
        "changes": [],
        "command": None,
    }
    if installed:
        found = manager.read(path)
        expected = manager.files(spec)
        same = all(p.exists() and p.read_bytes() == content for p, content in expected.items())
        facts["current"] = same
        facts["changes"] = [] if same else differences(spec, found)
        if found is not None:
            facts["command"] = {
                "programArguments": list(found.program),
                "environment": found.identity_environment(),
                "sourcePath": str(path),
                "interpreterExists": bool(found.interpreter)
                and os.access(found.interpreter or "", os.X_OK),
            }
    reason = manager.unavailable_reason()
    facts["available"] = reason is None
    facts["unavailable"] = reason
    if reason is None:
        try:
            loaded = manager.is_loaded(spec)
            runtime = manager.runtime(spec)
        except Exception as exc:  # a probe of the host degrades to "unknown", never crashes
            facts["available"] = False
            facts["unavailable"] = f"{manager.title} did not answer: {exc!r}"
            facts["loaded"] = None
            facts["running"] = None
        else:
            facts["loaded"] = loaded
            facts["loadedText"] = manager.loaded_text if loaded else manager.not_loaded_text
            facts["running"] = runtime.status == "running"
            facts["runtime"] = runtime.as_dict()
    else:
        facts["loaded"] = None
        facts["running"] = None
    facts["startCommand"] = manager.start_command(spec)
    facts["stopCommand"] = manager.stop_command(spec)
    facts["restartCommand"] = manager.restart_command(spec)
    facts["logHint"] = manager.log_hint(spec)
    return facts


def process_facts(instance: Instance, listening: Listening | None = None) -> dict[str, Any]:
    """The gateway process (from its runtime file) and who owns its port.

    ``alive`` is true only when the pid in the runtime file exists and is a
    moltbot process; ``stale`` when the file names a process that is gone.
    ``listening``: a snapshot shared by many calls (see :func:`port_owner`).
    """
    runtime = read_record(instance)
    pid = runtime.get("pid") if runtime else None
    pid = pid if isinstance(pid, int) and pid > 0 else None
    alive, started = _gateway_process(pid) if pid else (False, None)
    port = runtime.get("port") if runtime and isinstance(runtime.get("port"), int) else None
    port = port or instance.port
    owner = port_owner(port, listening)
    return {
        "runtimeFile": str(instance.runtime_file),
        "pid": pid if alive else None,
        "alive": alive,
        "stale": bool(pid) and not alive,
        "version": runtime.get("version") if runtime and alive else None,
        "uptimeSeconds": round(time.time() - started) if started else None,
        "port": port,
        "portOwner": owner,
        "portOwnedByGateway": (
            owner is not None and owner.get("pid") is not None and owner.get("pid") == pid and alive
        )
        if owner
        else None,
    }


def _gateway_process(pid: int) -> tuple[bool, float | None]:
    import psutil

    try:
        proc = psutil.Process(pid)
        cmdline = " ".join(proc.cmdline())
        started = proc.create_time()
    except psutil.NoSuchProcess:
        return False, None
    except psutil.AccessDenied:
        return True, None
    if proc.status() == psutil.STATUS_ZOMBIE:
        return False, None
    return ("moltbot" in cmdline or "clawdbot" in cmdline), started


Listening = dict[int, tuple[str, int | None]]
"""TCP port -> (address, pid) of its first listener: one look at the host's sockets."""


def listening() -> Listening:
    """Every TCP listener here (as far as this user can see), in one pass over the
    host's sockets: a caller asking about many ports takes this once and passes it to
    :func:`port_owner`, instead of one pass per port."""
    import psutil

    try:
        connections = psutil.net_connections(kind="inet")
    except (psutil.AccessDenied, OSError):
        connections = []
    found: Listening = {}
    for conn in connections:
        if conn.status == psutil.CONN_LISTEN and conn.laddr:
            found.setdefault(conn.laddr.port, (conn.laddr.ip, conn.pid))
    return found


def port_owner(port: int, snapshot: Listening | None = None) -> dict[str, Any] | None:
    """Who listens on TCP ``port`` (any address), or ``None`` when nobody does.

    ``snapshot`` is a :func:`listening` taken earlier (default: a fresh one)."""
    import psutil

    held = (listening() if snapshot is None else snapshot).get(port)
    if held is not None:
        address, pid = held
        info: dict[str, Any] = {"pid": pid, "address": f"{address}:{port}"}
        if pid:
            try:
                proc = psutil.Process(pid)
                info["name"] = proc.name()
                info["commandLine"] = " ".join(proc.cmdline())
            except psutil.Error:
                pass
        return info
    if _bound(port):
        return {"pid": None, "address": f"127.0.0.1:{port}", "detail": "in use (owner not visible)"}
    return None


def listening_ports() -> set[int]:
    """Every TCP port something listens on here (as far as this user can see)."""
    return set(listening())


def _bound(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def probe_health(
    port: int, host: str = "127.0.0.1", timeout: float = HEALTH_TIMEOUT_S
) -> dict[str, Any]:
    """``GET /health`` on the gateway port: reachable at all, and healthy (``{"ok": true}``).

    Reachability only; authenticated RPC is the gateway client's business.
    """
    url = f"http://{host}:{port}/health"
    started = time.monotonic()
    try:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never a proxy
        with opener.open(url, timeout=timeout) as response:
            body = response.read(65536)
            status = response.status
    except urllib.error.HTTPError as exc:
        return {
            "url": url,
            "reachable": True,
            "ok": False,
            "status": exc.code,
            "latencyMs": _ms(started),
            "error": f"HTTP {exc.code}",
        }
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        return {
            "url": url,
            "reachable": False,
            "ok": False,
            "latencyMs": _ms(started),
            "error": str(reason),
        }
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    ok = isinstance(data, dict) and data.get("ok") is True
    return {
        "url": url,
        "reachable": True,
        "ok": ok,
        "status": status,
        "latencyMs": _ms(started),
        "error": None if ok else "unexpected /health answer",
    }


def _ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 1)
