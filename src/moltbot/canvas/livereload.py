"""Live reload: watching the canvas root and the script injected into HTML pages.

The script does two things:

- opens a WebSocket to the host's live-reload path and reloads the page when
  it receives ``reload``, or a ``generation N`` newer than the page (sent on
  connect, so a change made while the page was loading is not lost); it
  reconnects with backoff and reloads once it is back (gateway restarts);
- defines the action bridge node apps expect: ``postMessage(payload)`` hands a
  JSON string to the native WebView handler (``webkit.messageHandlers`` on
  Apple platforms, a ``window`` object on Android), ``sendUserAction(action)``
  adds an ``id`` and posts ``{userAction}``. Both are exported as
  ``OpenClaw.*``, ``Moltbot.*``, ``openclawPostMessage``/``openclawSendUserAction``
  and ``moltbotPostMessage``/``moltbotSendUserAction``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

MARKER = "data-moltbot-live-reload"
DEBOUNCE_MS = 75

_SCRIPT = r"""<script %(marker)s>
(function () {
  var handlerName = "openclawCanvasA2UIAction";
  function postMessage(payload) {
    var text = typeof payload === "string" ? payload : JSON.stringify(payload);
    var apple = window.webkit && window.webkit.messageHandlers &&
      window.webkit.messageHandlers[handlerName];
    if (apple) { apple.postMessage(text); return true; }
    var android = window[handlerName];
    if (android && typeof android.postMessage === "function") {
      android.postMessage(text); return true;
    }
    return false;
  }
  function newId() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") {
      return window.crypto.randomUUID();
    }
    return String(Date.now()) + "-" + Math.random().toString(16).slice(2);
  }
  function sendUserAction(action) {
    var withId = Object.assign({}, action || {});
    if (!withId.id) { withId.id = newId(); }
    return postMessage({ userAction: withId });
  }
  var api = { postMessage: postMessage, sendUserAction: sendUserAction };
  window.OpenClaw = Object.assign(window.OpenClaw || {}, api);
  window.Moltbot = Object.assign(window.Moltbot || {}, api);
  window.openclawPostMessage = window.moltbotPostMessage = postMessage;
  window.openclawSendUserAction = window.moltbotSendUserAction = sendUserAction;

  var path = %(path)s, generation = %(generation)d;
  var delay = 500, dropped = false;
  function connect() {
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    var socket;
    try { socket = new WebSocket(scheme + location.host + path); }
    catch (e) { return; }
    socket.onopen = function () {
      delay = 500;
      if (dropped) { location.reload(); }
    };
    socket.onmessage = function (event) {
      var text = String(event.data);
      if (text === "reload") { location.reload(); return; }
      // A change between serving this page and connecting would be missed otherwise.
      var match = /^generation (\d+)$/.exec(text);
      if (match && parseInt(match[1], 10) > generation) { location.reload(); }
    };
    socket.onclose = function () {
      dropped = true;
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 10000);
    };
  }
  connect();
})();
</script>"""


def snippet(ws_path: str, generation: int = 0) -> str:
    return _SCRIPT % {"marker": MARKER, "path": json.dumps(ws_path), "generation": generation}


def inject(html: str, ws_path: str, generation: int = 0) -> str:
    """Insert the script before the last ``</body>`` (or append it).

    ``generation`` counts the changes seen so far; the host sends its current
    count when the page's socket connects, and a page served before a change it
    has not seen reloads itself.
    """
    script = snippet(ws_path, generation)
    lowered = html.lower()
    at = lowered.rfind("</body>")
    if at < 0:
        return html + "\n" + script + "\n"
    return html[:at] + script + "\n" + html[at:]


def _interesting(_change: object, path: str) -> bool:
    parts = Path(path).parts
    return not any(part.startswith(".") or part == "node_modules" for part in parts)


async def watch(
    root: Path,
    on_change: Callable[[set[str]], Awaitable[None]],
    stop: asyncio.Event,
    log: logging.Logger,
) -> None:
    """Call ``on_change(paths)`` after each debounced batch of changes under ``root``.

    Returns when ``stop`` is set. A watcher error (e.g. too many files) disables
    live reload with a log line instead of failing the canvas host.
    """
    from watchfiles import awatch

    try:
        async for changes in awatch(
            root,
            stop_event=stop,
            debounce=DEBOUNCE_MS,
            step=25,
            watch_filter=_interesting,
            recursive=True,
            ignore_permission_denied=True,
        ):
            await on_change({path for _, path in changes})
    except Exception as exc:  # watcher backend errors: keep serving without live reload
        log.warning(
            "canvas watcher error: %s (live reload disabled; consider "
            "canvasHost.liveReload=false or a smaller canvasHost.root)",
            exc,
        )
