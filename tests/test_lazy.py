"""Lazy registry entries: loaded, or a clear error naming the entry (never skipped)."""

from __future__ import annotations

from pathlib import Path

import pytest

from moltbot.errors import MoltbotError
from moltbot.lazy import load


def test_loads_modules_and_names() -> None:
    import moltbot.lazy

    assert load("moltbot.lazy", "x") is moltbot.lazy
    assert load("moltbot.lazy:load", "x") is load


def test_missing_module_name_or_broken_module_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(MoltbotError) as caught:
        load("moltbot.canvas.hots:CanvasHost", "subsystem canvas")
    assert caught.value.message.startswith("subsystem canvas: cannot import moltbot.canvas.hots")
    with pytest.raises(MoltbotError) as caught:
        load("moltbot.lazy:lode", "tool x")
    assert caught.value.message == "tool x: moltbot.lazy has no lode"
    (tmp_path / "broken_entry.py").write_text("raise RuntimeError('bad import-time code')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(MoltbotError) as caught:
        load("broken_entry:Thing", "method family")
    assert "RuntimeError: bad import-time code" in caught.value.message
    assert isinstance(caught.value.__cause__, RuntimeError)
