"""DM pairing: one-time codes for unknown senders, and the approved-senders store.

Files (under the instance's credentials dir, written atomically, mode 0600,
serialised between processes by an OS lock on ``<channel>-pairing.lock``):

- ``<channel>-pairing.json``: ``{version: 1, requests: [{id, code, createdAt,
  lastSeenAt, meta}]}`` — pending requests;
- ``<channel>-allowFrom.json``: ``{version: 1, allowFrom: [ids]}`` — approved senders.

Codes are 8 characters from ``ABCDEFGHJKLMNPQRSTUVWXYZ23456789`` (no 0/O/1/I),
expire after one hour, and at most three are pending per channel: a fourth
stranger gets nothing until one expires. A sender who writes again keeps the
same code (only ``lastSeenAt`` moves), so the code is sent once per request.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import secrets
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from moltbot.errors import NotFoundError, UsageError
from moltbot.fsutil import locked, write_json_atomic

ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 8
TTL_SECONDS = 3600.0
MAX_PENDING = 3
_CHANNEL_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PairingRequest:
    id: str
    code: str
    created_at: float
    last_seen_at: float
    meta: Mapping[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "code": self.code,
            "createdAt": _iso(self.created_at),
            "lastSeenAt": _iso(self.last_seen_at),
            "meta": dict(self.meta),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PairingRequest:
        created = _parse_time(data.get("createdAt"))
        return cls(
            str(data["id"]),
            str(data["code"]).upper(),
            created,
            _parse_time(data.get("lastSeenAt"), created),
            dict(data.get("meta") or {}),
        )

    def expires_at(self) -> float:
        return self.created_at + TTL_SECONDS


def generate_code(taken: Collection[str] = ()) -> str:
    while True:
        code = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
        if code not in taken:
            return code


def normalize_code(code: str) -> str:
    return code.strip().upper().replace("-", "").replace(" ", "")


class PairingStore:
    """The pairing and allowFrom files of one channel. Safe across processes."""

    def __init__(
        self, credentials_dir: Path, channel: str, *, clock: Callable[[], float] = time.time
    ) -> None:
        if not _CHANNEL_NAME.match(channel):
            raise UsageError(f"invalid channel name {channel!r}")
        self.dir = credentials_dir
        self.channel = channel
        self.clock = clock
        self.pairing_path = credentials_dir / f"{channel}-pairing.json"
        self.allow_path = credentials_dir / f"{channel}-allowFrom.json"
        self._lock_path = credentials_dir / f"{channel}-pairing.lock"
        self._allow_cache: tuple[float, int, tuple[str, ...]] | None = None

    # -- pending requests -------------------------------------------------

    def request(
        self, sender_id: str, meta: Mapping[str, Any] | None = None
    ) -> tuple[PairingRequest | None, bool]:
        """Create or refresh the pending request of ``sender_id``.

        Returns ``(request, created)``; ``(None, False)`` when the channel
        already has :data:`MAX_PENDING` live requests.
        """
        now = self.clock()
        with self._locked():
            requests = self._live_requests(now)
            for index, existing in enumerate(requests):
                if existing.id == sender_id:
                    refreshed = PairingRequest(
                        existing.id,
                        existing.code,
                        existing.created_at,
                        now,
                        {**existing.meta, **(meta or {})},
                    )
                    requests[index] = refreshed
                    self._write_requests(requests)
                    return refreshed, False
            if len(requests) >= MAX_PENDING:
                self._write_requests(requests)
                return None, False
            created = PairingRequest(
                sender_id, generate_code({r.code for r in requests}), now, now, dict(meta or {})
            )
            requests.append(created)
            self._write_requests(requests)
            return created, True

    def pending(self) -> list[PairingRequest]:
        """Live requests, oldest first (expired ones are dropped from the file)."""
        now = self.clock()
        with self._locked():
            requests = self._live_requests(now)
            if self.pairing_path.exists():
                self._write_requests(requests)
            return requests

    def approve(self, code: str) -> PairingRequest:
        """Remove the request with ``code`` and add its sender to the allowlist.

        Raises :class:`NotFoundError` for an unknown or expired code.
        """
        request = self._take(code)
        self.allow(request.id)
        return request

    def reject(self, code: str) -> PairingRequest:
        return self._take(code)

    def _take(self, code: str) -> PairingRequest:
        wanted = normalize_code(code)
        with self._locked():
            requests = self._live_requests(self.clock())
            found = next((r for r in requests if r.code == wanted), None)
            if found is None:
                raise NotFoundError(
                    f"no pending {self.channel} pairing request with code {wanted or code!r}",
                    hint=f"list them with `moltbot pairing list {self.channel}`; "
                    "codes expire after one hour",
                )
            self._write_requests([r for r in requests if r is not found])
            return found

    # -- approved senders -------------------------------------------------

    def allowed(self) -> tuple[str, ...]:
        """Approved sender ids (cached by file mtime: cheap to call per message)."""
        try:
            stat = self.allow_path.stat()
        except FileNotFoundError:
            return ()
        key = (stat.st_mtime, stat.st_size)
        if self._allow_cache and self._allow_cache[:2] == key:
            return self._allow_cache[2]
        data = _read_json(self.allow_path)
        values = tuple(str(item) for item in data.get("allowFrom", []) if str(item).strip())
        self._allow_cache = (*key, values)
        return values

    def allow(self, sender_id: str) -> bool:
        """Add ``sender_id``; False when it was already there."""
        with self._locked():
            current = list(_read_json(self.allow_path).get("allowFrom", []))
            if sender_id in current:
                return False
            current.append(sender_id)
            write_json_atomic(self.allow_path, {"version": 1, "allowFrom": current})
            return True

    def disallow(self, sender_id: str) -> bool:
        with self._locked():
            current = list(_read_json(self.allow_path).get("allowFrom", []))
            if sender_id not in current:
                return False
            current.remove(sender_id)
            write_json_atomic(self.allow_path, {"version": 1, "allowFrom": current})
            return True

    # -- internals --------------------------------------------------------

    def _live_requests(self, now: float) -> list[PairingRequest]:
        data = _read_json(self.pairing_path)
        out = []
        for item in data.get("requests", []):
            try:
                request = PairingRequest.from_json(item)
            except (AttributeError, KeyError, TypeError, ValueError):  # hand-edited junk
                continue
            if request.expires_at() > now:
                out.append(request)
        return out

    def _write_requests(self, requests: list[PairingRequest]) -> None:
        write_json_atomic(
            self.pairing_path, {"version": 1, "requests": [r.as_json() for r in requests]}
        )

    def _locked(self, timeout: float = 10.0) -> contextlib.AbstractContextManager[None]:
        return locked(self._lock_path, timeout)


def list_channels_with_pairing(credentials_dir: Path) -> list[str]:
    if not credentials_dir.is_dir():
        return []
    return sorted(p.name[: -len("-pairing.json")] for p in credentials_dir.glob("*-pairing.json"))


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse_time(value: Any, default: float | None = None) -> float:
    if isinstance(value, int | float):
        return float(value) / (1000.0 if value > 1e11 else 1.0)
    if isinstance(value, str) and value:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    if default is not None:
        return default
    raise ValueError("missing time")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        # Keep the unreadable file for the owner instead of overwriting it.
        aside = path.with_name(f"{path.name}.corrupt-{int(time.time())}")
        with contextlib.suppress(OSError):
            os.replace(path, aside)
        log.warning("unreadable %s (%s); moved to %s", path, exc, aside.name)
        return {}
    return data if isinstance(data, dict) else {}
