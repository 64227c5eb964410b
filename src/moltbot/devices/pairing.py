"""Paired operator and node devices of one instance: ``<state>/devices/``.

``paired.json`` maps a device id to its record (upstream's shape): public key,
roles and scopes it was approved for, client facts, and one token per role
``{token, role, scopes, createdAtMs, rotatedAtMs?, revokedAtMs?, lastUsedAtMs?}``.
``pending.json`` maps a request id to a pairing request; a request expires
after :data:`PENDING_TTL_MS` (5 min) and one device has at most one request.

Who is approved how (the gateway's handshake asks :meth:`DevicePairing.check`):

- a device whose key, role and scopes are all approved is paired, and gets its
  role's token (a new one if it had none, it was revoked, or it does not cover
  the scopes asked for);
- otherwise a request is created (or the device's open one reused). A local
  client that also presented the shared secret is approved at once; any other
  waits for an operator (``device.pair.approve``) and is refused ``NOT_PAIRED``.

Approval is scoped: it grants the roles and scopes the request asked for,
merged with what the device already had. Tokens are 32 hex characters, compared
in constant time; a revoked token no longer signs anyone in (the gateway also
closes that device's connections in that role). Writes are atomic (temp file +
rename, ``0600``); the gateway is the only writer of its state dir, and a lock
keeps its own threads from interleaving. Unreadable files count as empty.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moltbot.fsutil import write_json_atomic
from moltbot.security.secrets import secret_equals

PENDING_TTL_MS = 5 * 60 * 1000

__all__ = [
    "PENDING_TTL_MS",
    "ClientFacts",
    "DevicePairing",
    "PairingFiles",
    "PairingOutcome",
    "now_ms",
]


def now_ms() -> int:
    return int(time.time() * 1000)


def new_token() -> str:
    return uuid.uuid4().hex


def _clean(record: dict[str, Any]) -> dict[str, Any]:
    """Without ``None`` values or empty strings (upstream's schemas want non-empty strings)."""
    return {k: v for k, v in record.items() if v is not None and v != ""}


def _normalized(scopes: list[str] | tuple[str, ...] | None) -> list[str]:
    return sorted({s.strip() for s in scopes or () if s.strip()})


def _covers(allowed: list[str], requested: list[str]) -> bool:
    return not requested or (bool(allowed) and set(requested) <= set(allowed))


@dataclass(frozen=True)
class ClientFacts:
    """What a connecting client says about itself (kept on its request and record)."""

    display_name: str | None = None
    platform: str | None = None
    client_id: str | None = None
    client_mode: str | None = None
    remote_ip: str | None = None

    def record(self) -> dict[str, Any]:
        return _clean(
            {
                "displayName": self.display_name,
                "platform": self.platform,
                "clientId": self.client_id,
                "clientMode": self.client_mode,
                "remoteIp": self.remote_ip,
            }
        )


@dataclass
class PairingOutcome:
    paired: bool
    token: dict[str, Any] | None = None
    """The role's token record when paired."""
    request: dict[str, Any] = field(default_factory=dict)
    """The pairing request (created, reused or auto-approved)."""
    created: bool = False
    """A new request (the gateway announces it: ``device.pair.requested``)."""
    newly_approved: bool = False
    """Approved now, automatically (``device.pair.resolved``)."""


class PairingFiles:
    """``paired.json`` and ``pending.json`` of one directory: read leniently (a damaged
    file reads as empty), written atomically; pending requests expire after
    :data:`PENDING_TTL_MS`. Callers hold ``_lock`` around read-modify-write."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._lock = threading.RLock()

    def _read(self, name: str) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads((self.directory / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict):
            return {}
        return {str(k): v for k, v in data.items() if isinstance(v, dict)}

    def _write(self, name: str, data: dict[str, Any]) -> None:
        write_json_atomic(self.directory / name, data)

    def pending(self) -> dict[str, dict[str, Any]]:
        """Live requests by id (expired ones are left out)."""
        now = now_ms()
        return {
            k: v
            for k, v in self._read("pending.json").items()
            if now - int(v.get("ts", 0)) < PENDING_TTL_MS
        }

    def paired(self) -> dict[str, dict[str, Any]]:
        """Paired records by id (tokens included: never send this as is)."""
        return self._read("paired.json")

    def listing(self) -> dict[str, list[dict[str, Any]]]:
        """The ``*.pair.list`` answer: pending requests (newest first) and paired records
        without their secrets (newest approval first)."""
        pending = sorted(self.pending().values(), key=lambda r: -int(r.get("ts", 0)))
        paired = sorted(self.paired().values(), key=lambda d: -int(d.get("approvedAtMs", 0)))
        return {"pending": pending, "paired": [self._public(d) for d in paired]}

    def _public(self, record: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in record.items() if k != "token"}

    def _drop_pending(self, request_id: str) -> dict[str, Any] | None:
        """Take a live request off ``pending.json``; the request, ``None`` if unknown."""
        with self._lock:
            pending = self.pending()
            request = pending.pop(request_id, None)
            if request is not None:
                self._write("pending.json", pending)
            return request


class DevicePairing(PairingFiles):
    """``<state>/devices/{paired,pending}.json``."""

    def paired(self) -> dict[str, dict[str, Any]]:
        """Paired devices by id (tokens included: never send this as is)."""
        return {k: _upgrade(v) for k, v in self._read("paired.json").items()}

    def _public(self, record: dict[str, Any]) -> dict[str, Any]:
        return redacted(record)  # tokens summarized

    # the handshake ----------------------------------------------------------

    def check(
        self,
        device_id: str,
        public_key: str,
        role: str,
        scopes: list[str],
        facts: ClientFacts,
        *,
        auto_approve: bool,
    ) -> PairingOutcome:
        """Whether ``device_id`` may connect in ``role`` with ``scopes`` (see the module)."""
        with self._lock:
            paired = self.paired()
            entry = paired.get(device_id)
            if (
                entry is not None
                and entry.get("publicKey") == public_key
                and role in _roles(entry)
                and _covers(entry.get("scopes") or [], scopes)
            ):
                entry.update(facts.record())
                entry["lastSeenAtMs"] = now_ms()
                paired[device_id] = entry
                self._write("paired.json", paired)
                return PairingOutcome(True, self.ensure_token(device_id, role, scopes))
            request, created = self._request(device_id, public_key, role, scopes, facts, entry)
            if not auto_approve:
                return PairingOutcome(False, request=request, created=created)
            self.approve(request["requestId"])
            token = self.ensure_token(device_id, role, scopes)
            return PairingOutcome(True, token, request, newly_approved=True)

    def _request(
        self,
        device_id: str,
        public_key: str,
        role: str,
        scopes: list[str],
        facts: ClientFacts,
        entry: dict[str, Any] | None,
    ) -> tuple[dict[str, Any], bool]:
        pending = self.pending()
        for request in pending.values():
            if request.get("deviceId") == device_id and request.get("publicKey") == public_key:
                return request, False
        request_id = str(uuid.uuid4())
        request = _clean(
            {
                "requestId": request_id,
                "deviceId": device_id,
                "publicKey": public_key,
                **facts.record(),
                "role": role,
                "roles": [role],
                "scopes": _normalized(scopes),
                "isRepair": entry is not None,
                "ts": now_ms(),
            }
        )
        # A request by another key for the same id never replaces the open one's.
        pending[request_id] = request
        self._write("pending.json", pending)
        return request, True

    # operator actions -------------------------------------------------------

    def approve(self, request_id: str) -> dict[str, Any] | None:
        """Approve a pending request: the device's roles and scopes grow by what it
        asked for, its role gets a fresh token. ``None`` for an unknown request."""
        with self._lock:
            pending = self.pending()
            request = pending.pop(request_id, None)
            if request is None:
                return None
            now = now_ms()
            paired = self.paired()
            device_id = request["deviceId"]
            existing = paired.get(device_id)
            if existing is not None and existing.get("publicKey") != request.get("publicKey"):
                existing = None  # a new key for this id: the old record and its tokens go
            tokens = dict((existing or {}).get("tokens") or {})
            role = request.get("role")
            scopes = _normalized(request.get("scopes"))
            if role:
                before = tokens.get(role) or {}
                tokens[role] = _clean(
                    {
                        "token": new_token(),
                        "role": role,
                        "scopes": scopes,
                        "createdAtMs": before.get("createdAtMs", now),
                        "rotatedAtMs": now if before else None,
                        "lastUsedAtMs": before.get("lastUsedAtMs"),
                    }
                )
            device = _clean(
                {
                    **(existing or {}),
                    "deviceId": device_id,
                    "publicKey": request.get("publicKey"),
                    "displayName": request.get("displayName"),
                    "platform": request.get("platform"),
                    "clientId": request.get("clientId"),
                    "clientMode": request.get("clientMode"),
                    "role": role,
                    "roles": sorted({*_roles(existing or {}), *([role] if role else [])}),
                    "scopes": sorted({*((existing or {}).get("scopes") or []), *scopes}),
                    "remoteIp": request.get("remoteIp"),
                    "tokens": tokens,
                    "createdAtMs": (existing or {}).get("createdAtMs", now),
                    "approvedAtMs": now,
                }
            )
            paired[device_id] = device
            self._write("paired.json", paired)
            self._write("pending.json", pending)
            return device

    def reject(self, request_id: str) -> dict[str, Any] | None:
        """Drop a pending request; ``{requestId, deviceId}`` or ``None`` if unknown."""
        request = self._drop_pending(request_id)
        if request is None:
            return None
        return {"requestId": request_id, "deviceId": request["deviceId"]}

    def ensure_token(self, device_id: str, role: str, scopes: list[str]) -> dict[str, Any] | None:
        """The role's live token covering ``scopes``, made anew when there is none."""
        with self._lock:
            paired = self.paired()
            device = paired.get(device_id)
            if device is None:
                return None
            tokens = dict(device.get("tokens") or {})
            existing = tokens.get(role)
            wanted = _normalized(scopes)
            if (
                existing
                and not existing.get("revokedAtMs")
                and _covers(existing.get("scopes") or [], wanted)
            ):
                return dict(existing)
            now = now_ms()
            token = _clean(
                {
                    "token": new_token(),
                    "role": role,
                    "scopes": wanted,
                    "createdAtMs": (existing or {}).get("createdAtMs", now),
                    "rotatedAtMs": now if existing else None,
                    "lastUsedAtMs": (existing or {}).get("lastUsedAtMs"),
                }
            )
            tokens[role] = token
            device["tokens"] = tokens
            paired[device_id] = device
            self._write("paired.json", paired)
            return dict(token)

    def verify_token(self, device_id: str, role: str, token: str, scopes: list[str]) -> bool:
        """Whether ``token`` is ``device_id``'s live token for ``role``, covering
        ``scopes`` (constant-time comparison). Records its use."""
        with self._lock:
            paired = self.paired()
            device = paired.get(device_id)
            entry = ((device or {}).get("tokens") or {}).get(role)
            if not entry or entry.get("revokedAtMs"):
                return False
            stored = entry.get("token")
            if not (isinstance(stored, str) and stored and secret_equals(token, stored)):
                return False
            if not _covers(entry.get("scopes") or [], _normalized(scopes)):
                return False
            assert device is not None
            entry["lastUsedAtMs"] = now_ms()
            paired[device_id] = device
            self._write("paired.json", paired)
            return True

    def rotate(
        self, device_id: str, role: str, scopes: list[str] | None = None
    ) -> dict[str, Any] | None:
        """A new token for ``role`` (scopes: as given, else the old token's, else the
        device's). Given scopes also become the device's approved scopes.
        ``None`` for an unknown device."""
        with self._lock:
            paired = self.paired()
            device = paired.get(device_id)
            if device is None or not role.strip():
                return None
            tokens = dict(device.get("tokens") or {})
            existing = tokens.get(role) or {}
            wanted = _normalized(
                scopes if scopes is not None else existing.get("scopes", device.get("scopes"))
            )
            now = now_ms()
            token = _clean(
                {
                    "token": new_token(),
                    "role": role,
                    "scopes": wanted,
                    "createdAtMs": existing.get("createdAtMs", now),
                    "rotatedAtMs": now,
                    "lastUsedAtMs": existing.get("lastUsedAtMs"),
                }
            )
            tokens[role] = token
            device["tokens"] = tokens
            if scopes is not None:
                device["scopes"] = wanted
            paired[device_id] = device
            self._write("paired.json", paired)
            return dict(token)

    def revoke(self, device_id: str, role: str) -> dict[str, Any] | None:
        """Mark the role's token revoked; ``None`` when the device or token is unknown."""
        with self._lock:
            paired = self.paired()
            device = paired.get(device_id)
            entry = ((device or {}).get("tokens") or {}).get(role)
            if device is None or not entry:
                return None
            entry = {**entry, "revokedAtMs": now_ms()}
            device["tokens"] = {**device["tokens"], role: entry}
            paired[device_id] = device
            self._write("paired.json", paired)
            return entry


def _roles(entry: dict[str, Any]) -> list[str]:
    roles = entry.get("roles")
    if isinstance(roles, list) and roles:
        return [str(r) for r in roles]
    return [str(entry["role"])] if entry.get("role") else []


def _upgrade(device: dict[str, Any]) -> dict[str, Any]:
    """Records written by earlier versions kept tokens as bare strings."""
    tokens = device.get("tokens")
    if isinstance(tokens, dict) and any(isinstance(t, str) for t in tokens.values()):
        created = device.get("approvedAtMs", 0)
        device = {
            **device,
            "tokens": {
                role: (
                    {
                        "token": t,
                        "role": role,
                        "scopes": _normalized(device.get("scopes")),
                        "createdAtMs": created,
                    }
                    if isinstance(t, str)
                    else t
                )
                for role, t in tokens.items()
            },
        }
    return device


def redacted(device: dict[str, Any]) -> dict[str, Any]:
    """A paired record without its secrets: each token becomes a summary (upstream's
    ``device.pair.list`` shape)."""
    out = {k: v for k, v in device.items() if k != "tokens"}
    summaries = [
        {k: v for k, v in token.items() if k != "token"}
        for token in (device.get("tokens") or {}).values()
        if isinstance(token, dict)
    ]
    if summaries:
        out["tokens"] = sorted(summaries, key=lambda t: str(t.get("role")))
    return out
