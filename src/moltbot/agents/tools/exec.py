"""``exec``: run a command in the workspace.

Policy ``tools.exec.security``:

- ``deny``: the tool is not offered;
- ``allowlist`` (default): one command, split like a shell would but run without
  one; its binary (resolved on PATH, symlinks followed) must be one of
  ``tools.exec.allowlist`` (default :data:`DEFAULT_ALLOWLIST`); ``;``, ``&&``,
  ``|``, redirects and ``$( )`` are refused;
- ``full``: ``/bin/sh -c <command>``.

The child runs in its own process group with cwd = the workspace (or a
``workdir`` inside it), a timeout, an output cap (head and tail kept), and an
environment without the gateway's identity variables or any secret-looking
variable (API keys, tokens, passwords).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shlex
import shutil
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field

from moltbot.agents.tools.base import Tool, ToolContext, ToolError, ToolParams
from moltbot.agents.tools.fs import resolve_in_workspace
from moltbot.instance.env import without_identity

if TYPE_CHECKING:
    from moltbot.config.schema import Config

DEFAULT_ALLOWLIST = (
    "ls",
    "cat",
    "head",
    "tail",
    "wc",
    "grep",
    "rg",
    "find",
    "echo",
    "pwd",
    "date",
    "sort",
    "uniq",
    "diff",
    "cut",
    "tr",
    "stat",
    "file",
    "du",
    "df",
    "uname",
    "which",
    "true",
    "false",
    "basename",
    "dirname",
    "realpath",
    "sha256sum",
    "md5sum",
    "tree",
    "jq",
)
_SECRET = re.compile(
    r"(^|_)(API_?KEY|KEY|TOKEN|SECRET|SECRETS|PASSWORD|PASSWD|PASS|CREDENTIALS?|PRIVATE_KEY|"
    r"ACCESS_KEY|AUTH)(_|$)",
    re.IGNORECASE,
)
_PREFIXES = ("MOLTBOT_", "CLAWDBOT_", "OPENCLAW_")
_PUNCT = set("();<>|&")


def child_env(env: Mapping[str, str], extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment a tool's child process gets (see the module docstring)."""
    clean = {
        k: v
        for k, v in without_identity(env).items()
        if not _SECRET.search(k) and not k.startswith(_PREFIXES)
    }
    for key, value in (extra or {}).items():
        if _SECRET.search(key) or key.startswith(_PREFIXES):
            raise ToolError(f"env {key}: secret-looking and identity variables cannot be set")
        clean[key] = value
    clean.setdefault("PATH", os.defpath)
    return clean


class ExecParams(ToolParams):
    command: str = Field(description="The command line to run.")
    workdir: str | None = Field(default=None, description="Directory inside the workspace.")
    timeout: int | None = Field(default=None, ge=1, description="Seconds before it is killed.")
    env: dict[str, str] | None = Field(default=None, description="Extra environment variables.")


class ExecTool(Tool):
    name = "exec"
    description = (
        "Run a shell command in the workspace and return its output and exit code. "
        "Policy-limited (tools.exec.security)."
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
        cwd = (
            resolve_in_workspace(ctx.workspace, params.workdir)
            if params.workdir
            else Path(os.path.realpath(ctx.workspace))
        )
        if not cwd.is_dir():
            raise ToolError(f"workdir {params.workdir} is not a directory")
        env = child_env(ctx.env, params.env)
        env["PWD"] = str(cwd)
        if policy.security == "full":
            argv = ["/bin/sh", "-c", params.command]
        else:
            argv = self._allowed_argv(params.command, policy.allowlist, env)
        timeout = min(params.timeout or policy.timeout_seconds, policy.timeout_seconds)
        return await run_process(argv, cwd, env, timeout, policy.max_output_chars, params.command)

    @staticmethod
    def _allowed_argv(
        command: str, allowlist: list[str] | None, env: Mapping[str, str]
    ) -> list[str]:
        lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        try:
            argv = list(lexer)
        except ValueError as exc:
            raise ToolError(f"cannot parse the command: {exc}") from None
        if not argv:
            raise ToolError("command must not be empty")
        if any(token and set(token) <= _PUNCT for token in argv) or "\n" in command:
            raise ToolError(
                "allowlist mode runs a single command without a shell: ;, &&, ||, "
                "|, redirects and $( ) are not allowed (an operator may set "
                "tools.exec.security=full)"
            )
        path = env.get("PATH", os.defpath)
        binary = shutil.which(argv[0], path=path)
        if binary is None:
            raise ToolError(f"{argv[0]}: command not found")
        real = os.path.realpath(binary)
        allowed = set()
        for item in allowlist if allowlist is not None else DEFAULT_ALLOWLIST:
            found = shutil.which(item, path=path)
            if found:
                allowed.add(os.path.realpath(found))
        if real not in allowed:
            raise ToolError(
                f"{argv[0]} ({real}) is not in tools.exec.allowlist; allowed: "
                + ", ".join(sorted(allowlist if allowlist is not None else DEFAULT_ALLOWLIST))
            )
        return [binary, *argv[1:]]


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
