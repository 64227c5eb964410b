"""The cron store: ``<state>/cron/jobs.json`` (``cron.store`` overrides the path).

``{"version": 1, "jobs": [CronJob, ...]}``, upstream's layout. Saves are atomic
(temp file, fsync, rename) under an OS lock (``jobs.json.lock``), and the
previous version is kept as ``jobs.json.bak`` first, so a crash at any moment
leaves the old store or the new one, and a bad hand edit can be undone.

Loading is forgiving and loses nothing:

- plain JSON is read fast; a hand-edited file may be JSON5 (comments, trailing
  commas);
- an unreadable store (not JSON, not UTF-8) is moved aside to
  ``jobs.json.corrupt-<ms>`` and the ``.bak`` is used instead, with a warning;
- a job that does not validate is kept in the file as it is (never scheduled,
  never dropped) and named in a warning;
- a FIFO, device or directory at the path is refused before any read (nothing
  blocks), as is a store over :data:`MAX_STORE_BYTES`.

The gateway keeps the store in memory while it runs: hand edits are safe only
while it is stopped (``moltbot cron ...`` goes through the running gateway).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moltbot.automation.files import NotRegularFile, read_regular
from moltbot.automation.jobs import CronJob
from moltbot.errors import ConfigError
from moltbot.fsutil import locked, write_atomic
from moltbot.validation import ValidationError

MAX_STORE_BYTES = 64 * 1024 * 1024
MAX_JSON5_BYTES = 2 * 1024 * 1024
LOCK_TIMEOUT_S = 10.0


@dataclass
class Loaded:
    jobs: list[CronJob] = field(default_factory=list)
    invalid: list[Any] = field(default_factory=list)
    """Entries of ``jobs`` that did not validate: written back untouched."""
    warnings: list[str] = field(default_factory=list)


class CronStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.backup = path.with_name(path.name + ".bak")
        self.lock = path.with_name(path.name + ".lock")

    @property
    def runs_dir(self) -> Path:
        return self.path.parent / "runs"

    def load(self) -> Loaded:
        """Read the store (module docstring). Raises :class:`ConfigError` only for a path
        that is not a regular file, or one too large to read. An instance that never had
        a job reads an empty store without creating anything."""
        if not self.path.parent.exists():
            return Loaded()
        with locked(self.lock, LOCK_TIMEOUT_S):
            return self._load_locked()

    def _load_locked(self) -> Loaded:
        loaded = Loaded()
        raw = _read_regular(self.path)
        if raw is None:
            return loaded
        try:
            data = _parse(raw)
        except ValueError as exc:
            aside = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time() * 1000)}")
            os.replace(self.path, aside)
            loaded.warnings.append(
                f"cron store {self.path} is unreadable ({exc}); moved to {aside.name}"
            )
            backup = _read_regular(self.backup)
            if backup is None:
                return loaded
            try:
                data = _parse(backup)
            except ValueError:
                loaded.warnings.append(f"{self.backup.name} is unreadable too; starting empty")
                return loaded
            loaded.warnings.append(f"using {self.backup.name} instead")
        entries = data.get("jobs") if isinstance(data, dict) else None
        if not isinstance(entries, list):
            loaded.warnings.append(f"cron store {self.path} has no jobs list; starting empty")
            return loaded
        seen: set[str] = set()
        for index, entry in enumerate(entries):
            try:
                job = CronJob.model_validate(entry)
            except ValidationError as exc:
                loaded.invalid.append(entry)
                name = entry.get("id") if isinstance(entry, dict) else None
                loaded.warnings.append(
                    f"cron job #{index} ({name or 'no id'}) in {self.path.name} is invalid and "
                    f"will not run: {exc.errors()[0]['msg']} at "
                    f"{'.'.join(str(p) for p in exc.errors()[0]['loc'])}"
                )
                continue
            if job.id in seen:
                loaded.invalid.append(entry)
                loaded.warnings.append(
                    f"cron job id {job.id} appears twice; the second is kept aside"
                )
                continue
            seen.add(job.id)
            loaded.jobs.append(job)
        return loaded

    def save(self, jobs: list[dict[str, Any]], invalid: Sequence[Any] = ()) -> None:
        """Replace the store with ``jobs`` (already dumped), keeping the previous file as
        ``.bak``. Blocking: call it from a worker thread."""
        with locked(self.lock, LOCK_TIMEOUT_S):
            self._save_locked(jobs, invalid)

    @contextlib.contextmanager
    def edit(self) -> Iterator[tuple[Loaded, Callable[[list[CronJob]], None]]]:
        """Read-modify-write under the lock (for ``moltbot cron`` without a gateway):
        ``with store.edit() as (loaded, save): ...; save(jobs)``."""
        with locked(self.lock, LOCK_TIMEOUT_S):
            loaded = self._load_locked()

            def save(jobs: list[CronJob]) -> None:
                self._save_locked([job.stored() for job in jobs], loaded.invalid)

            yield loaded, save

    def _save_locked(self, jobs: list[dict[str, Any]], invalid: Sequence[Any]) -> None:
        import orjson

        data = orjson.dumps(
            {"version": 1, "jobs": [*jobs, *invalid]},
            option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE,
        )
        previous = _read_regular(self.path, refuse=False)
        if previous is not None:
            write_atomic(self.backup, previous)
        write_atomic(self.path, data)


def _read_regular(path: Path, *, refuse: bool = True) -> bytes | None:
    """The bytes of ``path``; ``None`` when it does not exist (or, without ``refuse``,
    is not a regular file). Never blocks on a FIFO."""
    try:
        data = read_regular(path, max_bytes=MAX_STORE_BYTES + 1)
    except NotRegularFile as exc:
        if not refuse:
            return None
        raise ConfigError(
            f"cron store {path} is {exc.kind}, not a file",
            hint="remove it, or point cron.store at a regular file",
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read cron store {path}: {exc.strerror}") from None
    if data is not None and len(data) > MAX_STORE_BYTES:
        raise ConfigError(
            f"cron store {path} is larger than {MAX_STORE_BYTES // (1024 * 1024)} MiB",
            hint="remove old jobs while the gateway is stopped",
        )
    return data


def _parse(raw: bytes) -> Any:
    """JSON (fast), else JSON5 for hand edits; ``ValueError`` when neither."""
    import orjson

    if not raw.strip():
        return {"version": 1, "jobs": []}
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        pass
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("not UTF-8 text") from None
    if len(raw) > MAX_JSON5_BYTES:
        raise ValueError("not valid JSON")
    import json5  # json-five

    try:
        data = json5.loads(text)
    except RecursionError:
        raise ValueError("nested too deeply") from None
    except Exception as exc:  # json-five raises several types on bad input
        raise ValueError(f"not JSON or JSON5: {exc}") from None
    return json.loads(json.dumps(data))  # plain str keys


__all__ = ["CronStore", "Loaded", "MAX_STORE_BYTES"]
