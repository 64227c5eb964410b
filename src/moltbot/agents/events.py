"""The events of a run, shaped for the gateway's clients.

``agent`` ``{runId, seq, stream, ts, data, sessionKey}`` with streams
``lifecycle`` (start/end/error), ``assistant`` (text/delta), ``tool``
(start/result); and ``chat`` ``{runId, sessionKey, seq, state, message?, ...}``
with ``delta`` (full text so far, at most one per :data:`DELTA_INTERVAL_S`),
``final``, ``aborted`` or ``error``. A run the gateway itself cut short (stop,
restart) ends ``aborted`` with ``errorMessage: "aborted: gateway restarting"``.

Model output is coalesced, never lost: an ``assistant`` event goes out as soon as
the event loop gets a turn, carrying every delta added since the previous one
(``delta`` their concatenation, ``text`` the reply so far). On an idle loop that is
one event per model delta; when the loop was busy (a broadcast to many clients
while the model's stream buffered several chunks) the buffered chunks go out as one
event. After an event that cost more than :data:`PACE_FROM_S` of CPU to send, the
next one waits as long again, so one run streaming to a thousand clients takes at
most half of the gateway. Unsent output is sent before any other event of the run,
so the order is kept and ``seq`` has no gaps.

Every event goes to the broadcast and to the run's watchers. A receiver that
raises is logged and skipped: it never breaks the run or the other receivers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from moltbot.agents.providers import ToolCall
from moltbot.agents.run import Run, RunState, now_ms
from moltbot.lifecycle import Broadcast

DELTA_INTERVAL_S = 0.150
PACE_FROM_S = 0.005
"""An ``assistant`` event whose sending took more CPU than this (to many clients) is
followed by a pause as long as the sending took, during which further output is
gathered: the run's events take at most half of the gateway's time."""
MAX_TOOL_EVENT_CHARS = 4_000


def assistant_message(text: str) -> dict[str, Any]:
    """The ``message`` of a ``chat`` event."""
    return {"role": "assistant", "content": [{"type": "text", "text": text}], "timestamp": now_ms()}


class RunEvents:
    def __init__(self, broadcast: Broadcast, log: logging.Logger) -> None:
        self._broadcast = broadcast
        self.log = log

    # ---- what happened ---------------------------------------------------------

    def started(self, run: Run) -> None:
        self._agent(run, "lifecycle", {"phase": "start", "startedAt": run.started_at})

    def text(self, run: Run, delta: str) -> None:
        """Add model output to the run's reply; it is sent when the event loop next gets
        a turn (or once the pause after a costly event is over), with any output added
        before then (``chat`` deltas throttled)."""
        run.unsent += run.add_text(delta)
        if run.text_handle is None:
            loop = asyncio.get_running_loop()
            if loop.time() >= run.next_text_at:
                run.text_handle = loop.call_soon(self.flush_text, run)
            else:  # the last event was costly to send: as long again for other work
                run.text_handle = loop.call_at(run.next_text_at, self.flush_text, run)

    def flush_text(self, run: Run) -> None:
        """Send the run's unsent output now, as one ``assistant`` event."""
        if run.text_handle is None:
            return
        run.text_handle.cancel()
        run.text_handle = None
        delta, run.unsent = run.unsent, ""
        loop = asyncio.get_running_loop()
        started, cpu = loop.time(), time.thread_time()
        self._agent(run, "assistant", {"text": run.text, "delta": delta})
        self.chat_delta(run)
        if time.thread_time() - cpu > PACE_FROM_S:  # costly, not merely preempted
            now = loop.time()
            run.next_text_at = now + (now - started)  # longer on a busy host

    def text_reset(self, run: Run, text: str) -> None:
        """Take back a failed model's partial output: the reply is ``text`` again."""
        self.flush_text(run)
        run.text, run.partial = text, ""
        self._agent(run, "assistant", {"text": run.text, "delta": "", "reset": True})
        self.chat_delta(run, force=True)

    def tool_started(self, run: Run, call: ToolCall) -> None:
        self._agent(
            run,
            "tool",
            {
                "phase": "start",
                "name": call.name,
                "toolCallId": call.id,
                "args": dict(call.arguments),
            },
        )

    def tool_finished(
        self, run: Run, call: ToolCall, text: str, is_error: bool, duration_ms: int
    ) -> None:
        self._agent(
            run,
            "tool",
            {
                "phase": "result",
                "name": call.name,
                "toolCallId": call.id,
                "isError": is_error,
                "result": text[:MAX_TOOL_EVENT_CHARS],
                "durationMs": duration_ms,
            },
        )

    def finished(self, run: Run) -> None:
        """The last events of a run that ran: ``final``, ``aborted`` or ``error``."""
        self.flush_text(run)
        if run.flush_handle is not None:
            run.flush_handle.cancel()
            run.flush_handle = None
        if run.state == RunState.OK:
            self._chat(
                run,
                "final",
                message=assistant_message(run.text),
                usage=run.usage(),
                stopReason=run.stop_reason or "stop",
            )
            run.mark("ended")
            self._agent(
                run,
                "lifecycle",
                {
                    "phase": "end",
                    "status": "ok",
                    "endedAt": run.ended_at,
                    "usage": run.usage(),
                    "timings": run.timings(),
                },
            )
            self.log.debug("run %s timings %s", run.id, run.timings())
        elif run.state == RunState.ABORTED:
            self._chat(
                run,
                "aborted",
                message=assistant_message(run.text),
                stopReason="aborted",
                errorMessage=run.abort_message(),
            )
            self._agent(
                run,
                "lifecycle",
                {
                    "phase": "end",
                    "status": "aborted",
                    "reason": run.abort_reason,
                    "endedAt": run.ended_at,
                },
            )
        else:
            self._chat(
                run,
                "error",
                errorMessage=run.error,
                stopReason=run.stop_reason,
                message=assistant_message(run.text),
            )
            self._agent(
                run,
                "lifecycle",
                {
                    "phase": "error",
                    "status": str(run.state),
                    "error": run.error,
                    "endedAt": run.ended_at,
                },
            )

    def compacted(self, run: Run, outcome: Any) -> None:
        """``agent`` stream ``compaction``: the session was compacted during this run."""
        self._agent(
            run,
            "compaction",
            {
                "phase": "end",
                "tokensBefore": outcome.tokens_before,
                "tokensAfter": outcome.tokens_after,
            },
        )

    def aborted_in_queue(self, run: Run) -> None:
        """The events of a run aborted before it started."""
        self._chat(run, "aborted", stopReason="aborted", errorMessage=run.abort_message())
        self._agent(
            run, "lifecycle", {"phase": "end", "status": "aborted", "reason": run.abort_reason}
        )

    def injected(
        self,
        session_key: str,
        message_id: str,
        text: str,
        *,
        run_id: str | None = None,
        stop_reason: str = "injected",
    ) -> None:
        """``chat`` ``final`` for a note written into a transcript without a run
        (``runId`` ``inject-<message id>`` unless ``run_id`` is given)."""
        payload = {
            "runId": run_id or f"inject-{message_id}",
            "sessionKey": session_key,
            "seq": 1,
            "state": "final",
            "message": assistant_message(text),
            "stopReason": stop_reason,
        }
        with contextlib.suppress(Exception):
            self._broadcast("chat", payload)

    # ---- chat deltas -----------------------------------------------------------

    def chat_delta(self, run: Run, *, force: bool = False) -> None:
        if run.flush_handle is not None:
            return  # a flush is scheduled; it will carry the newest text
        loop = asyncio.get_running_loop()
        wait = DELTA_INTERVAL_S - (loop.time() - run.last_chat_at)
        if force or wait <= 0:
            self._flush_delta(run)
        else:
            run.flush_handle = loop.call_later(wait, self._flush_delta, run)

    def _flush_delta(self, run: Run) -> None:
        run.flush_handle = None
        if run.state.finished:
            return
        run.last_chat_at = asyncio.get_running_loop().time()
        self._chat(run, "delta", message=assistant_message(run.text))

    # ---- frames ------------------------------------------------------------------

    def _chat(self, run: Run, state: str, **fields: Any) -> None:
        self.flush_text(run)
        run.chat_seq += 1
        payload = {
            "runId": run.id,
            "sessionKey": run.session_key,
            "seq": run.chat_seq,
            "state": state,
            **{k: v for k, v in fields.items() if v is not None},
        }
        self._emit(run, "chat", payload, drop_if_slow=state == "delta")

    def _agent(self, run: Run, stream: str, data: dict[str, Any]) -> None:
        self.flush_text(run)
        run.seq += 1
        payload = {
            "runId": run.id,
            "seq": run.seq,
            "stream": stream,
            "ts": now_ms(),
            "data": data,
            "sessionKey": run.session_key,
        }
        self._emit(run, "agent", payload)

    def _emit(
        self, run: Run, event: str, payload: dict[str, Any], *, drop_if_slow: bool = False
    ) -> None:
        try:
            self._broadcast(event, payload, drop_if_slow=drop_if_slow)
        except Exception:
            self.log.debug("broadcast of %s failed", event, exc_info=True)
        for watcher in list(run.watchers):
            try:
                watcher(event, payload)
            except Exception:
                self.log.exception("run watcher failed")
