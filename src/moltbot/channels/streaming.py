"""A reply shown while the model writes it, on channels that can edit their messages.

:class:`ReplyStream` posts one message with the first text of the reply and edits it
as the text grows (at most once per ``interval`` seconds, each edit with the whole text
so far; with ``blocks`` only up to the last complete paragraph, so an edit comes when
a blank line ends one); :meth:`ReplyStream.finish` makes that message the final reply.
The preview never shows ``MEDIA:`` lines, reply tags or a reply that is becoming
``NO_REPLY``, and stops growing once it would not fit in one message (as the channel
counts length; the rest comes as more messages at the end).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from moltbot.channels.base import Channel
from moltbot.channels.chunking import chunk_text
from moltbot.channels.errors import ChannelError
from moltbot.channels.types import OutboundMessage

EDIT_INTERVAL_S = 1.0


class ReplyStream:
    """The live preview of one reply in ``target``."""

    def __init__(
        self,
        channel: Channel,
        target: str,
        shape: Callable[[str], OutboundMessage],
        clean: Callable[[str], str],
        *,
        silent_prefix: str,
        interval: float = EDIT_INTERVAL_S,
        blocks: bool = False,
    ) -> None:
        self.channel = channel
        self.target = target
        self._shape = shape
        """text -> the message to post (reply/thread fields of the conversation)."""
        self._clean = clean
        """the reply so far -> what may be shown of it (no tags, no ``MEDIA:`` lines)."""
        self._silent = silent_prefix
        self.interval = interval
        self.blocks = blocks
        self.message_id: str | None = None
        self._shown = ""
        self._latest = ""
        self._task: asyncio.Task[None] | None = None
        self._sending = False
        self._closed = False

    # -- while the model writes ------------------------------------------------------

    def update(self, text: str) -> None:
        """The reply so far (called for every streamed piece; never blocks)."""
        self._latest = text
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._flush())

    def _preview(self, text: str) -> str | None:
        cleaned = self._clean(text)
        body = cleaned.strip()
        if not body or self._silent.startswith(body[: len(self._silent)]):
            return None  # nothing yet, or it may still become NO_REPLY
        if self.blocks and not text.rstrip(" \t").endswith("\n\n"):
            # only the paragraphs a blank line has ended
            body = cleaned[: max(cleaned.rfind("\n\n"), 0)].strip()
            if not body:
                return None
        if self.channel.text_measure()(body) > self.channel.text_chunk_limit():
            return None  # keeps the last preview that fitted
        return body

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._closed:
            text = self._preview(self._latest)
            if text is None or text == self._shown:
                return
            started = loop.time()
            self._sending = True
            try:
                await self._show(text)
            finally:
                self._sending = False
            if self._closed:
                return
            await asyncio.sleep(max(0.0, self.interval - (loop.time() - started)))

    async def _show(self, text: str) -> None:
        try:
            if self.message_id is None:
                sent = await self.channel.send(self.target, self._shape(text))
                self.message_id = sent.message_ids[0]
            else:
                await self.channel.edit(self.target, self.message_id, self._shape(text))
            self._shown = text
        except Exception as exc:  # the final reply still goes out the normal way
            reason = exc.message if isinstance(exc, ChannelError) else repr(exc)
            self.channel.log.warning("streaming the reply failed: %s", reason)
            self._closed = True

    # -- at the end --------------------------------------------------------------------

    async def stop(self) -> None:
        """No more edits; a send or edit in flight is waited for (so the preview's id
        is known), a pause between edits is cut short."""
        self._closed = True
        task, self._task = self._task, None
        if task is None or task.done():
            return
        if not self._sending:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def finish(self, body: str) -> str:
        """Put the final ``body`` (tags and ``MEDIA:`` lines already taken out) into the
        preview. Returns what is left to send as more messages ("" when nothing)."""
        await self.stop()
        if self.message_id is None:
            return body
        measure = self.channel.text_measure()
        chunks = chunk_text(body, self.channel.text_chunk_limit(), measure=measure)
        if not chunks:
            return ""  # aborted or silent at the end: the preview stays as it was
        first, rest = chunks[0], "\n\n".join(chunks[1:])
        if first != self._shown:
            try:
                await self.channel.edit(self.target, self.message_id, self._shape(first))
            except Exception as exc:  # sent whole as new messages instead
                reason = exc.message if isinstance(exc, ChannelError) else repr(exc)
                self.channel.log.warning("final edit of the reply failed: %s", reason)
                return body
        return rest
