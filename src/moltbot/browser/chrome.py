"""Finding, launching and stopping a local Chromium for one browser profile.

The browser runs in its own process group (so stopping it takes its renderer
and GPU helpers along), with the gateway's identity variables removed from its
environment, its stderr in ``<browser>/<profile>/chrome.log``, and on Linux a
parent-death signal so it never outlives a gateway that was killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moltbot.browser.errors import BrowserError, conflict

CANDIDATES = (
    "chromium",
    "chromium-browser",
    "google-chrome",
    "google-chrome-stable",
    "chrome",
    "brave-browser",
    "brave-browser-stable",
    "microsoft-edge",
    "microsoft-edge-stable",
)
DEVTOOLS_TIMEOUT_S = 30.0
STOP_GRACE_S = 5.0

NO_INTERNET_FLAGS = (
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
)


Ready = Callable[[int], Awaitable[bool]]
"""``await ready(port)``: whether DevTools answers on that loopback port."""


@dataclass(frozen=True)
class Executable:
    path: str
    kind: str
    source: str  # "browser.executablePath" or "PATH"

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "kind": self.kind, "source": self.source}


def _kind(path: str) -> str:
    name = Path(path).name.lower()
    for kind in ("brave", "edge", "chromium", "chrome"):
        if kind in name:
            return kind
    return "custom"


def is_snap(path: str) -> bool:
    """Snap Chromium (or Ubuntu's deb shim that runs it): confined, cannot use our dirs."""
    if path.startswith("/snap/") or os.path.realpath(path).startswith("/snap/"):
        return True
    try:
        with open(path, "rb") as handle:
            head = handle.read(4096)
    except OSError:
        return False
    return head.startswith(b"#!") and b"/snap/bin/" in head


def find_executable(configured: str | None, env: Mapping[str, str]) -> Executable:
    """``browser.executablePath``, else the first usual Chromium name on ``PATH``.

    Raises :class:`BrowserError` (503) when nothing is found or when it is snap Chromium.
    """
    if configured:
        path = os.path.expanduser(configured)
        found = path if os.path.isfile(path) else shutil.which(path, path=env.get("PATH"))
        if not found or not os.access(found, os.X_OK):
            raise BrowserError(
                f"browser.executablePath not found or not executable: {configured}",
                status=503,
                hint="fix browser.executablePath or unset it",
            )
        exe = Executable(found, _kind(found), "browser.executablePath")
    else:
        search = env.get("PATH") or os.defpath
        exe = None
        for name in CANDIDATES:
            found = shutil.which(name, path=search)
            if found:
                exe = Executable(found, _kind(found), "PATH")
                break
        if exe is None:
            raise BrowserError(
                "no Chromium-based browser found on PATH "
                f"(looked for {', '.join(CANDIDATES[:4])}, ...)",
                status=503,
                hint="install one (Debian: `apt install chromium`) or set browser.executablePath",
            )
    if is_snap(exe.path):
        raise BrowserError(
            f"{exe.path} is snap Chromium, which cannot use the profile directories under the "
            "state dir (snap confinement) nor be controlled reliably",
            status=503,
            hint="install a non-snap build (Debian `chromium`, Google Chrome .deb) and set "
            "browser.executablePath, or start the snap browser yourself with "
            "--remote-debugging-port and set browser.profiles.<name>.cdpUrl",
        )
    return exe


def launch_args(
    exe: Executable, *, port: int, user_data: Path, headless: bool, no_sandbox: bool
) -> list[str]:
    args = [
        exe.path,
        f"--remote-debugging-port={port}",
        "--remote-debugging-address=127.0.0.1",
        f"--user-data-dir={user_data}",
        *NO_INTERNET_FLAGS,
        "--no-default-browser-check",
        "--disable-default-apps",
        "--disable-features=Translate,MediaRouter,OptimizationHints",
        "--disable-session-crashed-bubble",
        "--hide-crash-restore-bubble",
        "--password-store=basic",
        "--metrics-recording-only",
    ]
    if headless:
        args += ["--headless=new", "--disable-gpu"]
    if no_sandbox:
        args += ["--no-sandbox", "--disable-setuid-sandbox"]
    if sys.platform.startswith("linux"):
        args.append("--disable-dev-shm-usage")
    args.append("about:blank")
    return args


def singleton_owner(user_data: Path) -> int | None:
    """The pid of a live Chrome on this host holding ``user_data``'s SingletonLock."""
    try:
        target = os.readlink(user_data / "SingletonLock")
    except OSError:
        return None
    host, _, pid_text = target.rpartition("-")
    if host and host != socket.gethostname():
        return None
    try:
        pid = int(pid_text)
    except ValueError:
        return None
    try:
        import psutil

        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
    except Exception:
        return None
    return pid


def listener_pid(port: int) -> int | None:
    """The pid listening on TCP ``port`` (best effort; ``None`` when unknown)."""
    try:
        import psutil

        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
                return conn.pid
    except Exception:
        return None
    return None


def process_cmdline(pid: int) -> list[str]:
    try:
        import psutil

        return psutil.Process(pid).cmdline()
    except Exception:
        return []


def _set_parent_death_signal() -> None:  # runs in the child between fork and exec
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


@dataclass
class ChromeProcess:
    """A Chromium this service launched (or adopted after a crash: ``proc`` is None)."""

    profile: str
    pid: int
    port: int
    user_data: Path
    executable: Executable | None
    log_path: Path | None
    started_at: float = field(default_factory=time.time)
    startup_ms: int | None = None
    proc: asyncio.subprocess.Process | None = None

    def alive(self) -> bool:
        if self.proc is not None:
            return self.proc.returncode is None
        try:
            os.kill(self.pid, 0)
        except OSError:
            return False
        return True

    def as_dict(self) -> dict[str, object]:
        return {
            "pid": self.pid,
            "cdpPort": self.port,
            "userDataDir": str(self.user_data),
            "startedAt": self.started_at,
            "startupMs": self.startup_ms,
            "executable": self.executable.path if self.executable else None,
            "adopted": self.proc is None,
        }


def _log_tail(path: Path | None, lines: int = 8) -> str:
    if path is None:
        return ""
    try:
        text = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    interesting = [line for line in text if "dbus" not in line.lower()]
    return "\n".join(interesting[-lines:])


async def launch(
    profile: str,
    exe: Executable,
    *,
    port: int,
    user_data: Path,
    headless: bool,
    no_sandbox: bool,
    env: Mapping[str, str],
    ready: Ready,
    timeout: float = DEVTOOLS_TIMEOUT_S,
) -> ChromeProcess:
    """Start Chromium and wait until DevTools answers on ``port``.

    Raises :class:`BrowserError`: 409 when the profile is locked by another
    process, 503 when Chromium exits or never opens DevTools within ``timeout``.
    """
    owner = singleton_owner(user_data)
    if owner is not None:
        raise conflict(
            f'browser profile "{profile}" is locked by another Chromium process (pid {owner}) '
            f"using {user_data}",
            hint=f"close that browser (kill {owner}), or use another browser profile",
        )
    user_data.mkdir(parents=True, exist_ok=True, mode=0o700)
    log_path = user_data.parent / "chrome.log"
    args = launch_args(
        exe, port=port, user_data=user_data, headless=headless, no_sandbox=no_sandbox
    )
    started = time.monotonic()
    with open(log_path, "wb") as log:
        log.write((" ".join(args) + "\n").encode())
        log.flush()
        try:
            proc = await asyncio.create_subprocess_exec(
                *args,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=dict(env),
                start_new_session=True,
                preexec_fn=_set_parent_death_signal if sys.platform.startswith("linux") else None,
            )
        except OSError as exc:
            raise BrowserError(f"cannot run {exe.path}: {exc.strerror}", status=503) from None
    chrome = ChromeProcess(profile, proc.pid, port, user_data, exe, log_path, proc=proc)
    try:
        await _wait_devtools(chrome, proc, ready, started + timeout, timeout)
    except BaseException:
        # never leave a half-started browser behind
        _kill_tree(proc.pid, _descendants(proc.pid), user_data)
        raise
    chrome.startup_ms = int((time.monotonic() - started) * 1000)
    return chrome


async def _wait_devtools(
    chrome: ChromeProcess,
    proc: asyncio.subprocess.Process,
    ready: Ready,
    deadline: float,
    timeout: float,
) -> None:
    while True:
        if proc.returncode is not None:
            tail = _log_tail(chrome.log_path)
            raise BrowserError(
                f'Chromium for browser profile "{chrome.profile}" exited with code '
                f"{proc.returncode} before opening DevTools on port {chrome.port}"
                + (f":\n{tail}" if tail else ""),
                status=503,
                hint=f"see {chrome.log_path}",
            )
        if await ready(chrome.port):
            return
        if time.monotonic() > deadline:
            await stop(chrome)
            tail = _log_tail(chrome.log_path)
            raise BrowserError(
                f'Chromium (pid {proc.pid}) for browser profile "{chrome.profile}" never opened '
                f"DevTools on port {chrome.port} within {timeout:.0f}s"
                + (f":\n{tail}" if tail else ""),
                status=503,
                hint=f"see {chrome.log_path}; is the port blocked or the profile damaged?",
            )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), 0.1)


async def stop(chrome: ChromeProcess, grace: float = STOP_GRACE_S) -> None:
    """SIGTERM the browser, then SIGKILL its whole process tree after ``grace``.

    Chromium's zygote and renderers do not all stay in the browser's process
    group, so the tree is collected before the browser goes away.
    """
    pid = chrome.pid
    tree = _descendants(pid)
    _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if chrome.proc is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(chrome.proc.wait(), 0.1)
            if chrome.proc.returncode is not None:
                break
        elif not chrome.alive():
            break
        else:
            await asyncio.sleep(0.1)
    _kill_tree(pid, tree, chrome.user_data)
    if chrome.proc is not None and chrome.proc.returncode is None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(chrome.proc.wait(), 2.0)


def _descendants(pid: int) -> list[Any]:
    try:
        import psutil

        return list(psutil.Process(pid).children(recursive=True))
    except Exception:
        return []


def _kill_tree(pid: int, tree: list[Any], user_data: Path | None = None) -> None:
    """SIGKILL the browser's group, its (earlier collected) tree and every process
    still running with its user-data dir (helpers forked while it was stopping)."""
    _signal_group(pid, signal.SIGKILL)
    for child in [*tree, *_descendants(pid)]:
        with contextlib.suppress(Exception):
            child.kill()  # psutil checks the pid was not reused meanwhile
    if user_data is not None:
        for straggler in processes_using(user_data):
            with contextlib.suppress(Exception):
                straggler.kill()


def processes_using(user_data: Path) -> list[Any]:
    """Processes whose command line names ``user_data`` as their user-data dir."""
    import psutil

    marker = f"--user-data-dir={user_data}"
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        with contextlib.suppress(psutil.Error):
            if marker in (proc.info["cmdline"] or ()):
                found.append(proc)
    return found


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def describe_process(pid: int | None) -> str:
    if pid is None:
        return "another process"
    cmd: Sequence[str] = process_cmdline(pid)
    name = Path(cmd[0]).name if cmd else "?"
    return f"pid {pid} ({name})"
