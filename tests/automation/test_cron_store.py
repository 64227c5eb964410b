"""The cron store and run logs on disk: atomic saves with .bak, hostile files, pruning."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from tests.automation.cron_helpers import job

from moltbot.automation import runlog
from moltbot.automation.jobs import create_job
from moltbot.automation.runlog import RunLog
from moltbot.automation.store import CronStore
from moltbot.errors import ConfigError


def stored(name: str = "a") -> dict:
    return create_job(job({"kind": "every", "everyMs": 60_000}, name=name), 1_000).stored()


def test_save_keeps_the_previous_version_as_bak(tmp_path: Path) -> None:
    store = CronStore(tmp_path / "cron" / "jobs.json")
    store.save([stored("first")])
    store.save([stored("second")])
    assert [j["name"] for j in json.loads(store.path.read_text())["jobs"]] == ["second"]
    assert [j["name"] for j in json.loads(store.backup.read_text())["jobs"]] == ["first"]
    assert (store.path.stat().st_mode & 0o777) == 0o600
    assert (store.path.parent.stat().st_mode & 0o777) == 0o700
    loaded = store.load()
    assert [j.name for j in loaded.jobs] == ["second"] and loaded.warnings == []


def test_loading_a_store_that_never_existed_creates_nothing(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    loaded = CronStore(state / "cron" / "jobs.json").load()
    assert loaded.jobs == [] and loaded.warnings == []
    assert list(state.iterdir()) == []  # no cron/ dir, no lock file for an idle gateway


def test_hand_edited_json5_loads(tmp_path: Path) -> None:
    store = CronStore(tmp_path / "jobs.json")
    entry = json.dumps(stored("edited"))
    store.path.write_text(f"// edited by hand\n{{version: 1, jobs: [{entry},],}}\n")
    assert [j.name for j in store.load().jobs] == ["edited"]


def test_corrupt_store_is_moved_aside_and_the_bak_used(tmp_path: Path) -> None:
    store = CronStore(tmp_path / "jobs.json")
    store.save([stored("good")])
    store.save([stored("newer")])
    store.path.write_bytes(b"{\xff truncated")
    loaded = store.load()
    assert [j.name for j in loaded.jobs] == ["good"]
    assert any("unreadable" in w for w in loaded.warnings)
    aside = list(tmp_path.glob("jobs.json.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == b"{\xff truncated"  # nothing lost


def test_an_invalid_job_is_kept_in_the_file_but_not_loaded(tmp_path: Path) -> None:
    store = CronStore(tmp_path / "jobs.json")
    broken = {**stored("broken"), "schedule": {"kind": "every", "everyMs": -5}}
    store.path.write_text(json.dumps({"version": 1, "jobs": [stored("ok"), broken]}))
    loaded = store.load()
    assert [j.name for j in loaded.jobs] == ["ok"]
    assert loaded.invalid == [broken]
    assert "will not run" in loaded.warnings[0]
    store.save([j.stored() for j in loaded.jobs], loaded.invalid)
    assert json.loads(store.path.read_text())["jobs"][1] == broken


def test_a_fifo_at_the_store_path_is_refused_without_blocking(tmp_path: Path) -> None:
    store = CronStore(tmp_path / "jobs.json")
    os.mkfifo(store.path)
    with pytest.raises(ConfigError, match="FIFO"):
        store.load()
    (tmp_path / "dir").mkdir()
    with pytest.raises(ConfigError, match="directory"):
        CronStore(tmp_path / "dir").load()


def test_run_log_appends_reads_newest_and_prunes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = RunLog(tmp_path / "runs")
    monkeypatch.setattr(runlog, "MAX_BYTES", 4_000)
    monkeypatch.setattr(runlog, "KEEP_LINES", 10)
    for i in range(60):
        log.append({"ts": i, "jobId": "j1", "action": "finished", "status": "ok", "runAtMs": i})
    entries = log.read("j1", limit=5)
    assert [e["ts"] for e in entries] == [55, 56, 57, 58, 59]
    assert log.path("j1").stat().st_size <= 4_000 + 200
    with log.path("j1").open("ab") as handle:  # a crash mid-append leaves a torn line
        handle.write(b'{"ts": 60, "jobId": "j1", "act')
    assert log.read("j1", limit=1)[0]["ts"] == 59


def test_run_log_refuses_ids_that_would_leave_its_directory(tmp_path: Path) -> None:
    from moltbot.errors import NotFoundError

    log = RunLog(tmp_path / "runs")
    for bad in ("../jobs", "a/b", ".hidden", ""):
        with pytest.raises(NotFoundError):
            log.read(bad)
