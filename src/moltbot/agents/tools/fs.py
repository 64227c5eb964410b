"""``read``, ``write``, ``edit``: files inside the agent's workspace only.

Where a path may lead is decided by :mod:`.confine` (the real path must be in
the workspace and in no instance's private place); the file is then opened by
:mod:`moltbot.safepath`, which walks from the workspace root without following
links, reads only regular files with a single hard link (a FIFO, socket or
device is refused at once and never blocks), and writes through a temp file
renamed over the name (new files 0600, new directories 0700, whatever the umask).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from moltbot import safepath
from moltbot.agents.tools.base import Tool, ToolContext, ToolError, ToolParams
from moltbot.agents.tools.confine import Confinement, workspace_confinement
from moltbot.validation import AliasChoices, Field

MAX_READ_CHARS = 50_000
MAX_READ_LINES = 2000
MAX_WRITE_BYTES = 5_000_000
MAX_READ_BYTES = MAX_WRITE_BYTES * 4


def read_bytes(box: Confinement, path: Path, limit: int = MAX_READ_BYTES) -> bytes:
    """The content of the workspace file ``path`` (see :mod:`moltbot.safepath`)."""
    shown = box.display(path)
    try:
        return safepath.read_file(box.root, box.parts(path), limit)
    except safepath.PathRefused as exc:
        raise ToolError(f"{shown}: {_reason(exc)}") from None
    except FileNotFoundError:
        raise ToolError(f"{shown}: no such file") from None
    except IsADirectoryError:
        raise ToolError(f"{shown}: is a directory") from None
    except OSError as exc:
        raise ToolError(f"{shown}: {exc.strerror}") from None


def write_bytes(box: Confinement, path: Path, data: bytes) -> None:
    """Replace or create the workspace file ``path`` (see :mod:`moltbot.safepath`)."""
    shown = box.display(path)
    try:
        safepath.write_file(box.root, box.parts(path), data)
    except safepath.PathRefused as exc:
        raise ToolError(f"{shown}: {_reason(exc)}") from None
    except IsADirectoryError:
        raise ToolError(f"{shown}: is a directory") from None
    except OSError as exc:
        raise ToolError(f"{shown}: {exc.strerror}") from None


def _reason(exc: safepath.PathRefused) -> str:
    text = str(exc)
    return text.split(": ", 1)[1] if ": " in text else text


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
        box = workspace_confinement(ctx)
        path = box.resolve(params.path)
        return await asyncio.to_thread(self._read, box, path, params)

    def _read(self, box: Confinement, path: Path, params: ReadParams) -> str:
        if path.is_dir():
            try:
                entries = safepath.list_dir(box.root, box.parts(path))
            except (safepath.PathRefused, OSError) as exc:
                raise ToolError(f"{box.display(path)}: cannot list ({exc})") from None
            names = [name + ("/" if is_dir else "") for name, is_dir in entries]
            return f"{box.display(path)}/ is a directory:\n" + "\n".join(names[:500])
        data = read_bytes(box, path)
        if b"\x00" in data[:8192]:
            raise ToolError(f"{box.display(path)}: binary file ({len(data)} bytes)")
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
        box = workspace_confinement(ctx)
        path = box.resolve(params.path)
        await asyncio.to_thread(write_bytes, box, path, data)
        return f"Wrote {len(data)} bytes to {box.display(path)}"


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
        box = workspace_confinement(ctx)
        path = box.resolve(params.path)
        return await asyncio.to_thread(self._edit, box, path, params)

    def _edit(self, box: Confinement, path: Path, params: EditParams) -> str:
        shown = box.display(path)
        data = read_bytes(box, path, MAX_WRITE_BYTES + 1)
        if len(data) > MAX_WRITE_BYTES:
            raise ToolError(f"{shown}: too large to edit (over {MAX_WRITE_BYTES} bytes)")
        try:
            text = data.decode("utf-8", errors="strict")
        except UnicodeDecodeError:
            raise ToolError(f"{shown}: not UTF-8 text; refusing to edit") from None
        count = text.count(params.oldText)
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
        write_bytes(box, path, updated.encode())
        return f"Edited {shown}: {count} replacement{'s' if count > 1 else ''}"
