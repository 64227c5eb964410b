"""Installing skills: copying or downloading a skill folder into the managed dir, and
fetching a skill's ``download`` installer. Nothing runs at install time.

A skill folder comes from a local directory on the gateway's host (copied) or an
``http(s)`` URL of a ``.tar.gz``/``.tgz``/``.tar``/``.zip`` archive (downloaded). Its
``SKILL.md`` may sit at the top or in the archive's single top folder. Only regular
files and folders are taken: links, devices, absolute paths and ``..`` are refused, as
are more than :data:`MAX_FILES` files or :data:`MAX_BYTES` bytes. Files are written
0600 (no execute bit) in folders 0700; the new folder replaces an installed one of the
same name atomically, the old one moved to ``<managed>/.trash/<name>-<ms>``.
"""

from __future__ import annotations

import io
import os
import shutil
import stat
import tarfile
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from moltbot.agents.skills import NAME, SKILL_FILE, parse_skill
from moltbot.errors import MoltbotError, NotFoundError, UsageError

MAX_FILES = 2000
MAX_BYTES = 50 * 1024 * 1024


class SkillInstallError(UsageError):
    """The source cannot be installed (bad archive, unsafe entry, no SKILL.md)."""


@dataclass(frozen=True)
class Installed:
    name: str
    path: Path
    files: int
    replaced: bool


async def fetch(url: str, timeout: float, limit: int = MAX_BYTES) -> bytes:
    """The body of ``url`` (at most ``limit`` bytes; 4xx/5xx and network failures raise)."""
    import aiohttp

    if not url.startswith(("http://", "https://")):
        raise SkillInstallError(f"not an http(s) URL: {url}")
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session,
            session.get(url) as response,
        ):
            if response.status >= 400:
                raise MoltbotError(f"download of {url} failed: HTTP {response.status}")
            chunks, size = [], 0
            async for chunk in response.content.iter_chunked(65536):
                size += len(chunk)
                if size > limit:
                    raise SkillInstallError(f"{url} is larger than {limit} bytes")
                chunks.append(chunk)
            return b"".join(chunks)
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise MoltbotError(f"download of {url} failed: {exc or type(exc).__name__}") from None


def unpack(data: bytes, target: Path, *, keep_exec: bool = False, strip: int = 0) -> int:
    """Extract a tar or zip archive held in ``data`` into the empty folder ``target``;
    the number of files written. Raises :class:`SkillInstallError` for an unsafe entry."""
    buffer = io.BytesIO(data)
    entries: list[tuple[PurePosixPath, bytes | None, bool]] = []  # path, data (None: dir), exec
    if zipfile.is_zipfile(buffer):
        with zipfile.ZipFile(buffer) as archive:
            for info in archive.infolist():
                mode = info.external_attr >> 16
                if mode and (stat.S_ISLNK(mode) or not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))):
                    raise SkillInstallError(f"{info.filename}: links and devices are refused")
                path = _safe(info.filename)
                if info.is_dir():
                    entries.append((path, None, False))
                else:
                    entries.append((path, archive.read(info), bool(mode & 0o100)))
    else:
        buffer.seek(0)
        try:
            archive = tarfile.open(fileobj=buffer, mode="r:*")
        except tarfile.TarError:
            raise SkillInstallError("not a tar or zip archive") from None
        with archive:
            for member in archive.getmembers():
                path = _safe(member.name)
                if member.isdir():
                    entries.append((path, None, False))
                elif member.isfile():
                    handle = archive.extractfile(member)
                    assert handle is not None
                    entries.append((path, handle.read(), bool(member.mode & 0o100)))
                else:
                    raise SkillInstallError(f"{member.name}: links and devices are refused")
    return _write(entries, target, keep_exec=keep_exec, strip=strip)


def copy_tree(source: Path, target: Path) -> int:
    """Copy the folder ``source`` (regular files and folders only) into ``target``."""
    if not source.is_dir() or source.is_symlink():
        raise NotFoundError(f"{source} is not a folder")
    entries: list[tuple[PurePosixPath, bytes | None, bool]] = []
    total = 0
    for root, dirs, files in os.walk(source, followlinks=False):
        base = Path(root)
        for name in sorted(dirs):
            path = base / name
            if path.is_symlink():
                raise SkillInstallError(f"{path}: links are refused")
            entries.append((PurePosixPath(path.relative_to(source).as_posix()), None, False))
        for name in sorted(files):
            path = base / name
            info = path.lstat()
            if not stat.S_ISREG(info.st_mode) or info.st_nlink > 1:
                raise SkillInstallError(f"{path}: only regular files with one link are copied")
            total += info.st_size
            if total > MAX_BYTES:  # checked before reading: a wrong folder fails fast
                raise SkillInstallError(f"{source} holds more than {MAX_BYTES} bytes")
            entries.append(
                (PurePosixPath(path.relative_to(source).as_posix()), path.read_bytes(), False)
            )
            if len(entries) > MAX_FILES:
                raise SkillInstallError(f"more than {MAX_FILES} files")
    return _write(entries, target, keep_exec=False, strip=0)


def _safe(name: str) -> PurePosixPath:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or not name.strip("/."):
        raise SkillInstallError(f"{name}: absolute paths and '..' are refused")
    return PurePosixPath(*[p for p in path.parts if p not in ("", ".")])


def _write(
    entries: list[tuple[PurePosixPath, bytes | None, bool]],
    target: Path,
    *,
    keep_exec: bool,
    strip: int,
) -> int:
    files, total = 0, 0
    for path, data, executable in entries:
        parts = path.parts[strip:]
        if not parts:
            continue
        destination = target.joinpath(*parts)
        if data is None:
            destination.mkdir(parents=True, exist_ok=True, mode=0o700)
            continue
        files += 1
        total += len(data)
        if files > MAX_FILES or total > MAX_BYTES:
            raise SkillInstallError(f"more than {MAX_FILES} files or {MAX_BYTES} bytes")
        destination.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        mode = 0o700 if keep_exec and executable else 0o600
        fd = os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
    return files


def skill_root(folder: Path) -> Path:
    """Where ``SKILL.md`` is: ``folder`` itself or its single subfolder."""
    if (folder / SKILL_FILE).is_file():
        return folder
    children = [c for c in folder.iterdir() if c.is_dir()]
    if len(children) == 1 and (children[0] / SKILL_FILE).is_file():
        return children[0]
    raise SkillInstallError(f"no {SKILL_FILE} at the top of the skill folder")


async def install_folder(managed: Path, name: str, source: str, timeout: float) -> Installed:
    """Install the skill at ``source`` (a folder path or an archive URL) as ``name``."""
    import asyncio

    if not NAME.match(name):
        raise UsageError(f"invalid skill name {name!r} (a-z, 0-9, '.', '_', '-')")
    managed.mkdir(parents=True, exist_ok=True, mode=0o700)
    data = await fetch(source, timeout) if "://" in source else None
    staging = Path(tempfile.mkdtemp(prefix=".incoming-", dir=managed))
    try:
        if data is not None:
            files = await asyncio.to_thread(unpack, data, staging)
        else:
            files = await asyncio.to_thread(copy_tree, Path(source).expanduser(), staging)
        root = skill_root(staging)
        if parse_skill(root / SKILL_FILE, "managed") is None:
            raise SkillInstallError(f"{SKILL_FILE} needs frontmatter with a name and description")
        target = managed / name
        replaced = target.exists()
        if replaced:
            trash = managed / ".trash"
            trash.mkdir(exist_ok=True, mode=0o700)
            target.rename(trash / f"{name}-{int(time.time() * 1000)}")
        root.rename(target)
        return Installed(name, target, files, replaced)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


async def run_download(
    tools_dir: Path, skill_key: str, spec: dict[str, object], timeout: float
) -> tuple[Path, int]:
    """A skill's ``download`` installer: fetch ``url`` and unpack it (``stripComponents``)
    into ``<tools>/<skillKey>/`` (replacing what was there); nothing is run."""
    import asyncio

    url = str(spec.get("url") or "")
    data = await fetch(url, timeout)
    target = tools_dir / skill_key
    tools_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    staging = Path(tempfile.mkdtemp(prefix=".incoming-", dir=tools_dir))
    try:
        strip = int(spec.get("stripComponents") or 0)  # type: ignore[call-overload]
        files = await asyncio.to_thread(unpack, data, staging, keep_exec=True, strip=strip)
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
        return target, files
    finally:
        shutil.rmtree(staging, ignore_errors=True)
