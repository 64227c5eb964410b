"""``read``, ``write``, ``edit``: files inside the agent's workspace only.

Paths resolve against the workspace; the fully resolved path (``..`` and every
symlink followed) must stay inside the workspace's resolved root, and the final
open does not follow a symlink, so a link swapped in after the check cannot
escape either.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from pydantic import AliasChoices, Field

from moltbot.agents.tools.base import Tool, ToolContext, ToolError, ToolParams

MAX_READ_CHARS = 50_000
MAX_READ_LINES = 2000
MAX_WRITE_BYTES = 5_000_000


def resolve_in_workspace(workspace: Path, raw: str) -> Path:
    """The real path of ``raw`` if it is inside ``workspace``; :class:`ToolError` otherwise."""
    if not raw or not raw.strip():
        raise ToolError("path must not be empty")
    if "\x00" in raw:
        raise ToolError("path contains a NUL byte")
    root = Path(os.path.realpath(workspace))
    given = Path(raw.strip())
    candidate = given if given.is_absolute() else Path(workspace) / given
    real = Path(os.path.realpath(candidate))
    if real != root and root not in real.parents:
        raise ToolError(
            f"{raw}: outside the workspace ({root}); only files inside it are reachable"
        )
    return real


def _display(path: Path, workspace: Path) -> str:
    root = Path(os.path.realpath(workspace))
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def _open(path: Path, flags: int) -> int:
    try:
        return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except FileNotFoundError:
        raise ToolError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ToolError(f"{path}: is a directory") from None
    except OSError as exc:
        if exc.errno == 40:  # ELOOP: the last component became a symlink
            raise ToolError(f"{path}: is a symlink; refused") from None
        raise ToolError(f"{path}: {exc.strerror}") from None


class ReadParams(ToolParams):
    path: str = Field(
        validation_alias=AliasChoices("path", "file_path"),
        description="File path, relative to the workspace.",
    )
    offset: int | None = Field(default=None, ge=1, description="First line to return (1-based).")
    limit: int | None = Field(default=None, ge=1, description="How many lines to return.")


class ReadTool(Tool):
    name = "read"
    description = "Read a text file from the workspace (optionally a line range)."
    Params = ReadParams

    async def run(self, ctx: ToolContext, params: ReadParams) -> str:
        path = resolve_in_workspace(ctx.workspace, params.path)
        return await asyncio.to_thread(self._read, path, params, ctx.workspace)

    def _read(self, path: Path, params: ReadParams, workspace: Path) -> str:
        if path.is_dir():
            names = sorted(p.name + ("/" if p.is_dir() else "") for p in path.iterdir())
            return f"{_display(path, workspace)}/ is a directory:\n" + "\n".join(names[:500])
        fd = _open(path, os.O_RDONLY)
        with os.fdopen(fd, "rb") as handle:
            data = handle.read(MAX_WRITE_BYTES * 4)
        if b"\x00" in data[:8192]:
            raise ToolError(f"{_display(path, workspace)}: binary file ({len(data)} bytes)")
        lines = data.decode("utf-8", errors="replace").splitlines(keepends=True)
        start = (params.offset or 1) - 1
        count = min(params.limit or MAX_READ_LINES, MAX_READ_LINES)
        chosen = lines[start : start + count]
        text = "".join(chosen)
        note = ""
        if len(text) > MAX_READ_CHARS:
            text = text[:MAX_READ_CHARS]
            note = f"\n[truncated at {MAX_READ_CHARS} characters; use offset/limit]"
        elif start + count < len(lines) or start > 0:
            shown_end = start + len(chosen)
            note = f"\n[lines {start + 1}-{shown_end} of {len(lines)}; use offset/limit for more]"
        return text + note if text or note else "(empty file)"


class WriteParams(ToolParams):
    path: str = Field(
        validation_alias=AliasChoices("path", "file_path"),
        description="File path, relative to the workspace.",
    )
    content: str = Field(description="The complete new content of the file.")


class WriteTool(Tool):
    name = "write"
    description = "Create or overwrite a text file in the workspace (parents are created)."
    Params = WriteParams

    async def run(self, ctx: ToolContext, params: WriteParams) -> str:
        data = params.content.encode()
        if len(data) > MAX_WRITE_BYTES:
            raise ToolError(f"content too large ({len(data)} bytes; max {MAX_WRITE_BYTES})")
        path = resolve_in_workspace(ctx.workspace, params.path)
        await asyncio.to_thread(_write, path, data, ctx.workspace)
        return f"Wrote {len(data)} bytes to {_display(path, ctx.workspace)}"


def _write(path: Path, data: bytes, workspace: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # The parents may have been created through a link planted meanwhile: check again.
    resolve_in_workspace(workspace, str(path))
    fd = _open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


class EditParams(ToolParams):
    path: str = Field(
        validation_alias=AliasChoices("path", "file_path"),
        description="File path, relative to the workspace.",
    )
    oldText: str = Field(
        validation_alias=AliasChoices("oldText", "old_string", "old_text"),
        description="Exact text to replace (must occur exactly once).",
    )
    newText: str = Field(
        validation_alias=AliasChoices("newText", "new_string", "new_text"),
        description="Replacement text.",
    )
    replaceAll: bool = Field(
        default=False,
        validation_alias=AliasChoices("replaceAll", "replace_all"),
        description="Replace every occurrence.",
    )


class EditTool(Tool):
    name = "edit"
    description = "Replace exact text in a workspace file (oldText must match exactly)."
    Params = EditParams

    async def run(self, ctx: ToolContext, params: EditParams) -> str:
        if not params.oldText:
            raise ToolError("oldText must not be empty")
        path = resolve_in_workspace(ctx.workspace, params.path)
        return await asyncio.to_thread(self._edit, path, params, ctx.workspace)

    def _edit(self, path: Path, params: EditParams, workspace: Path) -> str:
        fd = _open(path, os.O_RDONLY)
        with os.fdopen(fd, "rb") as handle:
            text = handle.read().decode("utf-8", errors="strict")
        count = text.count(params.oldText)
        shown = _display(path, workspace)
        if count == 0:
            raise ToolError(
                f"{shown}: oldText not found (it must match exactly, including "
                "whitespace); read the file first"
            )
        if count > 1 and not params.replaceAll:
            raise ToolError(
                f"{shown}: oldText occurs {count} times; add context to make it "
                "unique or set replaceAll"
            )
        updated = text.replace(params.oldText, params.newText)
        _write(path, updated.encode(), workspace)
        return f"Edited {shown}: {count} replacement{'s' if count > 1 else ''}"
