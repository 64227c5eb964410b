"""Config history: the versions of a config file that writers replaced, with who
replaced them, and the config a gateway last started with ("last good").

Every write through :mod:`moltbot.config.store` (``setup``, ``onboard``, ``config
set/unset``, ``doctor --fix``, the protocol's ``config.*``, rescue) calls
:func:`record` under the config's write lock before the file is replaced, so the text
it replaces is kept. A gateway calls :func:`record_last_good` once it runs with a
config. Layout, under the instance's state dir (:func:`history_dir`)::

    config-history/index.jsonl        one line per kept version, oldest first
    config-history/writes.jsonl       every write: the hash it wrote and who wrote it
    config-history/v000017.json5      the text of version 17, byte for byte
    config-history/last-good.json     {hash, at, pid, configPath} of the last good config
    config-history/last-good.json5    its text

Files are 0600, the directory 0700. At most :data:`MAX_VERSIONS` versions and
:data:`MAX_BYTES` of text are kept; the oldest go first. A writer killed mid-way
leaves at worst a version file the index does not name (swept on the next record) or a
torn last index line (skipped when read). Failing to keep history never blocks a write:
:func:`record` raises ``OSError`` and the store logs it.

Who wrote a version: the writer passes ``author``; otherwise :data:`WRITER` (a context
variable a front-end may set), otherwise the command line's first words (``moltbot
config set``), never its arguments (they may hold secrets).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import time
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from moltbot.fsutil import locked, open_regular, write_atomic

DIR_NAME = "config-history"
INDEX = "index.jsonl"
WRITES = "writes.jsonl"
MAX_WRITES = 500
LAST_GOOD = "last-good.json"
LAST_GOOD_TEXT = "last-good.json5"
MAX_VERSIONS = 50
MAX_BYTES = 16 * 1024 * 1024
LOCK_TIMEOUT_S = 10.0
HAND_EDIT = "an edit outside moltbot"

WRITER: ContextVar[str | None] = ContextVar("moltbot_config_writer", default=None)
"""Who is writing the config now (e.g. ``rescue (telegram:4242)``), when the caller of
the store cannot pass ``author`` itself."""


@dataclass(frozen=True)
class Version:
    """One kept version: the text ``hash`` that ``replaced_by`` replaced at ``saved_at``
    (with the text ``new_hash``); ``written_by`` wrote it, as far as is known."""

    id: int
    config_path: str
    hash: str
    bytes: int
    saved_at: float
    replaced_by: str
    written_by: str
    new_hash: str
    file: str

    def wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "configPath": self.config_path,
            "hash": self.hash,
            "bytes": self.bytes,
            "savedAt": int(self.saved_at * 1000),
            "replacedBy": self.replaced_by,
            "writtenBy": self.written_by,
            "newHash": self.new_hash,
        }


@dataclass(frozen=True)
class LastGood:
    """The config a gateway last ran with: its hash, when, which process, its text."""

    hash: str
    at: float
    pid: int
    config_path: str
    text: str


def history_dir(config_path: Path, env: Mapping[str, str] | None = None) -> Path:
    """Where the history of ``config_path`` lives: ``<state>/config-history`` of the
    instance that owns the file. That is the file's own directory for a config in its
    state dir (``moltbot.json``, or one its ``instance.json`` names); else the state
    dir whose ``instance.json`` names it (the seed's manual form,
    ``~/.clawdbot/main.json`` of ``~/.clawdbot-main``); else the file's directory
    (entries record their config path, so files sharing it never mix)."""
    from moltbot.instance.resolve import CONFIG_NAME, LEGACY_CONFIG_NAME, recorded_config_path

    path = config_path.resolve()
    parent = path.parent
    recorded = recorded_config_path(parent)
    if (recorded is not None and recorded.resolve() == path) or (
        recorded is None and path.name in (CONFIG_NAME, LEGACY_CONFIG_NAME)
    ):
        return parent / DIR_NAME
    home = Path((env or os.environ).get("HOME") or Path.home())
    for pattern in (".clawdbot*", ".moltbot*"):
        for state_dir in sorted(home.glob(pattern)):
            named = recorded_config_path(state_dir) if state_dir.is_dir() else None
            if named is not None and named.resolve() == path:
                return state_dir / DIR_NAME
    return parent / DIR_NAME


def current_writer(author: str | None = None) -> str:
    """``author``, else :data:`WRITER`, else the command (``moltbot config set``)."""
    return author or WRITER.get() or command_label(sys.argv[1:])


_WORD = re.compile(r"[a-z][a-z-]{0,31}")


def command_label(argv: list[str]) -> str:
    """``moltbot`` and at most two command words of ``argv`` (``--profile P`` and other
    options skipped; the first word that is not a plain command word ends it)."""
    words: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg in ("--profile",):
            skip = True
            continue
        if arg.startswith("-"):
            continue
        if not _WORD.fullmatch(arg) or len(words) == 2:
            break
        words.append(arg)
    return " ".join(["moltbot", *words])


def record(
    config_path: Path,
    previous: str | bytes,
    new_hash: str,
    author: str,
    env: Mapping[str, str] | None = None,
) -> Version | None:
    """Note that ``author`` writes the text hashed ``new_hash`` to ``config_path``, and
    keep ``previous`` (the text it replaces) as the newest version; prune the oldest.
    Returns the kept version (``None`` when there was nothing to keep: no previous
    text, or the same text). Raises ``OSError``."""
    import hashlib

    directory = history_dir(config_path, env)
    path = str(config_path.resolve())
    if isinstance(previous, str):
        previous = previous.encode()
    with _lock(directory):
        writes = _read_writes(directory)
        version = None
        old_hash = hashlib.sha256(previous).hexdigest() if previous else ""
        if previous and old_hash != new_hash:
            versions = _read_index(directory)
            number = max((v.id for v in versions), default=0) + 1
            name = f"v{number:06d}.json5"
            write_atomic(directory / name, previous, mode=0o600)
            version = Version(
                id=number,
                config_path=path,
                hash=old_hash,
                bytes=len(previous),
                saved_at=time.time(),
                replaced_by=author,
                written_by=_author_of(directory, writes, path, old_hash),
                new_hash=new_hash,
                file=name,
            )
            versions.append(version)
            _write_index(directory, _prune(directory, versions))
        writes.append({"configPath": path, "hash": new_hash, "author": author, "at": time.time()})
        if len(writes) > 2 * MAX_WRITES:
            _write_writes(directory, writes[-MAX_WRITES:])
        else:
            _append_write(directory, writes)
        return version


def versions(config_path: Path, env: Mapping[str, str] | None = None) -> list[Version]:
    """The kept versions of ``config_path``, newest first (history number 1 = ``[0]``)."""
    directory = history_dir(config_path, env)
    wanted = str(config_path.resolve())
    return [v for v in reversed(_read_index(directory)) if v.config_path == wanted]


def read_version(config_path: Path, version: Version, env: Mapping[str, str] | None = None) -> str:
    """The text of ``version`` (``OSError`` when it was pruned meanwhile; bytes that are
    not UTF-8, as a hand edit may leave, are replaced)."""
    data = _read_regular(history_dir(config_path, env) / version.file)
    return data.decode("utf-8", errors="replace")


def author_of(config_path: Path, text_hash: str, env: Mapping[str, str] | None = None) -> str:
    """Who wrote the text hashed ``text_hash`` of ``config_path``, as far as the history
    knows (:data:`HAND_EDIT` when no moltbot writer produced it)."""
    directory = history_dir(config_path, env)
    return _author_of(directory, _read_writes(directory), str(config_path.resolve()), text_hash)


def record_last_good(
    state_dir: Path, config_path: Path, text: str, text_hash: str, *, pid: int | None = None
) -> bool:
    """Remember ``text`` as the config the gateway of ``state_dir`` runs with; ``False``
    when it was already the one recorded. Raises ``OSError``."""
    directory = state_dir / DIR_NAME
    current = _read_last_good_record(directory)
    path = str(config_path.resolve())
    if current and current.get("hash") == text_hash and current.get("configPath") == path:
        return False
    with _lock(directory):
        write_atomic(directory / LAST_GOOD_TEXT, text, mode=0o600)
        record = {
            "hash": text_hash,
            "at": time.time(),
            "pid": pid or os.getpid(),
            "configPath": path,
        }
        write_atomic(directory / LAST_GOOD, json.dumps(record) + "\n", mode=0o600)
    return True


def last_good(state_dir: Path, config_path: Path) -> LastGood | None:
    """The config the gateway of ``state_dir`` last ran with (``None``: never, or for
    another config file, or unreadable)."""
    from moltbot.config.store import content_hash

    directory = state_dir / DIR_NAME
    record = _read_last_good_record(directory)
    if not record or record.get("configPath") != str(config_path.resolve()):
        return None
    try:
        text = _read_regular(directory / LAST_GOOD_TEXT).decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    if content_hash(text) != record.get("hash"):
        return None  # torn by a crash between the two writes: not trustworthy
    return LastGood(
        hash=str(record["hash"]),
        at=float(record.get("at") or 0),
        pid=int(record.get("pid") or 0),
        config_path=str(record["configPath"]),
        text=text,
    )


# -- internals ----------------------------------------------------------------------


@contextlib.contextmanager
def _lock(directory: Path) -> Any:
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    with locked(directory / ".lock", LOCK_TIMEOUT_S):
        yield


def _read_regular(path: Path) -> bytes:
    """The bytes of ``path`` if it is a regular file (``OSError`` otherwise: a FIFO or a
    device in its place must never block or feed a reader)."""
    with os.fdopen(open_regular(path), "rb") as handle:
        return handle.read()


def _read_last_good_record(directory: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(_read_regular(directory / LAST_GOOD))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("hash"), str) else None


def _read_index(directory: Path) -> list[Version]:
    try:
        lines = _read_regular(directory / INDEX).decode("utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return []
    found: list[Version] = []
    for line in lines:
        try:
            found.append(Version(**json.loads(line)))
        except (ValueError, TypeError):
            continue  # a torn last line (a writer killed mid-append)
    return found


def _write_index(directory: Path, versions: list[Version]) -> None:
    text = "".join(json.dumps(asdict(v), ensure_ascii=False) + "\n" for v in versions)
    write_atomic(directory / INDEX, text, mode=0o600)


def _prune(directory: Path, versions: list[Version]) -> list[Version]:
    kept = list(versions)
    while len(kept) > MAX_VERSIONS or (sum(v.bytes for v in kept) > MAX_BYTES and len(kept) > 1):
        kept.pop(0)
    names = {v.file for v in kept}
    for path in directory.glob("v*.json5"):
        if path.name not in names:
            with contextlib.suppress(OSError):
                path.unlink()
    return kept


def _read_writes(directory: Path) -> list[dict[str, Any]]:
    try:
        lines = _read_regular(directory / WRITES).decode("utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return []
    found = []
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # a torn last line
        if isinstance(entry, dict):
            found.append(entry)
    return found


def _append_write(directory: Path, writes: list[dict[str, Any]]) -> None:
    """Append the last of ``writes`` to the file; anything but a regular file there (a
    FIFO, say) is replaced by a fresh file holding ``writes``."""
    line = (json.dumps(writes[-1], ensure_ascii=False) + "\n").encode()
    try:
        fd = open_regular(directory / WRITES, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    except OSError:
        _write_writes(directory, writes)
        return
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def _write_writes(directory: Path, writes: list[dict[str, Any]]) -> None:
    text = "".join(json.dumps(w, ensure_ascii=False) + "\n" for w in writes)
    write_atomic(directory / WRITES, text, mode=0o600)


def _author_of(
    directory: Path, writes: list[dict[str, Any]], config_path: str, text_hash: str
) -> str:
    for entry in reversed(writes):
        if entry.get("configPath") == config_path and entry.get("hash") == text_hash:
            return str(entry.get("author") or "moltbot")
    record = _read_last_good_record(directory)
    if record and record.get("hash") == text_hash and record.get("configPath") == config_path:
        return f"{HAND_EDIT} (a gateway ran with it)"
    return HAND_EDIT


__all__ = [
    "WRITER",
    "LastGood",
    "Version",
    "author_of",
    "current_writer",
    "history_dir",
    "last_good",
    "read_version",
    "record",
    "record_last_good",
    "versions",
]
