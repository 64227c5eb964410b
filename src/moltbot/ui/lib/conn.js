/* The page's one WebSocket to its own gateway (protocol v3).
 *
 * Handshake: wait for `connect.challenge`, then `connect` with the gateway token. The
 * token comes once from the URL fragment (#token=..., never the query string) or from the
 * paste dialog, is kept in sessionStorage (this tab only) and goes nowhere but this
 * socket, which always points at the page's own origin. Reconnects by itself.
 */

export const VERSION = "2026.1.30";
const TOKEN_KEY = "moltbot.gatewayToken";
const MAX_BACKOFF_MS = 5000;
const $ = (id) => document.getElementById(id);

const state = {
  ws: null,
  pending: new Map(),
  nextId: 1,
  backoff: 500,
  retryTimer: null,
  everConnected: false,
  authFailed: false,
  hello: null,
};
const listeners = new Map(); // event name -> Set of callbacks ("*" gets every event)
const readyHooks = new Set();
const connHooks = new Set();

export function connected() {
  return document.body.dataset.conn === "connected";
}

export function on(event, fn) {
  if (!listeners.has(event)) listeners.set(event, new Set());
  listeners.get(event).add(fn);
  return () => listeners.get(event).delete(fn);
}

/** Called with the hello payload after every (re)connect. */
export function onReady(fn) {
  readyHooks.add(fn);
  if (connected() && state.hello) fn(state.hello);
}

/** Called whenever the connection state changes. */
export function onConnState(fn) {
  connHooks.add(fn);
}

export function hello() {
  return state.hello;
}

export function takeTokenFromFragment() {
  const hash = location.hash.replace(/^#/, "");
  if (!hash || hash.startsWith("/")) return;
  const params = new URLSearchParams(hash);
  const token = params.get("token");
  if (!token) return;
  sessionStorage.setItem(TOKEN_KEY, token);
  params.delete("token");
  const rest = params.toString();
  history.replaceState(null, "", location.pathname + (rest ? "#" + rest : ""));
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function askForToken(message) {
  const dialog = $("token-dialog");
  const error = $("token-error");
  error.hidden = !message;
  error.textContent = message || "";
  $("token-input").value = "";
  if (!dialog.open) dialog.showModal();
  $("token-input").focus();
}

function setConn(value, text) {
  document.body.dataset.conn = value;
  $("conn-text").textContent = text;
  const banner = $("banner");
  banner.hidden = !(value === "reconnecting" && state.everConnected);
  banner.textContent = "Connection lost — reconnecting…";
  for (const fn of connHooks) fn(value);
}

export function connect() {
  clearTimeout(state.retryTimer);
  const secret = token();
  if (!secret) {
    setConn("unauthorized", "No token");
    askForToken("");
    return;
  }
  if (state.ws) {
    state.ws.onclose = null;
    try { state.ws.close(); } catch (_) { /* already closed */ }
  }
  setConn(state.everConnected ? "reconnecting" : "connecting",
    state.everConnected ? "Reconnecting…" : "Connecting…");
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(`${scheme}//${location.host}/`);
  state.ws = ws;
  let ready = false;
  ws.onmessage = (message) => {
    let frame;
    try { frame = JSON.parse(message.data); } catch (_) { return; }
    if (ready) { handleFrame(frame); return; }
    if (frame.type === "event" && frame.event === "connect.challenge") {
      ws.send(JSON.stringify({
        type: "req", id: "connect", method: "connect",
        params: {
          minProtocol: 3, maxProtocol: 3,
          client: {
            id: "webchat-ui", mode: "webchat", version: VERSION,
            platform: (navigator.platform || "web").toLowerCase(), displayName: "Control UI",
          },
          auth: { token: secret },
          locale: navigator.language || undefined,
          userAgent: navigator.userAgent,
        },
      }));
    } else if (frame.type === "res" && frame.id === "connect") {
      if (frame.ok) {
        ready = true;
        state.everConnected = true;
        state.backoff = 500;
        state.hello = frame.payload || {};
        setConn("connected", "Connected");
        for (const fn of readyHooks) fn(state.hello);
      } else {
        const msg = (frame.error && frame.error.message) || "connection refused";
        if (/unauthorized|token|password|pairing|device/i.test(msg)) {
          state.authFailed = true;
          sessionStorage.removeItem(TOKEN_KEY);
          setConn("unauthorized", "Not authorized");
          askForToken("The gateway refused this token: " + msg);
        }
      }
    }
  };
  ws.onclose = () => {
    if (state.ws !== ws) return;
    for (const { reject } of state.pending.values()) reject(new Error("connection closed"));
    state.pending.clear();
    if (state.authFailed) return;
    setConn("reconnecting", "Reconnecting…");
    state.retryTimer = setTimeout(connect, state.backoff);
    state.backoff = Math.min(state.backoff * 2, MAX_BACKOFF_MS);
  };
}

export function call(method, params) {
  return new Promise((resolve, reject) => {
    const ws = state.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN || !connected()) {
      reject(new Error("not connected"));
      return;
    }
    const id = "w" + state.nextId++;
    state.pending.set(id, { resolve, reject });
    ws.send(JSON.stringify({ type: "req", id, method, params: params || {} }));
  });
}

function handleFrame(frame) {
  if (frame.type === "res") {
    const waiter = state.pending.get(frame.id);
    if (!waiter) return;
    state.pending.delete(frame.id);
    if (frame.ok) waiter.resolve(frame.payload);
    else {
      const error = new Error((frame.error && frame.error.message) || "request failed");
      error.code = frame.error && frame.error.code;
      waiter.reject(error);
    }
  } else if (frame.type === "event") {
    if (frame.event === "shutdown") setConn("reconnecting", "Gateway restarting…");
    for (const name of [frame.event, "*"]) {
      for (const fn of listeners.get(name) || []) fn(frame.payload || {}, frame.event);
    }
  }
}

export function start() {
  localStorage.removeItem(TOKEN_KEY); // where earlier versions kept it: this tab's storage only now
  $("token-form").addEventListener("submit", (event) => {
    const value = $("token-input").value.trim();
    if (!value) { event.preventDefault(); return; }
    sessionStorage.setItem(TOKEN_KEY, value);
    state.authFailed = false;
    state.backoff = 500;
    connect();
  });
  $("change-token").addEventListener("click", () => askForToken(""));
  takeTokenFromFragment();
  connect();
}
