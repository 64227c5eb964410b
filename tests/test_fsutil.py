import json
import os
import stat
from pathlib import Path

import pytest

from moltbot.fsutil import acquire_lock, locked, write_atomic, write_json_atomic


def test_write_atomic_creates_private_parents_and_exact_mode(tmp_path: Path) -> None:
    path = tmp_path / "state" / "nested" / "file.txt"
    write_atomic(path, "héllo")
    assert path.read_bytes() == "héllo".encode()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    write_atomic(path, b"again", mode=0o644, sync=False)
    assert path.read_bytes() == b"again"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert [p.name for p in path.parent.iterdir()] == ["file.txt"]


def test_write_atomic_keeps_the_old_file_and_no_temp_on_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "state" / "file.json"
    write_json_atomic(path, {"v": 1})

    def fail(src: object, dst: object) -> None:
        raise OSError("disk on fire")

    monkeypatch.setattr("moltbot.fsutil.os.replace", fail)
    with pytest.raises(OSError, match="disk on fire"):
        write_json_atomic(path, {"v": 2})
    assert json.loads(path.read_text()) == {"v": 1}
    assert [p.name for p in path.parent.iterdir()] == ["file.json"]


def test_write_json_atomic_format(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    write_json_atomic(path, {"name": "zoë", "n": [1]})
    assert path.read_text(encoding="utf-8") == '{\n  "name": "zoë",\n  "n": [\n    1\n  ]\n}\n'


def test_lock_waits_for_the_holder_then_times_out(tmp_path: Path) -> None:
    path = tmp_path / "state" / "x.lock"
    with locked(path, timeout=1):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        with pytest.raises(TimeoutError, match="x.lock"):
            acquire_lock(path, timeout=0.05)
    os.close(acquire_lock(path, timeout=0.05))
