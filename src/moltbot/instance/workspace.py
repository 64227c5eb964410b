"""Workspaces: the folder an agent works in, seeded with the bootstrap files it
reads at the start of a session (``setup`` creates it with the instance; the agents
runtime seeds the workspace of an agent added later). It lives in the instance
layer because ``setup`` needs it and nothing here knows about agents at run time.

Everything created here is private whatever the umask: directories 0700,
files 0600 (:mod:`moltbot.safepath`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from moltbot.safepath import DIR_MODE, FILE_MODE, ensure_dir

BOOTSTRAP_FILES = ("AGENTS.md", "SOUL.md", "TOOLS.md", "IDENTITY.md", "USER.md", "HEARTBEAT.md")
FIRST_RUN_FILE = "BOOTSTRAP.md"


@dataclass
class WorkspaceReport:
    path: Path
    created: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)


def template(name: str) -> str:
    path = resources.files("moltbot.instance").joinpath("templates", name)
    return path.read_text(encoding="utf-8")


def ensure_workspace(path: Path) -> WorkspaceReport:
    """Create the workspace and any missing bootstrap file; never overwrite.

    BOOTSTRAP.md (the first-run ritual) is written only into a brand-new
    workspace, so deleting it after the first run sticks.
    """
    report = WorkspaceReport(path)
    brand_new = not any((path / name).exists() for name in BOOTSTRAP_FILES)
    ensure_dir(path)
    names = [*BOOTSTRAP_FILES, FIRST_RUN_FILE] if brand_new else list(BOOTSTRAP_FILES)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    for name in names:
        try:
            fd = os.open(path / name, flags, FILE_MODE)
        except FileExistsError:
            report.kept.append(name)
            continue
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(template(name))
        report.created.append(name)
    canvas = path / "canvas"
    if canvas.is_dir():
        report.kept.append("canvas/")
    else:
        ensure_dir(canvas, DIR_MODE)
        report.created.append("canvas/")
    return report


def seed_workspace(path: Path, *, skip_bootstrap: bool) -> WorkspaceReport | None:
    """Create a workspace that does not exist yet, with the bootstrap files unless
    ``skip_bootstrap``; the report when it wrote them. An existing one is left as it is."""
    if path.exists():
        return None
    if skip_bootstrap:
        ensure_dir(path)
        return None
    return ensure_workspace(path)
