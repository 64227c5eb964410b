"""An OS-level sandbox for ``exec``: bubblewrap (``bwrap``), when available.

``tools.exec.sandbox.mode``:

- ``auto`` (default): every command ``exec`` runs goes through ``bwrap`` when
  it is installed and works here (user namespaces allowed); otherwise commands
  run unsandboxed and the gateway logs that once;
- ``bwrap``: required; ``exec`` refuses to run anything without it;
- ``off``: never.

Inside the sandbox the whole file system is read-only, the workspace is
mounted read-write, ``/tmp`` is a fresh empty tmpfs, ``/dev`` and ``/proc``
are minimal, every protected place (state dirs, config files, other
instances' workspaces: :mod:`.confine`) is hidden behind an empty tmpfs (a
file behind ``/dev/null``), all capabilities are dropped, and the command has
its own PID, IPC, UTS (host name ``moltbot-sandbox``) and — unless
``tools.exec.sandbox.network`` is true — network namespace (no network at
all). It dies with the gateway.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path

from moltbot.agents.tools.base import ToolError
from moltbot.safepath import inside

log = logging.getLogger(__name__)
HOSTNAME = "moltbot-sandbox"
"""The host name commands see inside the sandbox (its own UTS namespace)."""
_probed: dict[str, str | None] = {}
_warned = False


def find_bwrap(path: str) -> str | None:
    """``bwrap`` on the gateway's PATH."""
    return shutil.which("bwrap", path=path)


def problem(bwrap: str) -> str | None:
    """Why ``bwrap`` cannot sandbox here (probed once per binary), or None."""
    if bwrap not in _probed:
        try:
            done = subprocess.run(
                [
                    bwrap,
                    "--ro-bind",
                    "/",
                    "/",
                    "--unshare-all",
                    "--cap-drop",
                    "ALL",
                    "--die-with-parent",
                    "--",
                    "true",
                ],
                capture_output=True,
                timeout=10,
                check=False,
            )
            _probed[bwrap] = (
                None
                if done.returncode == 0
                else (done.stderr.decode(errors="replace").strip() or f"exit {done.returncode}")
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            _probed[bwrap] = str(exc)
    return _probed[bwrap]


def active(mode: str, search_path: str) -> bool:
    """Whether :func:`command` will sandbox (probes ``bwrap`` once: call off the loop)."""
    if mode == "off":
        return False
    bwrap = find_bwrap(search_path)
    return bwrap is not None and problem(bwrap) is None


def command(
    argv: list[str],
    *,
    mode: str,
    search_path: str,
    workspace: Path,
    cwd: Path,
    hidden: Iterable[Path],
    network: bool,
) -> list[str]:
    """``argv`` wrapped in ``bwrap`` as ``mode`` says (unchanged when it does not apply).

    Raises :class:`ToolError` when ``mode`` is ``bwrap`` and it cannot be used.
    """
    global _warned
    if mode == "off":
        return argv
    bwrap = find_bwrap(search_path)
    why = "bwrap is not installed (Debian: apt install bubblewrap)" if bwrap is None else None
    if bwrap is not None:
        why = problem(bwrap)
    if why is not None:
        if mode == "bwrap":
            raise ToolError(f"exec needs its sandbox (tools.exec.sandbox.mode=bwrap): {why}")
        if not _warned:
            _warned = True
            log.warning("exec runs without an OS sandbox: %s", why)
        return argv
    assert bwrap is not None
    return [
        bwrap,
        *arguments(workspace=workspace, cwd=cwd, hidden=hidden, network=network),
        "--",
        *argv,
    ]


def arguments(*, workspace: Path, cwd: Path, hidden: Iterable[Path], network: bool) -> list[str]:
    """bwrap's options: mounts applied parents first, so a hidden place inside the
    workspace stays hidden and a workspace inside a hidden place stays visible."""
    mounts: list[tuple[Path, list[str]]] = [
        (Path("/tmp"), ["--tmpfs", "/tmp"]),
        (workspace, ["--bind", str(workspace), str(workspace)]),
    ]
    hidden = [p for p in hidden if not inside(workspace, p)]  # it would hide the workspace
    for path in hidden:
        if any(other != path and inside(path, other) for other in hidden):
            continue  # already hidden with its parent
        if path.is_dir():
            mounts.append((path, ["--tmpfs", str(path)]))
        elif path.exists():
            mounts.append((path, ["--ro-bind", "/dev/null", str(path)]))
    mounts.sort(key=lambda item: len(item[0].parts))
    out = ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    for _path, options in mounts:
        out += options
    out += ["--unshare-all", "--hostname", HOSTNAME, "--cap-drop", "ALL"]
    out += ["--die-with-parent", "--new-session"]
    if network:
        out.append("--share-net")
    out += ["--chdir", str(cwd)]
    return out
