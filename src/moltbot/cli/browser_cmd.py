"""`moltbot browser ...`: this instance's browser, through its control service (base+2).

The CLI talks HTTP straight to the control port of *this* instance: the port the
running gateway recorded in its runtime file, else the one the config implies.
The token comes from --token, then CLAWDBOT_GATEWAY_TOKEN (MOLTBOT_/OPENCLAW_
aliases), then gateway.auth.token.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from moltbot.cli import context

EPILOG = """\b
Examples:
  moltbot --profile rescue browser status
  moltbot browser start
  moltbot browser open https://example.com
  moltbot browser snapshot
  moltbot browser click e12
  moltbot browser type e15 "hello" --submit
  moltbot browser screenshot --out page.png
  moltbot browser --browser-profile work tabs --json
"""

START_TIMEOUT_S = 90.0


def _options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The shared options, accepted before or after the subcommand."""
    func = click.option(
        "--timeout",
        "timeout_s",
        type=float,
        default=None,
        metavar="SECONDS",
        help="Request timeout (default 30 s, 90 s for start).",
    )(func)
    func = click.option(
        "--token",
        default=None,
        metavar="TOKEN",
        help="Gateway token (default: env, then gateway.auth.token).",
    )(func)
    func = click.option("--json", "as_json", is_flag=True, default=None, help="Print JSON.")(func)
    func = click.option(
        "--browser-profile",
        "browser_profile",
        default=None,
        metavar="NAME",
        help="Browser profile (default: browser.defaultProfile or moltbot).",
    )(func)
    return func


@click.group(epilog=EPILOG)
@_options
@click.pass_context
def browser(
    ctx: click.Context,
    browser_profile: str | None,
    as_json: bool | None,
    token: str | None,
    timeout_s: float | None,
) -> None:
    """Drive this instance's browser (Chromium over CDP) via its control service.

    Exit codes: 0 ok, 2 bad input, 3 conflict (port taken, profile locked),
    6 gateway not running, 7 token refused, 9 no such profile/tab.
    """
    ctx.meta["browser.options"] = {
        "browser_profile": browser_profile,
        "as_json": as_json,
        "token": token,
        "timeout_s": timeout_s,
    }


STARTING_GRACE_S = 10.0
"""How long a command waits for the browser control port of a running gateway."""


class Session:
    """One command's view: the instance, its control port and token, and a client."""

    def __init__(self, ctx: click.Context, local: dict[str, Any]) -> None:
        from moltbot.browser.client import ControlClient
        from moltbot.gateway.target import resolve_target

        group = dict(ctx.meta.get("browser.options") or {})
        merged = {**group, **{k: v for k, v in local.items() if v is not None}}
        self.profile: str | None = merged.get("browser_profile")
        self.as_json = bool(group.get("as_json") or local.get("as_json"))
        self.timeout = merged.get("timeout_s") or 30.0
        cli = context.get(ctx)
        self.cli = cli
        self.instance, snapshot = cli.load()
        self.config = snapshot.config
        target = resolve_target(
            self.instance, self.config, cli.env, token=merged.get("token"), refuse_foreign=False
        )
        self.foreign = target.foreign and target.not_running_message(self.instance.profile)
        runtime = target.runtime or {}
        port = runtime.get("controlPort")
        self.port_source = "running gateway"
        if not isinstance(port, int):
            port, self.port_source = self.instance.control_port, "config"
        self.gateway_running = target.runtime is not None
        from moltbot.instance.running import as_running, drift, read_running

        running = read_running(self.instance)
        self.live = as_running(self.instance, running)  # the ports in use when it runs
        self.drift = drift(self.instance, running)
        self.client = ControlClient(
            port,
            target.token or target.password,
            timeout=self.timeout,
            # the gateway answers first and starts browser control right after
            starting=STARTING_GRACE_S if self.gateway_running else 0.0,
        )

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        timeout: float | None = None,
        **query: Any,
    ) -> Any:
        if self.foreign:  # never send our token to another instance's control port
            from moltbot.errors import GatewayUnreachableError

            raise GatewayUnreachableError(self.foreign)
        if self.profile:
            query.setdefault("profile", self.profile)
        return self.client.request(
            method, path, query=query, body=body, timeout=timeout or self.timeout
        )

    def emit(self, data: Any, text: str) -> None:
        context.emit(data, self.as_json, text)


def command(name: str, **kwargs: Any) -> Callable[[Callable[..., Any]], click.Command]:
    """A subcommand with the shared options and a :class:`Session` as first argument."""

    def wrap(func: Callable[..., Any]) -> click.Command:
        @functools.wraps(func)
        def run(
            browser_profile: str | None,
            as_json: bool | None,
            token: str | None,
            timeout_s: float | None,
            **params: Any,
        ) -> Any:
            ctx = click.get_current_context()
            session = Session(
                ctx,
                {
                    "browser_profile": browser_profile,
                    "as_json": as_json,
                    "token": token,
                    "timeout_s": timeout_s,
                },
            )
            return func(session, **params)

        return browser.command(name, **kwargs)(_options(run))

    return wrap


# -- status -------------------------------------------------------------------------


@command(
    "status",
    epilog="\b\nExamples:\n  moltbot --profile rescue browser status\n"
    "  moltbot browser status --json",
)
def status(session: Session) -> None:
    """Ports, profiles and browsers of this instance (works with the gateway stopped)."""
    from moltbot.errors import GatewayUnreachableError

    try:
        data = session.call("GET", "/", timeout=min(session.timeout, 10.0))
        data = {"reachable": True, **data}
    except GatewayUnreachableError:
        from moltbot.browser.facts import configured_status

        data = configured_status(
            session.instance, session.config, session.cli.env, control_port=session.client.port
        )
        data["gateway"] = "running" if session.gateway_running else "not running"
    data["instance"] = session.instance.profile
    data["drift"] = session.drift
    session.emit(data, _status_text(data, session))


def _status_text(data: dict[str, Any], session: Session) -> str:
    lines = []
    if data["reachable"]:
        state = "reachable"
    elif session.foreign:
        state = f"not reachable: {session.foreign}"
    elif data.get("gateway") == "running":
        state = "not reachable (the gateway runs, but its browser control service does not)"
    else:
        state = "not reachable: the gateway is not running"
    lines.append(f"Browser control  {data['controlUrl']}  {state}")
    lines.append(f"  instance       {session.instance.profile} (gateway port {session.live.port})")
    if session.drift:
        lines.append(f"  drift          {session.drift}")
    lines.append(f"  enabled        {str(data['enabled']).lower()}")
    first, last = data["cdpRange"]
    lines.append(f"  CDP range      {first}-{last}")
    exe = data.get("executable")
    lines.append(
        "  executable     "
        + (f"{exe['path']} ({exe['source']})" if exe else f"none: {data.get('executableError')}")
    )
    lines.append(f"  headless       {str(data['headless']).lower()} ({data['headlessReason']})")
    sandbox = "off" if data["noSandbox"] else "on"
    reason = f" ({data['noSandboxReason']})" if data.get("noSandboxReason") else ""
    lines.append(f"  sandbox        {sandbox}{reason}")
    lines.append("  profiles")
    for row in data["profiles"]:
        where = (
            f"cdpPort {row['cdpPort']}"
            if row.get("cdpPort")
            else (
                f"cdpUrl {row['cdpUrl']}"
                if row.get("cdpUrl") and not row.get("managed")
                else "cdpPort allocated when the gateway starts"
            )
        )
        if row.get("running") is None:
            state_text = "not running"
        elif row["running"]:
            pid = f", pid {row['pid']}" if row.get("pid") else ""
            state_text = f"running, {row.get('tabCount', 0)} tabs{pid}"
        else:
            state_text = "stopped"
        default = " (default)" if row.get("isDefault") else ""
        lines.append(f"    {row['name']}{default}: {where}, {state_text}")
        if row.get("conflict"):
            lines.append(f"      conflict: {row['conflict']}")
    if not data["reachable"] and data.get("gateway") != "running":
        flag = (
            ""
            if session.instance.profile == "default"
            else f"--profile {session.instance.profile} "
        )
        lines.append(
            f"Start the gateway (moltbot {flag}gateway), then: moltbot {flag}browser start"
        )
    return "\n".join(lines)


# -- lifecycle ----------------------------------------------------------------------


def _describe_running(data: dict[str, Any]) -> str:
    if not data.get("running"):
        return f"browser {data.get('profile')}: stopped"
    parts = [f"CDP port {data['cdpPort']}" if data.get("cdpPort") else f"cdpUrl {data['cdpUrl']}"]
    if data.get("pid"):
        parts.insert(0, f"pid {data['pid']}")
    if data.get("startupMs"):
        parts.append(f"started in {data['startupMs']} ms")
    return f"browser {data.get('profile')}: running ({', '.join(parts)})"


@command("start", epilog="\b\nExample:\n  moltbot --profile rescue browser start")
def start(session: Session) -> None:
    """Launch the profile's Chromium (or attach to its cdpUrl)."""
    data = session.call("POST", "/start", timeout=max(session.timeout, START_TIMEOUT_S))
    session.emit(data, _describe_running(data))


@command("stop", epilog="\b\nExample:\n  moltbot browser stop")
def stop(session: Session) -> None:
    """Stop the profile's Chromium (only one this gateway launched)."""
    data = session.call("POST", "/stop")
    text = f"browser {data['profile']}: " + ("stopped" if data["stopped"] else "was not running")
    session.emit(data, text)


# -- profiles -----------------------------------------------------------------------


@command("profiles", epilog="\b\nExample:\n  moltbot browser profiles --json")
def profiles(session: Session) -> None:
    """List browser profiles with their CDP port or URL and state."""
    data = session.call("GET", "/profiles")
    lines = []
    for row in data["profiles"]:
        flags = "".join(
            [
                " [default]" if row.get("isDefault") else "",
                " [remote]" if row.get("isRemote") else "",
            ]
        )
        state = f"running ({row.get('tabCount', 0)} tabs)" if row["running"] else "stopped"
        where = f"port: {row['cdpPort']}" if row.get("cdpPort") else f"cdpUrl: {row['cdpUrl']}"
        lines.append(f"{row['name']}: {state}{flags}\n  {where}, color: {row['color']}")
    session.emit(data, "\n".join(lines))


@command(
    "create-profile",
    epilog="\b\nExamples:\n  moltbot browser create-profile work\n"
    "  moltbot browser create-profile shared --cdp-url http://127.0.0.1:9222",
)
@click.argument("name")
@click.option("--color", default=None, help="#RRGGBB (default: next palette colour).")
@click.option("--cdp-url", default=None, help="Attach to this running Chrome; never launch.")
@click.option(
    "--cdp-port",
    type=click.IntRange(1, 65535),
    default=None,
    help="Explicit CDP port (default: next free port of this instance's range).",
)
def create_profile(
    session: Session, name: str, color: str | None, cdp_url: str | None, cdp_port: int | None
) -> None:
    """Create browser profile NAME (persisted as browser.profiles.NAME)."""
    body = {"name": name, "color": color, "cdpUrl": cdp_url, "cdpPort": cdp_port}
    data = session.call("POST", "/profiles/create", {k: v for k, v in body.items() if v})
    where = f"CDP port {data['cdpPort']}" if data.get("cdpPort") else f"cdpUrl {data['cdpUrl']}"
    session.emit(data, f"created browser profile {name} ({where}, color {data['color']})")


@command("delete-profile", epilog="\b\nExample:\n  moltbot browser delete-profile work")
@click.argument("name")
def delete_profile(session: Session, name: str) -> None:
    """Stop and delete browser profile NAME (its data goes to <state>/browser/.trash)."""
    data = session.call("DELETE", f"/profiles/{name}")
    moved = f"; data moved to {data['movedTo']}" if data.get("movedTo") else ""
    session.emit(data, f"deleted browser profile {name}{moved}")


@command(
    "reset-profile", epilog="\b\nExample:\n  moltbot browser --browser-profile work reset-profile"
)
def reset_profile(session: Session) -> None:
    """Stop the browser and move its user data away (a fresh browser profile)."""
    data = session.call("POST", "/reset-profile")
    text = (
        f"reset {data['profile']}: user data moved to {data['to']}"
        if data["moved"]
        else f"reset {data['profile']}: there was no user data"
    )
    session.emit(data, text)


# -- tabs and pages -------------------------------------------------------------------


@command("tabs", epilog="\b\nExample:\n  moltbot browser tabs")
def tabs(session: Session) -> None:
    """List open tabs."""
    data = session.call("GET", "/tabs")
    if not data["tabs"]:
        text = "No tabs (browser not running)." if not data["running"] else "No tabs."
    else:
        text = "\n".join(
            f"{i}. {t['title'] or '(untitled)'}\n   {t['url']}\n   id: {t['targetId']}"
            for i, t in enumerate(data["tabs"], 1)
        )
    session.emit(data, text)


@command("open", epilog="\b\nExample:\n  moltbot browser open https://example.com")
@click.argument("url")
def open_tab(session: Session, url: str) -> None:
    """Open URL in a new tab (starts the browser if needed)."""
    data = session.call(
        "POST", "/tabs/open", {"url": url}, timeout=max(session.timeout, START_TIMEOUT_S)
    )
    session.emit(data, f"opened: {data['url']}\nid: {data['targetId']}")


@command("focus", epilog="\b\nExample:\n  moltbot browser focus 3F2A")
@click.argument("target")
def focus(session: Session, target: str) -> None:
    """Bring tab TARGET (id or unique id prefix) to the front."""
    data = session.call("POST", "/tabs/focus", {"targetId": target})
    session.emit(data, f"focused: {data['targetId']}")


@command("close", epilog="\b\nExamples:\n  moltbot browser close\n  moltbot browser close 3F2A")
@click.argument("target", required=False)
def close(session: Session, target: str | None) -> None:
    """Close tab TARGET (default: the current tab)."""
    data = session.call("POST", "/tabs/close", {"targetId": target} if target else {})
    session.emit(data, f"closed: {data['targetId']}")


def _page_body(target: str | None, **fields: Any) -> dict[str, Any]:
    body = {k: v for k, v in fields.items() if v is not None and v is not False}
    if target:
        body["targetId"] = target
    return body


_target = click.option(
    "--target", default=None, metavar="ID", help="Tab id or prefix (default: the current tab)."
)


@command("navigate", epilog="\b\nExample:\n  moltbot browser navigate https://example.com/docs")
@click.argument("url")
@_target
def navigate(session: Session, url: str, target: str | None) -> None:
    """Load URL in the current tab (starts the browser if needed)."""
    data = session.call(
        "POST",
        "/navigate",
        _page_body(target, url=url),
        timeout=max(session.timeout, START_TIMEOUT_S),
    )
    session.emit(
        data,
        f"navigated: {data['url']} ({data.get('status') or 'no status'})\n"
        f"title: {data.get('title') or ''}",
    )


@command(
    "screenshot",
    epilog="\b\nExamples:\n  moltbot browser screenshot\n"
    "  moltbot browser screenshot --full-page --out page.png",
)
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="File to write (default: ./screenshot-<profile>-<time>.png).",
)
@click.option("--full-page", is_flag=True, help="The whole page, not just the viewport.")
@click.option("--ref", default=None, help="Only this element (a ref from a snapshot).")
@_target
def screenshot(
    session: Session, out: Path | None, full_page: bool, ref: str | None, target: str | None
) -> None:
    """Save a PNG screenshot of the current tab."""
    import base64

    data = session.call(
        "POST",
        "/screenshot",
        _page_body(target, fullPage=full_page, ref=ref),
        timeout=max(session.timeout, START_TIMEOUT_S),
    )
    name = session.profile or "browser"
    path = out or Path.cwd() / f"screenshot-{name}-{time.strftime('%Y%m%d-%H%M%S')}.png"
    path.write_bytes(base64.b64decode(data["data"]))
    summary = {k: v for k, v in data.items() if k != "data"} | {"path": str(path)}
    session.emit(summary, f"saved {path} ({data['bytes']} bytes) of {data['url']}")


@command("snapshot", epilog="\b\nExample:\n  moltbot browser snapshot --max-chars 20000")
@click.option(
    "--max-chars",
    type=click.IntRange(0),
    default=None,
    help="Truncate the text (0: no limit; default 80000).",
)
@_target
def snapshot(session: Session, max_chars: int | None, target: str | None) -> None:
    """Print the page's accessibility tree with element refs (e12) for click/type."""
    query = {"maxChars": max_chars, "targetId": target}
    data = session.call(
        "GET",
        "/snapshot",
        timeout=max(session.timeout, START_TIMEOUT_S),
        **{k: v for k, v in query.items() if v is not None},
    )
    header = f"# {data.get('title') or '(untitled)'} — {data['url']}\n"
    session.emit(data, header + data["snapshot"])


def _act(session: Session, body: dict[str, Any]) -> None:
    data = session.call("POST", "/act", body)
    session.emit(data, f"{body['kind']} ok ({data['url']})")


@command("click", epilog="\b\nExample:\n  moltbot browser click e12")
@click.argument("ref")
@click.option("--double", is_flag=True, help="Double-click.")
@click.option("--button", type=click.Choice(["left", "right", "middle"]), default=None)
@_target
def click_cmd(
    session: Session, ref: str, double: bool, button: str | None, target: str | None
) -> None:
    """Click element REF (from `moltbot browser snapshot`)."""
    _act(session, _page_body(target, kind="click", ref=ref, doubleClick=double, button=button))


@command("type", epilog='\b\nExample:\n  moltbot browser type e15 "hello world" --submit')
@click.argument("ref")
@click.argument("text")
@click.option("--submit", is_flag=True, help="Press Enter afterwards.")
@click.option("--slowly", is_flag=True, help="Type key by key instead of filling.")
@_target
def type_cmd(
    session: Session, ref: str, text: str, submit: bool, slowly: bool, target: str | None
) -> None:
    """Type TEXT into element REF."""
    _act(session, _page_body(target, kind="type", ref=ref, text=text, submit=submit, slowly=slowly))


@command("press", epilog="\b\nExample:\n  moltbot browser press Enter")
@click.argument("key")
@_target
def press(session: Session, key: str, target: str | None) -> None:
    """Press KEY in the current tab: Enter, Tab, Control+A, ..."""
    _act(session, _page_body(target, kind="press", key=key))


@command("console", epilog="\b\nExample:\n  moltbot browser console --level error")
@click.option("--level", default=None, help="Only this type (log, error, warning, ...).")
@_target
def console(session: Session, level: str | None, target: str | None) -> None:
    """Console messages of the current tab (since the service attached to it)."""
    query = {k: v for k, v in {"level": level, "targetId": target}.items() if v}
    data = session.call("GET", "/console", **query)
    text = "\n".join(f"[{m['type']}] {m['text']}" for m in data["messages"]) or "No messages."
    session.emit(data, text)
