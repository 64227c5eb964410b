"""Parsing untrusted JSON5 (``config.patch``/``set``/``apply`` from a client) off the
event loop.

json-five is a pure-Python recursive parser: about 15 µs and hundreds of bytes of
memory per input byte. :func:`parse_untrusted` keeps that away from the gateway:

- plain JSON is parsed inline by the C parser (fast, depth-checked);
- small JSON5 (up to :data:`INLINE_JSON5_BYTES`) inline, after the depth check;
- anything larger in a short-lived child process (``python -c``) with a memory
  cap (:data:`CHILD_MEMORY_BYTES`) and a deadline (:data:`PARSE_TIMEOUT_S`), at most
  :data:`CONCURRENT_PARSES` at a time; the gateway's own memory and loop stay free.

The size and depth limits of :func:`moltbot.config.store.parse_text` apply in
every case, and errors are the same :class:`ConfigError` messages.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from moltbot.config.store import MAX_CONFIG_BYTES, parse_text
from moltbot.errors import ConfigError

INLINE_JSON5_BYTES = 1024
PARSE_TIMEOUT_S = 30.0
CHILD_MEMORY_BYTES = 1024 * 1024 * 1024
CONCURRENT_PARSES = 2

_CHILD = """
import json, resource, sys
try:
    resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))
except (ValueError, OSError):
    pass
from moltbot.config.store import parse_text
from moltbot.errors import ConfigError
text = sys.stdin.buffer.read().decode("utf-8")
try:
    out = {{"data": parse_text(text, sys.argv[1])}}
except ConfigError as exc:
    out = {{"error": exc.message, "hint": exc.hint}}
except MemoryError:
    out = {{"error": sys.argv[1] + ": the text needs too much memory to parse", "hint": None}}
sys.stdout.write(json.dumps(out))
"""

_slots: asyncio.Semaphore | None = None


async def parse_untrusted(text: str, source: str) -> dict[str, Any]:
    """Like :func:`parse_text`, without blocking the event loop (see module doc)."""
    if len(text) > MAX_CONFIG_BYTES:
        return parse_text(text, source)  # refused at once by the size check
    try:
        json.loads(text)
    except (ValueError, RecursionError):
        if len(text.encode()) > INLINE_JSON5_BYTES:
            return await _parse_in_child(text, source)
    return parse_text(text, source)


async def _parse_in_child(text: str, source: str) -> dict[str, Any]:
    global _slots
    if _slots is None:
        _slots = asyncio.Semaphore(CONCURRENT_PARSES)
    async with _slots:
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _CHILD.format(limit=CHILD_MEMORY_BYTES),
            source,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(
                child.communicate(text.encode()), timeout=PARSE_TIMEOUT_S
            )
        except TimeoutError:
            child.kill()
            await child.wait()
            raise ConfigError(
                f"{source}: parsing took longer than {PARSE_TIMEOUT_S:.0f} s",
                hint="send plain JSON, or a smaller change",
            ) from None
        finally:
            if child.returncode is None:
                child.kill()
                await child.wait()
    try:
        result = json.loads(out)
    except ValueError:
        detail = err.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise ConfigError(f"{source}: the JSON5 parser failed ({detail[0]})") from None
    if "error" in result:
        raise ConfigError(result["error"], hint=result.get("hint"))
    data = result["data"]
    assert isinstance(data, dict)
    return data
