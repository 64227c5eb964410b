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

The approval path (``tools.exec.ask``): a command allowlist mode cannot vouch
for — or, with ``ask: always``, any command — is handed to the ``exec.approvals``
subsystem when one is running (``ctx.lookup(APPROVALS)``). Its ``policy(agent)``
may tighten ``security``/``ask`` and adds the agent's approved executables
(patterns of the approvals file: such a command runs as is, without a shell);
its ``decide(ApprovalRequest)`` coroutine answers True to run the command
(``/bin/sh -c`` when the policy could not vouch for it). With ``ask: off``, or
without an approvals subsystem, the call fails with the reason and what the
operator can do.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from moltbot.agents.tools import sandbox
from moltbot.agents.tools.base import Tool, ToolContext, ToolError, ToolParams
from moltbot.agents.tools.confine import workspace_confinement
from moltbot.agents.tools.exec_policy import (
    NeedsApproval,
    child_env,
    plan,
    search_path,
    split_command,
    with_skill_env,
)
from moltbot.agents.tools.exec_rules import DEFAULT_ALLOWLIST
from moltbot.lifecycle import SubsystemKey
from moltbot.validation import Field

if TYPE_CHECKING:
    from moltbot.config.schema import Config
    from moltbot.sessions.origin import Origin

__all__ = [
    "APPROVALS",
    "DEFAULT_ALLOWLIST",
    "ApprovalRequest",
    "ExecTool",
    "approved_binary",
    "child_env",
    "executable_of",
    "Prepared",
    "ProcessResult",
    "execute",
    "run_process",
]


@dataclass(frozen=True)
class ApprovalRequest:
    """What an operator is asked to approve."""

    command: str
    reason: str
    cwd: Path
    agent_id: str
    session_key: str
    host: str = "gateway"
    resolved_path: str | None = None
    """The executable the command would run (an "allow always" allowlists it)."""
    allowlisted: bool = False
    """The policy vouches for it (asked only because ``ask`` is ``always``)."""
    origin: Origin | None = None
    """Where the message of the run that asks came from: its chat is told (None: the
    session's recorded origin)."""


class AskPolicy(Protocol):
    security: str
    ask: str
    patterns: tuple[str, ...]


@dataclass(frozen=True)
class ConfigPolicy:
    """The config's own policy (no approvals subsystem: ``moltbot agent --local``)."""

    security: str
    ask: str
    patterns: tuple[str, ...]


class Approver(Protocol):
    def policy(self, agent_id: str) -> AskPolicy: ...

    async def decide(self, request: ApprovalRequest) -> bool: ...

    async def ask(self, request: ApprovalRequest) -> str | None: ...

    def reply(self, session_key: str, text: str, who: str | None) -> str | None:
        """A chat message answering a waiting request: the acknowledgement, else None."""
        ...


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
        prepared = await self.prepare(ctx, params)
        result = await execute(prepared, ctx.config.tools.exec.max_output_chars)
        return result.render(params.command)

    async def prepare(self, ctx: ToolContext, params: ExecParams) -> Prepared:
        """Decide what runs (policy, approvals, sandbox); raises ToolError when nothing may.
        The node host (``moltbot node run``) runs its ``system.run`` through this too."""
        config = ctx.config.tools.exec
        approver = ctx.lookup(APPROVALS)
        policy: AskPolicy = (
            approver.policy(ctx.agent_id)
            if approver is not None
            else ConfigPolicy(config.security, config.ask, ())
        )
        if policy.security == "deny":
            raise ToolError(
                f"exec is disabled (tools.exec.security={config.security}"
                + (", tightened by the exec approvals file)" if config.security != "deny" else ")")
            )
        if not params.command.strip():
            raise ToolError("command must not be empty")
        box = workspace_confinement(ctx)
        cwd = box.resolve(params.workdir) if params.workdir else box.root
        if not cwd.is_dir():
            raise ToolError(f"workdir {params.workdir or cwd} is not a directory")
        path = search_path(ctx.env, box)
        strict = policy.security == "allowlist"
        sandboxed = await asyncio.to_thread(sandbox.active, config.sandbox.mode, path)
        reason: str | None = None
        try:
            env = child_env(ctx.env, params.env, strict=strict, path=path)
            if strict:
                allowlist = config.allowlist if config.allowlist is not None else DEFAULT_ALLOWLIST
                argv = plan(params.command, allowlist, path, cwd, box, sandboxed=sandboxed).argv
            else:
                argv = ["/bin/sh", "-c", params.command]
        except NeedsApproval as exc:
            reason = exc.reason
            argv = approved_binary(params.command, policy.patterns, path) or []
            if argv:
                reason = None  # an operator allowed this executable before ("allow always")
        if reason is None and policy.ask == "always":
            reason = "tools.exec.ask is always"
            await self._approve(ctx, params.command, reason, cwd, path, allowlisted=True)
        elif reason is not None:
            if policy.ask == "off":
                raise NeedsApproval(
                    f"needs an operator's approval: {reason}. tools.exec.ask is off, so it was "
                    "not run; an operator can widen tools.exec.allowlist or the exec approvals"
                )
            await self._approve(ctx, params.command, reason, cwd, path, allowlisted=False)
            env = child_env(ctx.env, params.env, path=path)
            argv = ["/bin/sh", "-c", params.command]
        env = with_skill_env(env, ctx.skill_env)
        env["PWD"] = str(cwd)
        argv = await asyncio.to_thread(
            sandbox.command,
            argv,
            mode=config.sandbox.mode,
            search_path=path,
            workspace=box.root,
            cwd=cwd,
            hidden=box.protected,
            network=config.sandbox.network,
        )
        timeout = min(params.timeout or config.timeout_seconds, config.timeout_seconds)
        return Prepared(argv, cwd, env, timeout)

    @staticmethod
    async def _approve(
        ctx: ToolContext, command: str, reason: str, cwd: Path, path: str, *, allowlisted: bool
    ) -> None:
        approver = ctx.lookup(APPROVALS)
        if approver is not None:
            request = ApprovalRequest(
                command,
                reason,
                cwd,
                ctx.agent_id,
                ctx.session_key,
                resolved_path=executable_of(command, path),
                allowlisted=allowlisted,
                origin=ctx.origin,
            )
            if await approver.decide(request):
                return
            raise ToolError(f"exec: not approved by an operator ({reason}); it was not run")
        raise NeedsApproval(
            f"needs an operator's approval: {reason}. No approval channel is available, so "
            "it was not run; ask the user to run it, or an operator can widen "
            "tools.exec.allowlist or set tools.exec.security=full"
        )


def executable_of(command: str, path: str) -> str | None:
    """The executable a simple command (no shell syntax) would run, found on ``path``."""
    try:
        words = split_command(command)
    except ToolError:
        return None
    name = words[0]
    if "/" in name:
        return name if os.path.isabs(name) and os.access(name, os.X_OK) else None
    return shutil.which(name, path=path)


def approved_binary(command: str, patterns: tuple[str, ...], path: str) -> list[str] | None:
    """The argv of ``command`` when it is one simple command whose executable matches a
    pattern an operator approved (exec approvals file); else ``None``."""
    if not patterns:
        return None
    from moltbot.agents.tools.exec_policy import pattern_matches

    resolved = executable_of(command, path)
    if resolved is None or not any(pattern_matches(p, resolved) for p in patterns):
        return None
    return [resolved, *split_command(command)[1:]]


@dataclass(frozen=True)
class Prepared:
    """A command ``exec`` decided to run: the final argv (sandbox included)."""

    argv: list[str]
    cwd: Path
    env: dict[str, str]
    timeout: float


@dataclass(frozen=True)
class ProcessResult:
    output: str
    """stdout and stderr interleaved; head and tail kept when over the cap."""
    exit_code: int | None
    timed_out: bool
    timeout: float

    def render(self, shown: str) -> str:
        """What the model sees: the command, its output, how it ended."""
        status = (
            f"timed out after {self.timeout:g}s (killed)"
            if self.timed_out
            else f"exit code {self.exit_code}"
        )
        return f"$ {shown}\n{self.output.rstrip()}\n[{status}]"


async def execute(prepared: Prepared, cap: int) -> ProcessResult:
    return await run_process(prepared.argv, prepared.cwd, prepared.env, prepared.timeout, cap)


async def run_process(
    argv: list[str], cwd: Path, env: Mapping[str, str], timeout: float, cap: int
) -> ProcessResult:
    """Run ``argv`` in its own process group; kill the group on timeout or cancellation."""
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
    return ProcessResult(output, None if timed_out else proc.returncode, timed_out, timeout)
