"""Which agent runs are in flight, kept on disk so a crash can be told afterwards.

A run is marked (one small file in ``<sessions dir>/runs-in-flight/``) right after
its user message is written to the transcript, and unmarked once its end is
recorded there. A mark left behind means the process died mid-turn (``kill -9``,
power loss): the next start finds it with :meth:`RunJournal.left_behind` and writes
an "interrupted" note into that session.

Marks are written without fsync: they survive the death of the process, which is
what they are for (the user message itself is fsync'd). File names are a hash of
the run id, which a client may choose.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

DIR_NAME = "runs-in-flight"


@dataclass(frozen=True)
class Mark:
    run_id: str
    session_key: str
    pid: int
    started: float
    """The marking process's start time (tells it from a later process with its pid)."""
    path: Path


class RunJournal:
    def __init__(self, sessions_dir: Path) -> None:
        self.directory = sessions_dir / DIR_NAME
        self._made = False

    def mark(self, run_id: str, session_key: str) -> None:
        """Record that ``run_id`` is in flight. Raises OSError when it cannot."""
        if not self._made:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._made = True
        data = {
            "runId": run_id,
            "sessionKey": session_key,
            "pid": os.getpid(),
            "started": _started(os.getpid()),
        }
        self._path(run_id).write_text(json.dumps(data), encoding="utf-8")

    def unmark(self, run_id: str) -> None:
        with contextlib.suppress(OSError):
            self._path(run_id).unlink()

    def left_behind(self) -> list[Mark]:
        """Marks of runs whose process is gone (or is this one, restarted in-process).

        A mark of another live process (``moltbot agent --local`` sharing the store)
        is left alone. Unreadable marks are dropped.
        """
        try:
            paths = sorted(self.directory.glob("*.json"))
        except OSError:
            return []
        found: list[Mark] = []
        for path in paths:
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                mark = Mark(
                    str(data["runId"]),
                    str(data["sessionKey"]),
                    int(data["pid"]),
                    float(data.get("started") or 0),
                    path,
                )
            except (OSError, ValueError, KeyError, TypeError):
                with contextlib.suppress(OSError):
                    path.unlink()
                continue
            if mark.pid != os.getpid() and _started(mark.pid) == mark.started:
                continue  # another live process's run
            found.append(mark)
        return found

    def _path(self, run_id: str) -> Path:
        digest = hashlib.sha256(run_id.encode("utf-8", "surrogatepass")).hexdigest()[:32]
        return self.directory / f"{digest}.json"


@cache
def _own_start() -> float:
    return _process_start(os.getpid())


def _started(pid: int) -> float:
    """When process ``pid`` started (0 when there is none)."""
    return _own_start() if pid == os.getpid() else _process_start(pid)


def _process_start(pid: int) -> float:
    import psutil

    try:
        return float(psutil.Process(pid).create_time())
    except psutil.NoSuchProcess:
        return 0.0
    except psutil.AccessDenied:
        return -1.0
