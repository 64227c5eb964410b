"""``GET /__moltbot__/media/<agent>/<signature>/<path>``: a session's stored
attachment, for the Control UI's ``<img>`` tags (which cannot send a bearer token).

``chat.history`` gives every attachment block a ``url`` of this form; the
signature is an HMAC of the agent and the file's path under the agent's media
dir, keyed by the gateway token (or password), so a URL works only for that
file, only while the secret is unchanged, and cannot be forged or walked. The
usual guard applies first (loopback ``Host`` on a loopback bind, own ``Origin``).
Images that model APIs accept are served inline; anything else as a download
(``Content-Disposition: attachment``), with ``nosniff`` and a CSP that runs nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import mimetypes
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from aiohttp import web

from moltbot.gateway.http.guard import refuse_foreign
from moltbot.sessions.media import MODEL_IMAGE_TYPES, MediaStore

if TYPE_CHECKING:
    from moltbot.gateway.runtime import GatewayRuntime

PREFIX = "/__moltbot__/media"
_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
    "Cache-Control": "private, max-age=3600",
    "Referrer-Policy": "no-referrer",
}


def _key(runtime: GatewayRuntime) -> bytes:
    secret = runtime.auth.token or runtime.auth.password or ""
    return hashlib.sha256(b"moltbot media url\0" + secret.encode()).digest()


def signature(runtime: GatewayRuntime, agent_id: str, rel: str) -> str:
    mac = hmac.new(_key(runtime), f"{agent_id}\0{rel}".encode(), hashlib.sha256)
    return mac.hexdigest()[:32]


def media_url(runtime: GatewayRuntime, agent_id: str, path: str) -> str | None:
    """The URL of a stored attachment of ``agent_id`` (None for a path outside its store)."""
    root = MediaStore(runtime.instance.sessions_dir(agent_id)).root
    try:
        rel = Path(path).relative_to(root).as_posix()
    except ValueError:
        return None
    return f"{PREFIX}/{quote(agent_id)}/{signature(runtime, agent_id, rel)}/{quote(rel)}"


def with_urls(runtime: GatewayRuntime, agent_id: str, history: dict[str, Any]) -> dict[str, Any]:
    """``chat.history``'s messages with a ``url`` on every attachment block (and no
    local path: clients need not know the state dir)."""
    for message in history.get("messages") or ():
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, list):
            continue
        for index, block in enumerate(content):
            if (
                isinstance(block, dict)
                and block.get("type") in ("image", "file")
                and "path" in block
            ):
                shown = {k: v for k, v in block.items() if k != "path"}
                url = media_url(runtime, agent_id, str(block["path"]))
                if url:
                    shown["url"] = url
                content[index] = shown
    return history


def setup_routes(app: web.Application, runtime: GatewayRuntime) -> None:
    app.router.add_get(PREFIX + "/{agent}/{sig}/{rel:.+}", _serve)


async def _serve(request: web.Request) -> web.StreamResponse:
    from moltbot.gateway.server import RUNTIME_KEY

    runtime = request.app[RUNTIME_KEY]
    _, refusal = refuse_foreign(request, runtime)
    if refusal is not None:
        return refusal
    agent_id = request.match_info["agent"]
    rel = request.match_info["rel"]
    from moltbot.agents.roster import agent_specs

    known = {spec.id for spec in agent_specs(runtime.config, runtime.instance)}
    if agent_id not in known or not hmac.compare_digest(
        request.match_info["sig"], signature(runtime, agent_id, rel)
    ):
        raise web.HTTPNotFound()
    store = MediaStore(runtime.instance.sessions_dir(agent_id))
    path = store.root / rel
    if ".." in Path(rel).parts or not store.owns(path):
        raise web.HTTPNotFound()
    headers = dict(_HEADERS)
    mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if mime not in MODEL_IMAGE_TYPES:
        headers["Content-Disposition"] = "attachment"
    return web.FileResponse(path, headers={**headers, "Content-Type": mime})
