"""Stopping and starting a target's gateway, and waiting until it answers.

Through the target's own installed service when a service manager can run it here
(``systemctl --user``, ``launchctl``, ``schtasks``: :mod:`moltbot.service.actions`).
Otherwise as a process: ``stop`` sends SIGTERM to the gateway holding the target's
lock (SIGKILL after :data:`STOP_TIMEOUT_S`), ``start`` runs ``<python> -m moltbot
[--profile P] gateway`` detached (its own session, stdin closed, output appended to
``<target state>/logs/gateway.detached.log``) with this process's environment minus
every instance identity variable and gateway secret, so it is the target and nothing
else. A start is reported only once the target answers ``health`` with the token of
its own config, or when it failed: the process exited (its exit code and the last
error of its log say why), its service failed, or it did not answer within
``rescue.startTimeoutSeconds``.

A target started here without a service manager is a child of this process's
session leader; when this process runs under a service manager itself, that
manager's stop may take the target down with it (install the target's own service).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from moltbot.errors import MoltbotError
from moltbot.instance.resolve import Instance, default_state_dir, recorded_config_path
from moltbot.rescue import inspect
from moltbot.rescue.errors import StartFailed

STOP_TIMEOUT_S = 15.0
POLL_S = 0.2
DETACHED_LOG = "gateway.detached.log"


@dataclass(frozen=True)
class Controlled:
    """What a restart/stop/start did: ``how`` (``service``/``process``), the pid that
    was stopped and the one that now answers, and a line for people."""

    action: str
    how: str
    message: str
    stopped_pid: int | None = None
    pid: int | None = None
    port: int | None = None

    def wire(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "how": self.how,
            "message": self.message,
            "stoppedPid": self.stopped_pid,
            "pid": self.pid,
            "port": self.port,
        }


def installed_manager(instance: Instance, env: Mapping[str, str]) -> Any:
    """The service manager that runs this target's installed service here, or None."""
    from moltbot.service import build_spec, get_manager

    try:
        manager = get_manager(dict(env), instance.home)
    except MoltbotError:
        return None
    spec = build_spec(instance, platform=manager.platform)
    if not manager.primary_file(spec).exists() or manager.unavailable_reason():
        return None
    return manager


def control(instance: Instance, env: Mapping[str, str], action: str, timeout: float) -> Controlled:
    """``restart``, ``stop`` or ``start`` the target (see the module doc)."""
    manager = installed_manager(instance, env)
    how = "service" if manager is not None else "process"
    old = _pid(instance)
    if action == "start" and old is not None:
        return Controlled("start", how, f"already running (pid {old})", None, old, _port(instance))
    if manager is not None:
        from moltbot.service import actions

        if action == "stop":
            actions.stop(instance, manager)
            return Controlled("stop", "service", f"stopped {_service_name(instance, manager)}", old)
        getattr(actions, action)(instance, manager)
        return _wait_up(instance, env, action, "service", old, None, timeout, manager)
    if action in ("stop", "restart"):
        stopped = stop_process(instance)
        if action == "stop":
            message = f"stopped pid {stopped}" if stopped else "it was not running"
            return Controlled("stop", "process", message, stopped)
    proc = spawn(instance, env)
    return _wait_up(instance, env, action, "process", old, proc, timeout, None)


def stop_process(instance: Instance, timeout: float = STOP_TIMEOUT_S) -> int | None:
    """SIGTERM the gateway holding the target's lock (SIGKILL after ``timeout``); the pid
    stopped, or None when none ran."""
    from moltbot.fsutil import is_locked

    pid = _pid(instance)
    if pid is None:
        return None
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return pid
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not is_locked(instance.lock_file):
                return pid
            time.sleep(POLL_S)
    raise MoltbotError(f"pid {pid} still holds {instance.lock_file} after SIGKILL")


def spawn(instance: Instance, env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    """Start the target's gateway detached (see the module doc)."""
    argv, child_env = launch_command(instance, env)
    instance.logs_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    log_fd = os.open(
        instance.logs_dir / DETACHED_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600
    )
    try:
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log_fd,
            stderr=log_fd,
            env=child_env,
            cwd=str(instance.home),
            start_new_session=True,
            close_fds=True,
        )
    except OSError as exc:
        raise StartFailed(f"cannot start {' '.join(argv)}: {exc.strerror}") from None
    finally:
        os.close(log_fd)


def launch_command(instance: Instance, env: Mapping[str, str]) -> tuple[list[str], dict[str, str]]:
    """The command line and environment that start exactly this instance's gateway."""
    from moltbot.instance import env as envvars

    child_env = envvars.without_identity(env)
    argv = [sys.executable, "-m", "moltbot"]
    profile = instance.profile
    own_dir = default_state_dir(instance.home, profile).resolve() == instance.state_dir.resolve()
    recorded = recorded_config_path(instance.state_dir)
    if own_dir and (recorded is None or recorded.resolve() == instance.config_path.resolve()):
        if profile != "default":
            argv += ["--profile", profile]
    else:  # an instance known by its state dir (the seed's manual form)
        child_env["CLAWDBOT_STATE_DIR"] = str(instance.state_dir)
        child_env["CLAWDBOT_CONFIG_PATH"] = str(instance.config_path)
        if profile != "default":
            child_env["CLAWDBOT_PROFILE"] = profile
    return [*argv, "gateway"], child_env


def _wait_up(
    instance: Instance,
    env: Mapping[str, str],
    action: str,
    how: str,
    old: int | None,
    proc: subprocess.Popen[bytes] | None,
    timeout: float,
    manager: Any,
) -> Controlled:
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise StartFailed(_exited(instance, proc.returncode))
        pid = _pid(instance)
        if pid is not None and pid != old:
            answer = inspect.health(instance, env)
            if answer is not None:
                via = "" if answer.via == "protocol" else " on /health (token not known here)"
                return Controlled(
                    action,
                    how,
                    f"{action}ed: answers health{via} (pid {pid}, port {_port(instance)})",
                    old,
                    pid,
                    _port(instance),
                )
        if manager is not None:
            failed = _service_failed(instance, manager)
            if failed:
                raise StartFailed(failed)
        if time.monotonic() > deadline:
            raise StartFailed(
                f"{_who(instance)} did not answer health within {timeout:.0f} s"
                + _last_error(instance)
            )
        time.sleep(POLL_S)


def _exited(instance: Instance, code: int) -> str:
    return f"{_who(instance)} exited with code {code} while starting" + _last_error(instance)


def _last_error(instance: Instance) -> str:
    run = inspect.last_run(inspect.read_log(instance.log_file))
    return f"; last error: {run.errors[-1]}" if run.errors else ""


def _service_failed(instance: Instance, manager: Any) -> str | None:
    from moltbot.service import build_spec

    spec = build_spec(instance, platform=manager.platform)
    try:
        runtime = manager.runtime(spec)
    except MoltbotError:
        return None
    if runtime.status == "stopped" and runtime.last_exit not in (None, 0):
        return (
            f"{manager.service_name(spec)} stopped with exit code {runtime.last_exit}"
            + _last_error(instance)
        )
    return None


def _pid(instance: Instance) -> int | None:
    from moltbot.gateway.target import running_gateway

    runtime = running_gateway(instance)
    pid = runtime.get("pid") if runtime else None
    return pid if isinstance(pid, int) and pid > 0 else None


def _port(instance: Instance) -> int | None:
    from moltbot.gateway.target import running_gateway

    runtime = running_gateway(instance) or {}
    port = runtime.get("port")
    return port if isinstance(port, int) else None


def _who(instance: Instance) -> str:
    return "the default instance" if instance.profile == "default" else instance.profile


def _service_name(instance: Instance, manager: Any) -> str:
    from moltbot.service import build_spec

    return str(manager.service_name(build_spec(instance, platform=manager.platform)))


__all__ = ["DETACHED_LOG", "Controlled", "control", "launch_command", "spawn", "stop_process"]
