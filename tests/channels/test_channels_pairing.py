"""The pairing store: codes, expiry, the pending cap, approvals, concurrency."""

from __future__ import annotations

import json
import multiprocessing
import stat
from pathlib import Path

import pytest

from moltbot.channels.pairing import (
    ALPHABET,
    MAX_PENDING,
    TTL_SECONDS,
    PairingStore,
    generate_code,
)
from moltbot.errors import NotFoundError


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def test_codes_use_the_unambiguous_alphabet() -> None:
    codes = {generate_code() for _ in range(500)}
    assert len(codes) == 500
    for code in codes:
        assert len(code) == 8 and set(code) <= set(ALPHABET)
        assert not set(code) & set("01OI")


def test_request_lifecycle(tmp_path: Path) -> None:
    clock = Clock()
    store = PairingStore(tmp_path, "telegram", clock=clock)
    first, created = store.request("1", {"name": "Ann"})
    assert created and first is not None
    again, created_again = store.request("1", {"username": "ann"})
    assert not created_again and again is not None
    assert again.code == first.code and again.meta == {"name": "Ann", "username": "ann"}

    for sender in ("2", "3"):
        assert store.request(sender)[1]
    assert len(store.pending()) == MAX_PENDING
    assert store.request("4") == (None, False)  # capped: ignored until one expires

    clock.now += TTL_SECONDS + 1
    assert store.pending() == []
    fresh, created = store.request("4")
    assert created and fresh is not None

    data = json.loads((tmp_path / "telegram-pairing.json").read_text())
    assert data["version"] == 1 and [r["id"] for r in data["requests"]] == ["4"]
    assert data["requests"][0]["createdAt"].endswith("Z")
    mode = stat.S_IMODE((tmp_path / "telegram-pairing.json").stat().st_mode)
    assert mode == 0o600


def test_approve_reject_and_allowlist(tmp_path: Path) -> None:
    store = PairingStore(tmp_path, "slack")
    request, _ = store.request("U1")
    other, _ = store.request("U2")
    assert request and other
    approved = store.approve(f" {request.code.lower()[:4]}-{request.code.lower()[4:]} ")
    assert approved.id == "U1"
    assert store.allowed() == ("U1",)
    assert json.loads((tmp_path / "slack-allowFrom.json").read_text()) == {
        "version": 1,
        "allowFrom": ["U1"],
    }
    store.reject(other.code)
    assert store.pending() == [] and store.allowed() == ("U1",)
    with pytest.raises(NotFoundError, match="no pending slack pairing request"):
        store.approve(request.code)
    assert store.allow("U1") is False
    assert store.disallow("U1") is True and store.allowed() == ()


def test_a_corrupt_file_is_kept_aside(tmp_path: Path) -> None:
    (tmp_path / "telegram-allowFrom.json").write_text("{not json")
    store = PairingStore(tmp_path, "telegram")
    assert store.allow("5") is True
    assert store.allowed() == ("5",)
    assert list(tmp_path.glob("telegram-allowFrom.json.corrupt-*"))


def _approve_many(path: str, start: int) -> None:
    store = PairingStore(Path(path), "telegram")
    for i in range(start, start + 25):
        store.allow(str(i))


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_approve_many, args=(str(tmp_path), n * 100)) for n in range(4)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
        assert proc.exitcode == 0
    assert len(PairingStore(tmp_path, "telegram").allowed()) == 100


def test_expiry_boundary_and_hand_written_requests(tmp_path: Path) -> None:
    """A request is live until exactly created + TTL; times may be ISO strings, epoch
    seconds or epoch milliseconds; an entry without an id or with a bad time is skipped,
    and the ones after it are still read."""
    from moltbot.channels.pairing import list_channels_with_pairing

    clock = Clock()
    store = PairingStore(tmp_path, "telegram", clock=clock)
    created = clock.now
    requests = [
        {"code": "NOID2345", "createdAt": created},
        "not an object",
        {"id": "bad-meta", "code": "META2345", "createdAt": created, "meta": 5},
        {"id": "bad-time", "code": "BADT2345", "createdAt": "not a time"},
        {"id": "no-time", "code": "NOTM2345"},
        {"id": "s", "code": "secs2345", "createdAt": created},
        {"id": "ms", "code": "MSEC2345", "createdAt": created * 1000 - 1000},
        {"id": "iso", "code": "ISOT2345", "createdAt": "2023-11-14T22:13:20.000Z"},
        {"id": "seen", "code": "SEEN2345", "createdAt": created, "lastSeenAt": created + 5},
    ]
    (tmp_path / "telegram-pairing.json").write_text(json.dumps({"requests": requests}))
    live = {r.id: r for r in store.pending()}
    assert set(live) == {"s", "ms", "iso", "seen"}
    assert live["s"].code == "SECS2345"
    assert live["ms"].created_at == created - 1
    assert live["iso"].created_at == created  # 2023-11-14T22:13:20Z is 1_700_000_000
    assert live["s"].last_seen_at == created and live["seen"].last_seen_at == created + 5
    clock.now = created + TTL_SECONDS - 2
    assert {r.id for r in store.pending()} == {"s", "ms", "iso", "seen"}
    clock.now = created + TTL_SECONDS - 1
    assert {r.id for r in store.pending()} == {"s", "iso", "seen"}  # ms was created 1 s earlier
    clock.now = created + TTL_SECONDS
    assert store.pending() == []
    assert list_channels_with_pairing(tmp_path) == ["telegram"]
    assert list_channels_with_pairing(tmp_path / "missing") == []
    assert list_channels_with_pairing(tmp_path / "telegram-pairing.json") == []


def test_pending_without_a_file_writes_nothing(tmp_path: Path) -> None:
    store = PairingStore(tmp_path, "slack")
    assert store.pending() == []
    assert not (tmp_path / "slack-pairing.json").exists()
    with pytest.raises(NotFoundError, match="with code 'ABCD2345'"):
        store.reject("abcd-2345")
    with pytest.raises(NotFoundError, match="with code '--'"):
        store.reject("--")
    assert store.disallow("nobody") is False


def test_allowed_list_follows_the_file(tmp_path: Path) -> None:
    store = PairingStore(tmp_path, "slack")
    assert store.allowed() == ()
    store.allow("U1")
    assert store.allowed() == ("U1",)
    (tmp_path / "slack-allowFrom.json").write_text(json.dumps({"allowFrom": ["U1", " ", "U22"]}))
    assert store.allowed() == ("U1", "U22")


def test_invalid_channel_name() -> None:
    from moltbot.errors import UsageError

    for name in ("", "Telegram", "../x", "a" * 33):
        with pytest.raises(UsageError):
            PairingStore(Path("/nonexistent"), name)


def test_epoch_cutover_between_seconds_and_milliseconds(tmp_path: Path) -> None:
    """Up to 1e11 a number is seconds (1e11 s is the year 5138), above it milliseconds."""
    clock = Clock()
    store = PairingStore(tmp_path, "telegram", clock=clock)
    requests = [
        {"id": "edge", "code": "EDGE2345", "createdAt": 100_000_000_000},
        {"id": "above", "code": "ABVE2345", "createdAt": 100_000_000_001},
    ]
    (tmp_path / "telegram-pairing.json").write_text(json.dumps({"requests": requests}))
    assert [r.id for r in store.pending()] == ["edge"]  # "above" is 1973: long expired


def test_an_unreadable_last_seen_falls_back_to_created(tmp_path: Path) -> None:
    clock = Clock()
    store = PairingStore(tmp_path, "telegram", clock=clock)
    request = {"id": "x", "code": "ODDS2345", "createdAt": clock.now, "lastSeenAt": [1]}
    (tmp_path / "telegram-pairing.json").write_text(json.dumps({"requests": [request]}))
    [live] = store.pending()
    assert live.last_seen_at == clock.now
