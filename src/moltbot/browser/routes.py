"""The control service's route table, independent of transport.

The same table answers the HTTP server on the control port, the gateway's
``browser.request`` WebSocket method and the agent's ``browser`` tool:
``await dispatch(BrowserRequest) -> Reply``. Handlers raise
:class:`~moltbot.browser.errors.BrowserError`; the dispatcher turns it into
``{"error", "hint"?}`` with its status, and anything unexpected into a 500.

Routes (``?profile=`` or ``body.profile`` selects the browser profile):

- ``GET /``: service and profile status (never launches a browser)
- ``POST /start``, ``POST /stop``: launch/attach, or stop what this service launched
- ``GET /profiles``, ``POST /profiles/create {name, color?, cdpUrl?, cdpPort?}``,
  ``DELETE /profiles/:name``, ``POST /reset-profile``
- ``GET /tabs``, ``POST /tabs/open {url}``, ``POST /tabs/focus {targetId}``,
  ``POST /tabs/close {targetId?}`` (default: the current tab), ``DELETE /tabs/:targetId``
- ``POST /navigate {url, targetId?}``
- ``POST /screenshot {targetId?, fullPage?, ref?, type?}``: ``{mimeType, data}`` (base64)
- ``GET /snapshot ?targetId&maxChars&depth``: ``{snapshot, refs, stats}``
- ``POST /act {kind, ref?, ...}`` (see :class:`~moltbot.browser.actions.Act`)
- ``GET /console ?targetId&level&clear``
"""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from moltbot.browser import actions, status
from moltbot.browser.actions import Act, Body
from moltbot.browser.errors import BrowserError, bad_request
from moltbot.validation import Field, ValidationError

if TYPE_CHECKING:
    from moltbot.browser.service import BrowserService

log = logging.getLogger(__name__)
M = TypeVar("M", bound=Body)


@dataclass
class BrowserRequest:
    method: str
    path: str
    query: Mapping[str, str] = field(default_factory=dict)
    body: Any = None
    params: dict[str, str] = field(default_factory=dict)

    @property
    def profile(self) -> str | None:
        from_body = self.body.get("profile") if isinstance(self.body, dict) else None
        return self.query.get("profile") or from_body or None

    def parse(self, model: type[M]) -> M:
        data = self.body if isinstance(self.body, dict) else {}
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}"
                for err in exc.errors()
            )
            raise bad_request(f"invalid body for {self.method} {self.path}: {problems}") from None


@dataclass
class Reply:
    status: int
    body: Any

    @property
    def ok(self) -> bool:
        return self.status < 400


Handler = Callable[["BrowserService", BrowserRequest], Awaitable[Any]]


class Router:
    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        regex = re.sub(r":(\w+)", r"(?P<\1>[^/]+)", pattern.rstrip("/") or "/")
        self._routes.append((method, re.compile(f"^{regex}/?$"), handler))

    def route(self, method: str, pattern: str) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.add(method, pattern, handler)
            return handler

        return register

    async def dispatch(self, service: BrowserService, request: BrowserRequest) -> Reply:
        from urllib.parse import unquote

        path = "/" + request.path.strip("/")
        allowed = False
        for method, regex, handler in self._routes:
            match = regex.match(path)
            if not match:
                continue
            allowed = True
            if method != request.method.upper():
                continue
            request.params = {k: unquote(v) for k, v in match.groupdict().items()}
            try:
                return Reply(200, await handler(service, request))
            except BrowserError as exc:
                return Reply(exc.status, exc.body())
            except Exception as exc:  # a bug or an unexpected library error: keep serving
                log.exception("browser route %s %s failed", request.method, path)
                return Reply(500, {"error": f"{type(exc).__name__}: {exc}"})
        if allowed:
            return Reply(405, {"error": f"method {request.method} not allowed on {path}"})
        return Reply(404, {"error": f"no browser route {request.method} {path}"})


router = Router()
route = router.route


class CreateProfile(Body):
    name: str
    color: str | None = None
    cdp_url: str | None = None
    cdp_port: int | None = Field(default=None, ge=1, le=65535)


class OpenTab(Body):
    url: str


class TargetBody(Body):
    target_id: str


class Navigate(Body):
    url: str
    target_id: str | None = None
    timeout_ms: int | None = Field(default=None, ge=1_000, le=120_000)


class Screenshot(Body):
    target_id: str | None = None
    full_page: bool = False
    ref: str | None = None
    type: Literal["png", "jpeg"] = "png"


class Empty(Body):
    pass


def _int(query: Mapping[str, str], key: str, default: int | None) -> int | None:
    value = query.get(key)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise bad_request(f"{key} must be a number, got {value!r}") from None


def _flag(query: Mapping[str, str], key: str) -> bool:
    return str(query.get(key, "")).lower() in ("1", "true", "yes", "on")


@route("GET", "/")
async def _status(svc: BrowserService, req: BrowserRequest) -> Any:
    return await status.full_status(svc, req.profile)


@route("POST", "/start")
async def _start(svc: BrowserService, req: BrowserRequest) -> Any:
    spec = await svc.supervisor.ensure(req.profile)
    return {
        "ok": True,
        "profile": spec.name,
        "running": True,
        **(await status.profile_status(svc, spec.name)),
    }


@route("POST", "/stop")
async def _stop(svc: BrowserService, req: BrowserRequest) -> Any:
    name = svc.settings.profile(req.profile).name
    stopped = await svc.supervisor.stop(name)
    return {"ok": True, "profile": name, "stopped": stopped, "running": False}


@route("GET", "/profiles")
async def _profiles(svc: BrowserService, req: BrowserRequest) -> Any:
    return {"profiles": await status.profile_list(svc)}


@route("POST", "/profiles/create")
async def _create(svc: BrowserService, req: BrowserRequest) -> Any:
    body = req.parse(CreateProfile)
    return await svc.profiles.create(
        body.name, color=body.color, cdp_url=body.cdp_url, cdp_port=body.cdp_port
    )


@route("DELETE", "/profiles/:name")
async def _delete(svc: BrowserService, req: BrowserRequest) -> Any:
    return await svc.delete_profile(req.params["name"])


@route("POST", "/reset-profile")
async def _reset(svc: BrowserService, req: BrowserRequest) -> Any:
    return await svc.reset_profile(req.profile)


@route("GET", "/tabs")
async def _tabs(svc: BrowserService, req: BrowserRequest) -> Any:
    return await svc.tabs.list(req.profile)


@route("POST", "/tabs/open")
async def _open(svc: BrowserService, req: BrowserRequest) -> Any:
    body = req.parse(OpenTab)
    return await svc.tabs.open(req.profile, body.url)


@route("POST", "/tabs/focus")
async def _focus(svc: BrowserService, req: BrowserRequest) -> Any:
    body = req.parse(TargetBody)
    return {"ok": True, "targetId": await svc.tabs.focus(req.profile, body.target_id)}


class CloseTab(Body):
    target_id: str | None = None


@route("POST", "/tabs/close")
async def _close_current(svc: BrowserService, req: BrowserRequest) -> Any:
    body = req.parse(CloseTab)
    return {"ok": True, "targetId": await svc.tabs.close(req.profile, body.target_id)}


@route("DELETE", "/tabs/:target_id")
async def _close(svc: BrowserService, req: BrowserRequest) -> Any:
    closed = await svc.tabs.close(req.profile, req.params["target_id"])
    return {"ok": True, "targetId": closed}


@route("POST", "/navigate")
async def _navigate(svc: BrowserService, req: BrowserRequest) -> Any:
    body = req.parse(Navigate)
    page, target = await svc.tabs.page(req.profile, body.target_id, "navigate")
    return {
        **(await actions.navigate(page, body.url, body.timeout_ms or 20_000)),
        "targetId": target,
    }


@route("POST", "/screenshot")
async def _screenshot(svc: BrowserService, req: BrowserRequest) -> Any:
    body = req.parse(Screenshot)
    page, target = await svc.tabs.page(req.profile, body.target_id, "screenshot")
    if body.ref:
        svc.pw.check_ref(page, body.ref)
    data = await actions.screenshot(
        page, full_page=body.full_page, ref=body.ref, image_type=body.type
    )
    return {
        "ok": True,
        "targetId": target,
        "url": page.url,
        "mimeType": f"image/{body.type}",
        "bytes": len(data),
        "data": base64.b64encode(data).decode("ascii"),
    }


@route("GET", "/snapshot")
async def _snapshot(svc: BrowserService, req: BrowserRequest) -> Any:
    page, target = await svc.tabs.page(req.profile, req.query.get("targetId"), "snapshot")
    max_chars = _int(req.query, "maxChars", actions.DEFAULT_MAX_CHARS)
    result = await actions.snapshot(
        page, max_chars=max_chars or None, depth=_int(req.query, "depth", None)
    )
    svc.pw.remember_refs(page, set(result["refs"]))
    return {"ok": True, "targetId": target, **result}


@route("POST", "/act")
async def _act(svc: BrowserService, req: BrowserRequest) -> Any:
    body = req.parse(Act)
    page, target = await svc.tabs.page(req.profile, body.target_id, f"act:{body.kind}")
    for ref in [body.ref, *(f.ref for f in body.fields or [])]:
        if ref:
            svc.pw.check_ref(page, ref)
    return {**(await actions.act(page, body)), "targetId": target}


@route("GET", "/console")
async def _console(svc: BrowserService, req: BrowserRequest) -> Any:
    page, target = await svc.tabs.page(req.profile, req.query.get("targetId"), "console")
    messages = svc.pw.console(page)
    level = req.query.get("level")
    if level:
        messages = [m for m in messages if m["type"] == level]
    if _flag(req.query, "clear"):
        svc.pw.clear_console(page)
    return {"ok": True, "targetId": target, "messages": messages}
