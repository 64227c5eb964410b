"""``exec``: run a command in the workspace.

Policy ``tools.exec.security``:

- ``deny``: the tool is not offered;
- ``allowlist`` (default): one command the allowlist mode can vouch for
  (:mod:`.exec_policy`: a listed binary on the gateway's PATH, no shell syntax,
  per-binary argument rules, file arguments confined to the workspace, no
  loader/interpreter variables from the model). Anything else needs an
  operator's approval (:class:`~.exec_policy.NeedsApproval`);
- ``full``: ``/bin/sh -c <command>``.

Every command runs in its own process group with cwd = the workspace (or a
``workdir`` inside it), a timeout, an output cap (head and tail kept), an
environment without the gateway's identity variables or any secret-looking
variable, and — when ``tools.exec.sandbox`` allows — inside bubblewrap
(:mod:`.sandbox`). A cancelled call (``chat.abort``, the per-tool timeout)
kills the whole process group.

The approval path: a command allowlist mode cannot vouch for is handed to the
``exec.approvals`` subsystem when one is running (``ctx.lookup``; its
``decide(ApprovalRequest)`` coroutine answers True to run it once as
``/bin/sh -c``). Without one the call fails with the reason and what the
operator can do.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from pydantic import Field

from moltbot.agents.tools import sandbox
from moltbot.agents.tools.base import Tool, ToolContext, ToolError, ToolParams
from moltbot.agents.tools.confine import workspace_confinement
from moltbot.agents.tools.exec_policy import (
    NeedsApproval,
    child_env,
    plan,
    search_path,
    with_skill_env,
)
from moltbot.agents.tools.exec_rules import DEFAULT_ALLOWLIST
from moltbot.lifecycle import SubsystemKey

if TYPE_CHECKING:
    from moltbot.config.schema import Config

__all__ = ["DEFAULT_ALLOWLIST", "ApprovalRequest", "ExecTool", "child_env", "run_process"]


@dataclass(frozen=True)
class ApprovalRequest:
    """What an operator is asked to approve."""

    command: str
    reason: str
    cwd: Path
    agent_id: str
    session_key: str


class Approver(Protocol):
    async def decide(self, request: ApprovalRequest) -> bool: ...


APPROVALS: SubsystemKey[Approver] = SubsystemKey("exec.approvals")
"""Where an operator approves commands, when such a subsystem runs."""


class ExecParams(ToolParams):
    command: str = Field(description="The command line to run.")
    workdir: str | None = Field(default=None, description="Directory inside the workspace.")
    timeout: int | None = Field(default=None, ge=1, description="Seconds before it is killed.")
    env: dict[str, str] | None = Field(default=None, description="Extra environment variables.")


class ExecTool(Tool):
    name = "exec"
    description = (
        "Run a command in the workspace and return its output and exit code. "
        "Policy-limited (tools.exec.security): by default one listed command (ls, cat, grep, "
        "find, sort, ...) without shell syntax, on files inside the workspace."
    )
    Params = ExecParams

    def enabled(self, config: Config) -> bool:
        return config.tools.exec.security != "deny"

    async def run(self, ctx: ToolContext, params: ExecParams) -> str:
        policy = ctx.config.tools.exec
        if policy.security == "deny":
            raise ToolError("exec is disabled (tools.exec.security=deny)")
        if not params.command.strip():
            raise ToolError("command must not be empty")
        box = workspace_confinement(ctx)
        cwd = box.resolve(params.workdir) if params.workdir else box.root
        if not cwd.is_dir():
            raise ToolError(f"workdir {params.workdir} is not a directory")
        path = search_path(ctx.env, box)
        strict = policy.security == "allowlist"
        sandboxed = await asyncio.to_thread(sandbox.active, policy.sandbox.mode, path)
        try:
            env = child_env(ctx.env, params.env, strict=strict, path=path)
            if strict:
                allowlist = policy.allowlist if policy.allowlist is not None else DEFAULT_ALLOWLIST
                argv = plan(params.command, allowlist, path, cwd, box, sandboxed=sandboxed).argv
            else:
                argv = ["/bin/sh", "-c", params.command]
        except NeedsApproval as exc:
            await self._approve(ctx, params.command, exc.reason, cwd)
            env = child_env(ctx.env, params.env, path=path)
            argv = ["/bin/sh", "-c", params.command]
        env = with_skill_env(env, ctx.skill_env)
        env["PWD"] = str(cwd)
        argv = await asyncio.to_thread(
            sandbox.command,
            argv,
            mode=policy.sandbox.mode,
            search_path=path,
            workspace=box.root,
            cwd=cwd,
            hidden=box.protected,
            network=policy.sandbox.network,
        )
        timeout = min(params.timeout or policy.timeout_seconds, policy.timeout_seconds)
        return await run_process(argv, cwd, env, timeout, policy.max_output_chars, params.command)

    @staticmethod
    async def _approve(ctx: ToolContext, command: str, reason: str, cwd: Path) -> None:
        approver = ctx.lookup(APPROVALS)
        if approver is not None:
            request = ApprovalRequest(command, reason, cwd, ctx.agent_id, ctx.session_key)
            if await approver.decide(request):
                return
            raise ToolError(f"exec: an operator denied running this command ({reason})")
        raise NeedsApproval(
            f"needs an operator's approval: {reason}. No approval channel is available, so "
            "it was not run; ask the user to run it, or an operator can widen "
            "tools.exec.allowlist or set tools.exec.security=full"
        )


async def run_process(
    argv: list[str], cwd: Path, env: Mapping[str, str], timeout: float, cap: int, shown: str
) -> str:
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            cwd=cwd,
            env=dict(env),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as exc:
        raise ToolError(f"cannot start {argv[0]}: {exc.strerror}") from None
    head = bytearray()
    tail = bytearray()
    total = 0
    half = max(cap // 2, 50)

    async def pump() -> None:
        nonlocal total
        assert proc.stdout is not None
        while chunk := await proc.stdout.read(65536):
            total += len(chunk)
            room = half - len(head)
            if room > 0:
                head.extend(chunk[:room])
                chunk = chunk[room:]
            if chunk:
                tail.extend(chunk)
                del tail[:-half]

    timed_out = False
    try:
        try:
            await asyncio.wait_for(asyncio.gather(pump(), proc.wait()), timeout)
        except TimeoutError:
            timed_out = True
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(Exception):
                await asyncio.shield(proc.wait())
    output = head.decode(errors="replace")
    if tail:
        skipped = total - len(head) - len(tail)
        if skipped > 0:
            output += f"\n[... {skipped} bytes of output omitted ...]\n"
        output += tail.decode(errors="replace")
    status = (
        f"timed out after {timeout:g}s (killed)" if timed_out else f"exit code {proc.returncode}"
    )
    return f"$ {shown}\n{output.rstrip()}\n[{status}]"
