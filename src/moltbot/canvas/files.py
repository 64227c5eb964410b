"""Resolving a URL path to a file inside the canvas root, refusing every escape.

Refused: ``..`` segments (also percent-encoded), backslashes, NUL bytes, any
symlink on the way (even one pointing inside the root), and anything whose real
path is outside the root. Files are opened with ``O_NOFOLLOW`` so a symlink
swapped in after the checks is still refused.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote


class Refused(Exception):
    """The path tries to leave the root (answer 403)."""


@dataclass(frozen=True)
class Found:
    path: Path
    size: int
    mtime: float


def split_path(raw: str) -> list[str]:
    """Decoded path segments of ``raw`` (an encoded URL path relative to the mount)."""
    segments = []
    for part in raw.split("/"):
        text = unquote(part, errors="strict")
        if text in ("", "."):
            continue
        if text == ".." or "/" in text or "\\" in text or "\x00" in text:
            raise Refused(f"refused path segment {part!r}")
        segments.append(text)
    return segments


def resolve(root: Path, raw: str) -> Found | None:
    """The file a request path names (a directory means its ``index.html``), or ``None``.

    Raises :class:`Refused` for anything that would leave ``root``.
    """
    real_root = Path(os.path.realpath(root))
    current = real_root
    for segment in split_path(raw):
        current = current / segment
        try:
            info = os.lstat(current)
        except FileNotFoundError:
            return None
        except NotADirectoryError:
            return None
        if stat.S_ISLNK(info.st_mode):
            raise Refused(f"refused symlink {segment!r}")
    try:
        info = os.lstat(current)
    except FileNotFoundError:
        return None
    if stat.S_ISDIR(info.st_mode):
        current = current / "index.html"
        try:
            info = os.lstat(current)
        except FileNotFoundError:
            return None
        if stat.S_ISLNK(info.st_mode):
            raise Refused("refused symlink index.html")
    if not stat.S_ISREG(info.st_mode):
        return None
    real = os.path.realpath(current)
    if os.path.commonpath([real, str(real_root)]) != str(real_root):
        raise Refused("path leaves the canvas root")
    return Found(current, info.st_size, info.st_mtime)


def read(found: Found) -> bytes:
    """Read a resolved file without following a symlink swapped in meanwhile."""
    fd = os.open(found.path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    try:
        with os.fdopen(fd, "rb", closefd=False) as handle:
            return handle.read()
    finally:
        os.close(fd)
