"""Resolving a URL path to a file inside the canvas root, refusing every escape.

Refused: ``..`` segments (also percent-encoded), backslashes, NUL bytes, any
symlink on the way (even one pointing inside the root), anything whose real
path is outside the root, and files that are not regular or have more than one
hard link (another name may be outside the root). Reads and writes go through
:mod:`moltbot.safepath`: walked from the root without following links, opened
non-blocking, re-checked with ``fstat``, written by rename; new files get mode
0600 and new directories 0700 whatever the umask.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from moltbot import safepath
from moltbot.safepath import PathRefused

Refused = PathRefused
"""The path tries to leave the root or names no plain file (answer 403)."""


@dataclass(frozen=True)
class Found:
    path: Path
    size: int
    mtime: float
    root: Path
    parts: tuple[str, ...]


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
    segments = split_path(raw)
    for segment in segments:
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
        segments.append("index.html")
        try:
            info = os.lstat(current)
        except FileNotFoundError:
            return None
        if stat.S_ISLNK(info.st_mode):
            raise Refused("refused symlink index.html")
    if not stat.S_ISREG(info.st_mode):
        return None
    if info.st_nlink > 1:
        raise Refused(f"refused {segments[-1]!r}: it has {info.st_nlink} hard links")
    real = Path(os.path.realpath(current))
    if not safepath.inside(real, real_root):
        raise Refused("path leaves the canvas root")
    return Found(current, info.st_size, info.st_mtime, real_root, tuple(segments))


MAX_READ_BYTES = 64 * 1024 * 1024


def read(found: Found) -> bytes:
    """Read a resolved file; a link, FIFO or hard link swapped in meanwhile is refused."""
    return safepath.read_file(found.root, found.parts, MAX_READ_BYTES)


MAX_WRITE_BYTES = 5 * 1024 * 1024


def write(root: Path, rel: str, data: bytes) -> Path:
    """Write ``data`` to ``rel`` inside ``root`` (parents created, links refused)."""
    segments = split_path(rel)
    if not segments:
        raise Refused("a file name is required")
    if len(data) > MAX_WRITE_BYTES:
        raise Refused(f"file too large ({len(data)} bytes, at most {MAX_WRITE_BYTES})")
    safepath.ensure_dir(root)
    real_root = Path(os.path.realpath(root))
    try:
        safepath.write_file(real_root, segments, data)
    except IsADirectoryError:
        raise Refused(f"{rel} is a directory") from None
    except OSError as exc:
        raise Refused(f"cannot write {rel}: {exc.strerror}") from None
    return real_root.joinpath(*segments)


def delete(root: Path, rel: str) -> bool:
    """Delete the file ``rel`` inside ``root``; False when it did not exist."""
    segments = split_path(rel)
    if not segments:
        raise Refused("a file name is required")
    return safepath.unlink_file(Path(os.path.realpath(root)), segments)


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
