"""The config file watcher: inotify on Linux, watchfiles where inotify is missing."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from moltbot.gateway import filewatch


@pytest.fixture(params=["inotify", "watchfiles"])
def backend(request, monkeypatch):
    if request.param == "watchfiles":
        monkeypatch.setattr(filewatch, "_inotify", lambda _folder: None)
    return request.param


async def test_reports_writes_replacements_and_removals_of_the_file_only(tmp_path: Path, backend):
    path = tmp_path / "moltbot.json"
    path.write_text("{}")
    changes = filewatch.changes(path, debounce_ms=50)
    await asyncio.wait_for(anext(changes), 5)  # the watch is in place
    if backend == "watchfiles":  # its watch is set up on the first step of the next wait
        waiting = asyncio.ensure_future(anext(changes))
        await asyncio.sleep(0.5)
    else:
        waiting = None

    async def next_batch() -> None:
        await asyncio.wait_for(waiting if waiting is not None else anext(changes), 10)

    (tmp_path / "other.json").write_text("{}")  # a neighbour: not reported
    path.write_text('{"a": 1}')
    await next_batch()
    waiting = None

    replacement = tmp_path / "moltbot.json.tmp"
    replacement.write_text('{"a": 2}')
    os.replace(replacement, path)  # an atomic save
    await next_batch()

    path.unlink()
    await next_batch()
    await changes.aclose()
