"""The gateway-owned node pairing store (``node.pair.*``): ``<state>/nodes/``.

Upstream keeps this store apart from device pairing: a client asks for it with
``node.pair.request`` and an operator approves it; the approved node gets a token
that ``node.pair.verify`` checks. It does **not** gate the WebSocket handshake —
nodes that connect (``role: node``, such as ``moltbot node run``) are paired as
devices (:mod:`.pairing`). ``node.rename`` stores a display name here, which
``node.list`` prefers. Requests expire after 5 minutes; writes are atomic.
"""

from __future__ import annotations

import uuid
from typing import Any

from moltbot.devices.pairing import PairingFiles, _clean, new_token, now_ms
from moltbot.security.secrets import secret_equals

__all__ = ["NODE_FIELDS", "NodePairing"]

NODE_FIELDS = (
    "displayName",
    "platform",
    "version",
    "coreVersion",
    "uiVersion",
    "deviceFamily",
    "modelIdentifier",
    "caps",
    "commands",
    "remoteIp",
)
"""What a node says about itself in ``node.pair.request`` (kept on its record)."""


class NodePairing(PairingFiles):
    """``<state>/nodes/{paired,pending}.json``."""

    def request(self, node_id: str, facts: dict[str, Any], *, silent: bool) -> dict[str, Any]:
        """``{status: "pending", request, created}``; a node has one open request."""
        with self._lock:
            pending = self.pending()
            for request in pending.values():
                if request.get("nodeId") == node_id:
                    return {"status": "pending", "request": request, "created": False}
            request = _clean(
                {
                    "requestId": str(uuid.uuid4()),
                    "nodeId": node_id,
                    **{k: facts.get(k) for k in NODE_FIELDS},
                    "silent": silent or None,
                    "isRepair": node_id in self.paired(),
                    "ts": now_ms(),
                }
            )
            pending[request["requestId"]] = request
            self._write("pending.json", pending)
            return {"status": "pending", "request": request, "created": True}

    def approve(self, request_id: str) -> dict[str, Any] | None:
        """``{requestId, node}`` (the node with its new token), ``None`` if unknown."""
        with self._lock:
            pending = self.pending()
            request = pending.pop(request_id, None)
            if request is None:
                return None
            paired = self.paired()
            now = now_ms()
            node_id = request["nodeId"]
            node = _clean(
                {
                    "nodeId": node_id,
                    "token": new_token(),
                    **{k: request.get(k) for k in NODE_FIELDS},
                    "createdAtMs": paired.get(node_id, {}).get("createdAtMs", now),
                    "approvedAtMs": now,
                }
            )
            paired[node_id] = node
            self._write("paired.json", paired)
            self._write("pending.json", pending)
            return {"requestId": request_id, "node": node}

    def reject(self, request_id: str) -> dict[str, Any] | None:
        """Drop a pending request; ``{requestId, nodeId}`` or ``None`` if unknown."""
        request = self._drop_pending(request_id)
        if request is None:
            return None
        return {"requestId": request_id, "nodeId": request["nodeId"]}

    def verify(self, node_id: str, token: str) -> dict[str, Any]:
        """``{ok: true, node}`` when ``token`` is the node's (constant time), else
        ``{ok: false}``."""
        node = self.paired().get(node_id)
        stored = (node or {}).get("token")
        if node is None or not isinstance(stored, str) or not secret_equals(token, stored):
            return {"ok": False}
        return {"ok": True, "node": {k: v for k, v in node.items() if k != "token"}}

    def rename(self, node_id: str, display_name: str) -> dict[str, Any]:
        """Set the display name the gateway shows for ``node_id`` (created if needed:
        a node paired as a device may be renamed too)."""
        with self._lock:
            paired = self.paired()
            node = paired.get(node_id) or {"nodeId": node_id, "createdAtMs": now_ms()}
            node["displayName"] = display_name
            paired[node_id] = node
            self._write("paired.json", paired)
            return node

    def touch(self, node_id: str, **fields: Any) -> None:
        """Record facts of a connected node that is in this store (``lastConnectedAtMs``)."""
        with self._lock:
            paired = self.paired()
            if node_id in paired:
                paired[node_id].update(_clean(fields))
                self._write("paired.json", paired)
