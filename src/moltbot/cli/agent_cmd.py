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
    from moltbot.errors import GatewayUnreachableError, MethodError
    from moltbot.gateway.client import GatewayClient
    from moltbot.sessions.keys import main_key

    run_id = str(uuid.uuid4())
    printer = _Printer(run_id, as_json)
    params: dict[str, Any] = {"message": message, "idempotencyKey": run_id}
    if agent_id:
        params["agentId"] = agent_id
    if session_key:
        params["sessionKey"] = session_key
    if timeout:
        params["timeout"] = timeout
    try:
        async with GatewayClient.for_target(target, timeout=10.0) as client:
            stream = client.stream("agent", params, timeout=None)
            try:
                async for event in stream:
                    printer(event.name, event.payload or {})
            except asyncio.CancelledError:  # interrupted: the run must not go on without us
                abort_key = session_key or (main_key(agent_id) if agent_id else "main")
                await client.notify("chat.abort", {"sessionKey": abort_key, "runId": run_id})
                raise
    except MethodError as exc:
        printer.done()
        return {"runId": run_id, "status": "error", "code": exc.code, "error": exc.reason}
    except GatewayUnreachableError as exc:
        exc.hint = exc.hint or "start it with `moltbot gateway`, or run embedded with --local"
        raise
    printer.done()
    result = stream.result.get("result") or {}
    return {
        "runId": run_id,
        "status": "ok",
        **result,
        "streamed": not as_json and bool(result.get("text")),
    }
