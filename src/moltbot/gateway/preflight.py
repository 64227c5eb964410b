"""Before binding: every port of the instance against the host.

Two checks, each naming what clashes: (a) every other instance known on the host
(its base, +2, +4 and assigned CDP ports, and the seed's 20-port base spacing),
and (b) what is already listening (process id and command line).
"""

from __future__ import annotations

import errno
import os
import signal
import socket
import time
from dataclasses import dataclass

from moltbot.errors import ConflictError, PortInUseError
from moltbot.gateway.lock import is_locked, read_holder
from moltbot.instance import ports as portmath
from moltbot.instance.registry import KnownInstance
from moltbot.instance.resolve import Instance


@dataclass(frozen=True)
class Listener:
    pid: int | None
    command: str

    def describe(self) -> str:
        return f"pid {self.pid} ({self.command})" if self.pid else "an unknown process"


def instance_ports(instance: Instance, *, browser: bool, canvas: bool) -> dict[int, str]:
    wanted = {instance.port: "gateway"}
    if browser:
        wanted[instance.control_port] = "browser control"
        for name, port in (*instance.explicit_cdp_ports, *instance.allocated_cdp_ports):
            wanted[port] = f"browser profile {name} CDP"
    if canvas:
        wanted[instance.canvas_port] = "canvas host"
    return wanted


def check_registry(
    instance: Instance, wanted: dict[int, str], neighbours: list[KnownInstance]
) -> None:
    for other in neighbours:
        theirs = other.claimed_ports
        who = (
            f"instance {other.instance.profile} ({other.instance.state_dir}, "
            f"base port {other.live_port})"
        )
        for port, role in sorted(wanted.items()):
            if port in theirs:
                raise ConflictError(
                    f"port {port} ({role}) is also used by {who}",
                    hint="give each instance its own base port, at least 20 apart (moltbot doctor)",
                )
        if abs(other.live_port - instance.port) < portmath.MIN_BASE_SPACING:
            raise ConflictError(
                f"base port {instance.port} is within {portmath.MIN_BASE_SPACING} of {who}",
                hint="leave at least 20 ports between base ports so derived ports never collide",
            )


def port_is_free(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def listeners(port: int) -> list[Listener]:
    import psutil

    found: list[Listener] = []
    try:
        connections = psutil.net_connections(kind="tcp")
    except (psutil.AccessDenied, OSError):
        return found
    for conn in connections:
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
            command = "unknown"
            if conn.pid:
                try:
                    command = " ".join(psutil.Process(conn.pid).cmdline()) or command
                except (psutil.Error, OSError):
                    pass
            found.append(Listener(conn.pid, command))
    return list(dict.fromkeys(found))  # one entry per process, even when it has two sockets


def check_listening(host: str, wanted: dict[int, str]) -> None:
    for port, role in sorted(wanted.items()):
        bind_host = host if role in ("gateway", "canvas host") else "127.0.0.1"
        if not port_is_free(bind_host, port):
            holders = listeners(port)
            who = ", ".join(h.describe() for h in holders) or "another process"
            raise PortInUseError(
                f"port {port} ({role}) is already in use by {who}",
                hint="stop that process, choose another port, or pass --force to stop the "
                "listener on the gateway port",
            )


def instance_of_process(pid: int, neighbours: list[KnownInstance]) -> KnownInstance | None:
    """The other known instance process ``pid`` belongs to, if any: it is that
    instance's running gateway (runtime file or lock holder), holds its
    ``gateway.lock`` open, or names its state dir on its command line (a browser
    profile of it, say)."""
    import psutil

    for other in neighbours:
        if other.runtime and other.runtime.get("pid") == pid:
            return other
        holder = read_holder(other.instance.lock_file)
        if holder.get("pid") == pid and is_locked(other.instance.lock_file):
            return other
    try:
        process = psutil.Process(pid)
        cmdline = " ".join(process.cmdline())
        open_paths = [f.path for f in process.open_files()]
    except (psutil.Error, OSError):
        return None
    for other in neighbours:
        state = str(other.instance.state_dir.resolve())
        if state in cmdline or any(
            path == str(other.instance.lock_file) or path.startswith(state + os.sep)
            for path in open_paths
        ):
            return other
    return None


def force_free(
    port: int, neighbours: list[KnownInstance], *, timeout: float = 2.0
) -> list[Listener]:
    """Stop whatever listens on ``port`` (SIGTERM, then SIGKILL after 0.7 s), after
    checking every listener first: a process of another known instance is never
    stopped (:class:`ConflictError`, nothing killed)."""
    holders = [h for h in listeners(port) if h.pid and h.pid != os.getpid()]
    for holder in holders:
        assert holder.pid is not None
        other = instance_of_process(holder.pid, neighbours)
        if other is not None:
            raise ConflictError(
                f"port {port} is held by {holder.describe()}, which belongs to instance "
                f"{other.instance.profile} ({other.instance.state_dir}); --force never stops "
                "another instance",
                hint="choose another port for this instance, or stop that instance yourself "
                f"(moltbot --profile {other.instance.profile} gateway stop)",
            )
    for holder in holders:
        assert holder.pid is not None
        try:
            os.kill(holder.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    escalated = False
    while time.monotonic() < deadline:
        if all(not _alive(h.pid) for h in holders if h.pid):
            break
        if not escalated and time.monotonic() > deadline - timeout + 0.7:
            for holder in holders:
                if holder.pid and _alive(holder.pid):
                    try:
                        os.kill(holder.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            escalated = True
        time.sleep(0.05)
    return holders


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
