"""Files under a root directory, opened without ever following a link out of it.

A caller first decides that a path is allowed (:func:`inside` on real paths,
plus its own rules), then reads or writes it with these functions, which do not
trust that decision to still hold (no check-then-open):

- the path is walked from the root one component at a time with
  ``O_NOFOLLOW | O_DIRECTORY``, so a symlink swapped in after the check is
  refused (``ELOOP``/``ENOTDIR``), never followed;
- the file itself is opened ``O_NOFOLLOW | O_NONBLOCK`` and checked with
  ``fstat``: only a **regular file** is read or replaced (a FIFO, socket or
  device is refused before any read, so nothing ever blocks), and only one with
  a **single hard link** (``st_nlink == 1``): another name of the same inode
  may lie outside the root;
- a write goes to a temp file in the same directory that is renamed over the
  name: a reader sees the old or the new content, and a link at the name is
  replaced, never written through. A rewritten file keeps its permission bits;
  a new file gets exactly :data:`FILE_MODE` and a new directory
  :data:`DIR_MODE`, whatever the umask.

Every refusal is a :class:`PathRefused` whose message names the problem
relative to the root (never the root's absolute path).
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path

from moltbot.errors import UsageError

__all__ = [
    "DIR_MODE",
    "FILE_MODE",
    "PathRefused",
    "describe",
    "ensure_dir",
    "inside",
    "list_dir",
    "make_dirs",
    "read_file",
    "unlink_file",
    "write_file",
]

DIR_MODE = 0o700
FILE_MODE = 0o600
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class PathRefused(UsageError):
    """The path is not a plain file (or directory) reachable inside the root
    (``INVALID_REQUEST``: name another path)."""


def inside(path: Path, root: Path) -> bool:
    """Whether ``path`` is ``root`` or below it (component-wise, never a string prefix)."""
    return path == root or root in path.parents


def describe(mode: int) -> str:
    """What kind of file ``st_mode`` describes, for messages."""
    for test, name in (
        (stat.S_ISREG, "a regular file"),
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISLNK, "a symlink"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def _shown(parts: Sequence[str]) -> str:
    return "/".join(parts) or "."


@contextlib.contextmanager
def _walk(
    root: Path, parts: Sequence[str], *, create: bool = False, dir_mode: int = DIR_MODE
) -> Iterator[int]:
    """A descriptor of the directory ``root/parts``, reached without following links."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for index, part in enumerate(parts):
            if part in ("", ".", "..") or "/" in part or "\x00" in part:
                raise PathRefused(f"{_shown(parts)}: bad path component {part!r}")
            try:
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, dir_mode, dir_fd=fd)
                child = _open_dir(part, fd, parts[: index + 1])
            except OSError as exc:
                raise _refusal(exc, parts[: index + 1], fd, part) from None
            os.close(fd)
            fd = child
        yield fd
    finally:
        os.close(fd)


def _open_dir(part: str, dir_fd: int, shown: Sequence[str]) -> int:
    try:
        return os.open(part, _DIR_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        raise _refusal(exc, shown, dir_fd, part) from None


def _refusal(
    exc: OSError, parts: Sequence[str], dir_fd: int | None = None, name: str | None = None
) -> PathRefused | OSError:
    link = exc.errno in (errno.ELOOP, errno.EMLINK)
    if exc.errno == errno.ENOTDIR and dir_fd is not None and name is not None:
        with contextlib.suppress(OSError):
            link = stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    if link:
        return PathRefused(f"{_shown(parts)}: is a symlink; refused")
    if exc.errno == errno.ENOTDIR:
        return PathRefused(f"{_shown(parts)}: not a directory")
    return exc


def _check_file(info: os.stat_result, parts: Sequence[str]) -> None:
    if not stat.S_ISREG(info.st_mode):
        raise PathRefused(f"{_shown(parts)}: is {describe(info.st_mode)}; only regular files")
    if info.st_nlink > 1:
        raise PathRefused(
            f"{_shown(parts)}: has {info.st_nlink} hard links; refused because another "
            "name of the same file may be outside (copy it instead)"
        )


def read_file(root: Path, parts: Sequence[str], limit: int) -> bytes:
    """Up to ``limit`` bytes of the regular, singly linked file ``root/parts``.

    Raises :class:`PathRefused`, or ``FileNotFoundError`` / ``IsADirectoryError``.
    """
    if not parts:
        raise IsADirectoryError(errno.EISDIR, "is a directory")
    with _walk(root, parts[:-1]) as dir_fd:
        name = parts[-1]
        info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(errno.EISDIR, "is a directory")
        _check_file(info, parts)  # refuse FIFOs and devices before opening them at all
        try:
            fd = os.open(name, _READ_FLAGS, dir_fd=dir_fd)
        except OSError as exc:
            raise _refusal(exc, parts, dir_fd, name) from None
        try:
            _check_file(os.fstat(fd), parts)  # what was opened, not what was looked at
            os.set_blocking(fd, True)
            chunks: list[bytes] = []
            left = limit
            while left > 0:
                chunk = os.read(fd, min(left, 1 << 20))
                if not chunk:
                    break
                chunks.append(chunk)
                left -= len(chunk)
            return b"".join(chunks)
        finally:
            os.close(fd)


def list_dir(root: Path, parts: Sequence[str]) -> list[tuple[str, bool]]:
    """``(name, is_dir)`` of the entries of the directory ``root/parts``, sorted."""
    with _walk(root, parts) as dir_fd:
        out = []
        for entry in os.scandir(dir_fd):
            out.append((entry.name, entry.is_dir(follow_symlinks=False)))
        return sorted(out)


def ensure_dir(path: Path, mode: int = DIR_MODE) -> None:
    """``mkdir -p`` that gives every directory it creates ``mode`` (less the umask), parents
    included (``Path.mkdir(parents=True)`` creates parents with the umask's defaults)."""
    missing: list[Path] = []
    current = path
    while not current.exists() and current != current.parent:
        missing.append(current)
        current = current.parent
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):
            os.mkdir(directory, mode)


def make_dirs(root: Path, parts: Sequence[str], *, mode: int = DIR_MODE) -> None:
    """Create the directories ``root/parts`` that are missing (``mode`` less the umask)."""
    with _walk(root, parts, create=True, dir_mode=mode):
        pass


def write_file(
    root: Path,
    parts: Sequence[str],
    data: bytes,
    *,
    mode: int = FILE_MODE,
    dir_mode: int = DIR_MODE,
    create_dirs: bool = True,
) -> None:
    """Replace (or create) the file ``root/parts`` with ``data`` in one rename.

    Missing parent directories are created (``dir_mode``) when ``create_dirs``.
    An existing name must be a regular file with one hard link; it keeps its
    permission bits, a new file gets exactly ``mode``.
    """
    if not parts:
        raise PathRefused("a file name is required")
    with _walk(root, parts[:-1], create=create_dirs, dir_mode=dir_mode) as dir_fd:
        name = parts[-1]
        try:
            info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            keep = mode
        else:
            if stat.S_ISDIR(info.st_mode):
                raise IsADirectoryError(errno.EISDIR, "is a directory")
            _check_file(info, parts)
            keep = stat.S_IMODE(info.st_mode)
        tmp = f".{name[:100]}.{secrets.token_hex(6)}.tmp"
        fd = os.open(
            tmp,
            os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
            0o600,
            dir_fd=dir_fd,
        )
        try:
            try:
                os.fchmod(fd, keep)
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
            finally:
                os.close(fd)
            os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=dir_fd)
            raise


def unlink_file(root: Path, parts: Sequence[str]) -> bool:
    """Delete the file (or symlink) ``root/parts``; False when it did not exist."""
    if not parts:
        raise PathRefused("a file name is required")
    try:
        with _walk(root, parts[:-1]) as dir_fd:
            try:
                info = os.stat(parts[-1], dir_fd=dir_fd, follow_symlinks=False)
            except FileNotFoundError:
                return False
            if stat.S_ISDIR(info.st_mode):
                raise PathRefused(f"{_shown(parts)}: is a directory")
            os.unlink(parts[-1], dir_fd=dir_fd)
            return True
    except FileNotFoundError:
        return False
