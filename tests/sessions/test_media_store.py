"""The per-session media store: size cap, content sniffing, private files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from tests.fakes.media import JPEG, OGG, png

from moltbot.errors import UsageError
from moltbot.sessions.media import MediaStore, MediaTooLarge, StoredMedia, session_slug


def test_sniffed_type_wins_over_the_claim(tmp_path: Path) -> None:
    store = MediaStore(tmp_path)
    fake = store.save(
        "agent:main:main", b"<svg onload=alert(1)>", kind="image", mime_type="image/png"
    )
    assert fake.mime_type == "text/plain" and fake.kind == "document"
    assert not fake.is_model_image and fake.block()["type"] == "file"
    assert fake.path.endswith(".txt")
    real = store.save("agent:main:main", JPEG, kind="image", mime_type="application/octet-stream")
    assert (real.kind, real.mime_type, real.is_model_image) == ("image", "image/jpeg", True)
    voice = store.save("agent:main:main", OGG, kind="voice")
    assert (voice.kind, voice.mime_type) == ("voice", "audio/ogg")


def test_private_files_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        saved = MediaStore(tmp_path).save("agent:main:telegram:group:-1", png())
    finally:
        os.umask(old)
    path = Path(saved.path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700
    assert path.parent.parent.stat().st_mode & 0o777 == 0o700


def test_size_limit_and_empty_files_store_nothing(tmp_path: Path) -> None:
    store = MediaStore(tmp_path)
    with pytest.raises(MediaTooLarge, match="over the limit"):
        store.save("main", png() + b"\0" * 100, max_bytes=50)
    with pytest.raises(UsageError, match="empty"):
        store.save("main", b"")
    assert not store.root.exists() or not any(store.root.rglob("*.*"))


def test_distinct_sessions_get_distinct_dirs_and_blocks_round_trip(tmp_path: Path) -> None:
    assert session_slug("agent:main:A") != session_slug("agent:main:a")
    saved = MediaStore(tmp_path).save("agent:main:a", png(), file_name="../../etc/chart.png")
    assert saved.file_name == "chart.png"
    assert StoredMedia.from_block(saved.block()) == saved
