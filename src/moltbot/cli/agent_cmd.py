"""`moltbot agent`: one agent turn from the command line, streamed."""

from __future__ import annotations

import asyncio
import sys
import uuid
from typing import Any

import click

from moltbot.cli import context

EPILOG = """\b
Examples:
  moltbot agent --message "What is on my todo list?"
  moltbot agent -m "Summarise notes.md" --agent ops --session agent:ops:cli
  moltbot agent -m "hello" --local          # no gateway needed
  moltbot --profile rescue agent -m "status?" --json

\b
Exit codes: 0 answered; 1 the run failed (model error, timeout); 2 bad usage;
6 no gateway answered (start one, or use --local); 7 credentials refused.
"""


@click.command(epilog=EPILOG)
@click.option("-m", "--message", required=True, help="What to say to the agent.")
@click.option("--agent", "agent_id", metavar="ID", help="Agent id (default: the default agent).")
@click.option(
    "--session",
    "session_key",
    metavar="KEY",
    help="Session key (default: the agent's main session, agent:<id>:main).",
)
@click.option(
    "--local", is_flag=True, help="Run the agent in this process instead of through the gateway."
)
@click.option(
    "--timeout",
    type=float,
    metavar="SECONDS",
    help="Run timeout (default: agents.defaults.timeoutSeconds).",
)
@click.option("--url", help="Gateway WebSocket URL (default: this instance's gateway).")
@click.option("--token", help="Gateway token (default: from env/config).")
@click.option("--json", "as_json", is_flag=True, help="Print the final result as JSON.")
def agent(
    message: str,
    agent_id: str | None,
    session_key: str | None,
    local: bool,
    timeout: float | None,
    url: str | None,
    token: str | None,
    as_json: bool,
) -> None:
    """Send MESSAGE to an agent and stream the reply to stdout.

    Through the running gateway by default (its WebSocket, so the turn shows up
    in every connected WebChat); --local runs the agent embedded in this process
    with the same config, workspace and sessions.
    """
    cli = context.get()
    instance, snapshot = cli.load()
    if local:
        result = asyncio.run(
            _run_local(
                instance, snapshot.config, cli.env, message, agent_id, session_key, timeout, as_json
            )
        )
    else:
        from moltbot.gateway.target import resolve_target

        target = resolve_target(instance, snapshot.config, cli.env, url=url, token=token)
        result = asyncio.run(_run_remote(target, message, agent_id, session_key, timeout, as_json))
    _finish(result, as_json)


def _finish(result: dict[str, Any], as_json: bool) -> None:
    from moltbot.errors import MoltbotError

    if as_json:
        context.emit_json(result)
    elif result.get("status") == "ok" and not result.get("streamed"):
        click.echo(result.get("text", ""))
    if result.get("status") != "ok":
        raise MoltbotError(f"agent run {result.get('status')}: {result.get('error')}")
    if result.get("stopReason") == "notice":
        raise MoltbotError(
            "no AI model is configured (see above)",
            hint="run `moltbot onboard` or set agents.defaults.model",
        )


class _Printer:
    """Streams assistant text to stdout, tool activity to stderr."""

    def __init__(self, run_id: str | None, quiet: bool) -> None:
        self.run_id = run_id
        self.quiet = quiet
        self.text = ""

    def __call__(self, event: str, payload: dict[str, Any]) -> None:
        if self.quiet or event != "agent" or (self.run_id and payload.get("runId") != self.run_id):
            return
        data = payload.get("data") or {}
        stream = payload.get("stream")
        if stream == "assistant":
            text = data.get("text", "")
            if data.get("reset") or not text.startswith(self.text):
                sys.stdout.write("\n")  # a fallback model restarted the reply
                self.text = ""
            sys.stdout.write(text[len(self.text) :])
            sys.stdout.flush()
            self.text = text
        elif stream == "tool" and data.get("phase") == "start":
            click.echo(click.style(f"[{data.get('name')}]", dim=True), err=True)
        elif stream == "tool" and data.get("phase") == "result" and data.get("isError"):
            click.echo(
                click.style(
                    f"[{data.get('name')} failed: {str(data.get('result'))[:200]}]", dim=True
                ),
                err=True,
            )

    def done(self) -> None:
        if not self.quiet and self.text and not self.text.endswith("\n"):
            sys.stdout.write("\n")
            sys.stdout.flush()


async def _run_local(
    instance: Any,
    config: Any,
    env: dict[str, str],
    message: str,
    agent_id: str | None,
    session_key: str | None,
    timeout: float | None,
    as_json: bool,
) -> dict[str, Any]:
    import logging

    from moltbot.agents.runtime import embedded

    printer = _Printer(None, as_json)
    runtime = embedded(instance, config, env, logger=logging.getLogger("moltbot.agents"))
    await runtime.start()
    try:
        run = await runtime.submit(
            agent_id, session_key, message, timeout=timeout, channel="cli", watcher=printer
        )
        assert run.done is not None
        try:
            await run.done
        except (KeyboardInterrupt, asyncio.CancelledError):
            await runtime.abort(run.session_key, run.id, reason="interrupted")
            raise
    finally:
        await runtime.stop()
    printer.done()
    out: dict[str, Any] = {
        "runId": run.id,
        "status": str(run.state),
        "text": run.text,
        "sessionKey": run.session_key,
        "model": run.model,
        "stopReason": run.stop_reason,
        "usage": run.usage(),
        "streamed": not as_json and bool(run.text),
    }
    if run.error:
        out["error"] = run.error
    return out


async def _run_remote(
    target: Any,
    message: str,
    agent_id: str | None,
    session_key: str | None,
    timeout: float | None,
    as_json: bool,
) -> dict[str, Any]:
    import json
    import platform

    import aiohttp

    from moltbot import __version__
    from moltbot.errors import AuthError, GatewayUnreachableError, MoltbotError

    run_id = str(uuid.uuid4())
    printer = _Printer(run_id, as_json)
    params: dict[str, Any] = {"message": message, "idempotencyKey": run_id}
    if agent_id:
        params["agentId"] = agent_id
    if session_key:
        params["sessionKey"] = session_key
    if timeout:
        params["timeout"] = timeout
    hint = "start it with `moltbot gateway`, or run embedded with --local"
    try:
        async with (
            aiohttp.ClientSession() as http,
            http.ws_connect(target.url, max_msg_size=0, heartbeat=None) as ws,
        ):
            challenge = await ws.receive_json(timeout=10)
            if challenge.get("event") != "connect.challenge":
                raise MoltbotError(f"{target.url} does not speak the gateway protocol")
            auth = {k: v for k, v in (("token", target.token), ("password", target.password)) if v}
            await ws.send_json(
                {
                    "type": "req",
                    "id": "connect",
                    "method": "connect",
                    "params": {
                        "minProtocol": 3,
                        "maxProtocol": 3,
                        "auth": auth,
                        "client": {
                            "id": "cli",
                            "mode": "cli",
                            "version": __version__,
                            "platform": platform.system().lower(),
                        },
                    },
                }
            )
            hello = await ws.receive_json(timeout=10)
            if not hello.get("ok"):
                error = (hello.get("error") or {}).get("message", "refused")
                raise AuthError(f"gateway at {target.url} refused the connection: {error}")
            await ws.send_json({"type": "req", "id": "agent", "method": "agent", "params": params})
            try:
                async for frame_msg in ws:
                    if frame_msg.type != aiohttp.WSMsgType.TEXT:
                        break
                    frame = json.loads(frame_msg.data)
                    if frame.get("type") == "event":
                        printer(frame.get("event"), frame.get("payload") or {})
                    elif frame.get("type") == "res" and frame.get("id") == "agent":
                        payload = frame.get("payload") or {}
                        if frame.get("ok") and payload.get("status") == "accepted":
                            continue
                        printer.done()
                        if frame.get("ok"):
                            result = payload.get("result") or {}
                            return {
                                "runId": run_id,
                                "status": "ok",
                                **result,
                                "streamed": not as_json and bool(result.get("text")),
                            }
                        error = frame.get("error") or {}
                        return {
                            "runId": run_id,
                            "status": "error",
                            "code": error.get("code"),
                            "error": error.get("message"),
                        }
            except asyncio.CancelledError:
                await ws.send_json(
                    {
                        "type": "req",
                        "id": "abort",
                        "method": "chat.abort",
                        "params": {
                            "sessionKey": session_key
                            or (f"agent:{agent_id}:main" if agent_id else "main"),
                            "runId": run_id,
                        },
                    }
                )
                raise
    except aiohttp.ClientConnectorError as exc:
        raise GatewayUnreachableError(
            f"no gateway at {target.url} ({exc.os_error})", hint=hint
        ) from None
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise GatewayUnreachableError(
            f"gateway at {target.url}: {exc or type(exc).__name__}", hint=hint
        ) from None
    raise GatewayUnreachableError(f"gateway at {target.url} closed the connection", hint=hint)
