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


MAX_WRITE_BYTES = 5 * 1024 * 1024


def _safe_parent(root: Path, segments: list[str], *, create: bool) -> Path:
    """The directory for ``segments[:-1]`` under ``root``, refusing symlinks on the way."""
    current = Path(os.path.realpath(root))
    for segment in segments[:-1]:
        current = current / segment
        try:
            info = os.lstat(current)
        except FileNotFoundError:
            if not create:
                raise
            os.mkdir(current, 0o755)
            continue
        if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
            raise Refused(f"{segment!r} is not a plain directory")
    return current


def write(root: Path, rel: str, data: bytes) -> Path:
    """Write ``data`` to ``rel`` inside ``root`` (parents created, symlinks refused)."""
    segments = split_path(rel)
    if not segments:
        raise Refused("a file name is required")
    if len(data) > MAX_WRITE_BYTES:
        raise Refused(f"file too large ({len(data)} bytes, at most {MAX_WRITE_BYTES})")
    root.mkdir(parents=True, exist_ok=True)
    parent = _safe_parent(root, segments, create=True)
    target = parent / segments[-1]
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(target, flags, 0o644)
    except OSError as exc:
        raise Refused(f"cannot write {rel}: {exc.strerror}") from None
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    return target


def delete(root: Path, rel: str) -> bool:
    """Delete the file ``rel`` inside ``root``; False when it did not exist."""
    segments = split_path(rel)
    if not segments:
        raise Refused("a file name is required")
    try:
        parent = _safe_parent(root, segments, create=False)
    except FileNotFoundError:
        return False
    target = parent / segments[-1]
    try:
        info = os.lstat(target)
    except FileNotFoundError:
        return False
    if not (stat.S_ISREG(info.st_mode) or stat.S_ISLNK(info.st_mode)):
        raise Refused(f"{rel} is not a file")
    os.unlink(target)
    return True


def listing(root: Path, limit: int = 500) -> list[dict[str, object]]:
    """Files under ``root`` (no dot-files, symlinks not followed), as ``{path, size}``."""
    out: list[dict[str, object]] = []
    base = Path(os.path.realpath(root))
    if not base.is_dir():
        return out
    for directory, dirs, names in os.walk(base):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "node_modules")
        for name in sorted(names):
            if name.startswith("."):
                continue
            path = Path(directory) / name
            info = os.lstat(path)
            if stat.S_ISREG(info.st_mode):
                out.append({"path": path.relative_to(base).as_posix(), "size": info.st_size})
                if len(out) >= limit:
                    return out
    return out
