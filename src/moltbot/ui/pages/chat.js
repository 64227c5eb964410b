/* Chat: streaming replies (`chat` events carry the full text so far), tool calls
 * (`agent` events, stream "tool") shown collapsed, Stop (chat.abort), a session switcher
 * in the sidebar and the instance panel. */

import { call, on, onConnState } from "../lib/conn.js";
import { renderMarkdown } from "../lib/markdown.js";

const SESSION_STORE = "moltbot.sessionKey";
const PAGE = 200; // messages per chat.history page
const EARLIER_MARGIN = 300; // px from the top at which the previous page is fetched
const $ = (id) => document.getElementById(id);

const state = {
  defaultAgent: "main",
  agentId: "main",
  agents: [],
  sessionKey: null,
  sessions: [],
  attachments: [],
  follow: true,
  runs: new Map(),
  active: new Set(),
  refreshTimer: null,
  historyLoaded: false,
  // paged history: the oldest message shown, whether older ones remain, the ids shown
  oldestId: null,
  hasMore: false,
  loadingEarlier: false,
  seen: new Set(),
  generation: 0,
  loading: new Set(), // the session and history loads under way
};

// A message sent while the session or its history is still loading waits for them: the
// session key is not known yet, or the history would replace the message's bubble.
function track(promise) {
  const done = () => state.loading.delete(promise);
  state.loading.add(promise);
  promise.then(done, done);
  return promise;
}

async function loaded() {
  while (state.loading.size) await Promise.allSettled([...state.loading]);
}

async function onHello(hello) {
  try {
    const agents = await call("agents.list");
    state.agents = agents.agents || [];
    state.defaultAgent = agents.defaultId || "main";
  } catch (_) {
    const defaults = (hello.snapshot && hello.snapshot.sessionDefaults) || {};
    state.defaultAgent = defaults.defaultAgentId || "main";
  }
  if (!state.sessionKey) {
    const saved = localStorage.getItem(SESSION_STORE);
    state.sessionKey = saved || `agent:${state.defaultAgent}:main`;
  }
  state.agentId = agentOf(state.sessionKey) || state.defaultAgent;
  renderAgents();
  await Promise.all([loadSessions(), loadHistory(), loadInstance()]);
}

// ---- instance status ----------------------------------------------------------

function uptime(ms) {
  const s = Math.floor((ms || 0) / 1000);
  if (s >= 86400) return `${Math.floor(s / 86400)}d`;
  if (s >= 3600) return `${Math.floor(s / 3600)}h`;
  if (s >= 60) return `${Math.floor(s / 60)}m`;
  return `${s}s`;
}

async function loadInstance() {
  let status;
  try {
    status = await call("status");
  } catch (_) {
    return; // a client without read scope: no panel
  }
  const inst = status.instance || {};
  $("instance-title").textContent = `${inst.profile} · port ${inst.port}`;
  document.title = inst.profile && inst.profile !== "default" ? `Moltbot (${inst.profile})` : "Moltbot";
  const subsystems = Object.entries(status.subsystems || {})
    .map(([name, info]) => `${name} ${info.state}`).join(", ");
  const facts = [
    ["Profile", inst.profile],
    ["Ports", `${inst.port} · browser ${inst.controlPort} · canvas ${inst.canvasPort}`],
    ["CDP", (inst.cdpRange || []).join("–")],
    ...(inst.drift ? [["Drift", inst.drift]] : []),
    ["State", inst.stateDir],
    ["Workspace", inst.workspace],
    ["Version", `${inst.version} · pid ${inst.pid} · up ${uptime(inst.uptimeMs)}`],
    ["Sessions", String((status.sessions || {}).count ?? 0)],
    ["Subsystems", subsystems || "none"],
  ];
  const list = $("instance-facts");
  list.replaceChildren();
  for (const [label, value] of facts) {
    const dt = document.createElement("dt");
    dt.textContent = label;
    const dd = document.createElement("dd");
    dd.textContent = value ?? "";
    dd.dataset.fact = label.toLowerCase();
    list.append(dt, dd);
  }
}

// ---- sessions ------------------------------------------------------------------

function agentOf(key) {
  const parts = (key || "").split(":");
  return parts[0] === "agent" && parts.length >= 3 ? parts[1] : null;
}

function renderAgents() {
  const agent = state.agents.find((a) => a.id === state.agentId) || state.agents[0] || {};
  const identity = agent.identity || {};
  $("agent-name").textContent = agent.name || identity.name || "Moltbot";
  $("agent-emoji").textContent = identity.emoji || "🦞";
  const picker = document.querySelector(".agent-pick");
  const select = $("agent-select");
  picker.hidden = state.agents.length < 2;
  select.textContent = "";
  for (const a of state.agents) {
    const option = document.createElement("option");
    option.value = a.id;
    option.textContent = a.name || (a.identity && a.identity.name) || a.id;
    option.selected = a.id === state.agentId;
    select.appendChild(option);
  }
}

$("agent-select").addEventListener("change", (event) => {
  switchSession(`agent:${event.target.value}:main`);
});

async function loadSessions() {
  try {
    const result = await call("sessions.list", {
      includeDerivedTitles: true, includeLastMessage: true, limit: 200,
    });
    state.sessions = result.sessions || [];
  } catch (_) { return; }
  renderSessions();
}

function scheduleSessionsRefresh() {
  clearTimeout(state.refreshTimer);
  state.refreshTimer = setTimeout(loadSessions, 300);
}

function sessionTitle(row) {
  if (row.label) return row.label;
  if (row.derivedTitle) return row.derivedTitle;
  const rest = row.key.split(":").slice(2).join(":");
  return rest === "main" ? "Main chat" : rest;
}

function renderSessions() {
  const nav = $("sessions");
  nav.textContent = "";
  const rows = state.sessions.slice();
  if (!rows.some((r) => r.key === state.sessionKey)) {
    rows.unshift({ key: state.sessionKey, derivedTitle: "New chat" });
  }
  for (const row of rows) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "session" + (row.key === state.sessionKey ? " active" : "");
    button.dataset.key = row.key;
    const title = document.createElement("span");
    title.className = "title";
    title.textContent = sessionTitle(row);
    const sub = document.createElement("span");
    sub.className = "sub";
    sub.textContent = row.lastMessagePreview || row.key;
    button.append(title, sub);
    button.addEventListener("click", () => openSession(row.key));
    nav.appendChild(button);
  }
  const current = rows.find((r) => r.key === state.sessionKey);
  $("session-title").textContent = current ? sessionTitle(current) : "Chat";
  $("session-key").textContent = state.sessionKey;
}

function switchSession(key) {
  if (key === state.sessionKey) return;
  state.sessionKey = key;
  state.agentId = agentOf(key) || state.defaultAgent;
  localStorage.setItem(SESSION_STORE, key);
  state.active.clear();
  renderAgents();
  renderSessions();
  track(loadHistory());
  document.body.classList.remove("show-sidebar");
}

$("new-chat").addEventListener("click", () => {
  const stamp = Date.now().toString(36);
  openSession(`agent:${state.agentId}:webchat-${stamp}`);
  $("input").focus();
});
$("toggle-sidebar").addEventListener("click", () => {
  document.body.classList.toggle("show-sidebar");
});

// ---- messages --------------------------------------------------------------------

function textOf(content) {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return "";
  return content.filter((b) => b && b.type === "text").map((b) => b.text || "").join("");
}

function renderText(el, text) {
  renderMarkdown(el, text);
}

// The view follows new output while the reader is at the bottom; scrolling up stops that,
// scrolling back down (or sending) resumes it. Measured on scroll, not after appending:
// a long reply that lands in one step would otherwise leave the reader above it.
function atBottom(box) {
  return box.scrollHeight - box.scrollTop - box.clientHeight < 120;
}

function scrollDown(force) {
  const box = $("messages");
  if (force) state.follow = true;
  if (state.follow) box.scrollTop = box.scrollHeight;
}

// `into` (a fragment being built from history) instead of the live view
function addUser(text, images, into) {
  const el = document.createElement("div");
  el.className = "msg user";
  const body = document.createElement("div");
  body.textContent = text;
  el.appendChild(body);
  for (const src of images || []) {
    const img = document.createElement("img");
    img.className = "attachment";
    img.alt = "attached image";
    img.src = src;
    el.appendChild(img);
  }
  if (into) {
    into.appendChild(el);
  } else {
    $("messages").appendChild(el);
    scrollDown(true);
  }
  return el;
}

// Attachment blocks of a transcript message: images get a signed URL from the gateway.
function imagesOf(content) {
  if (!Array.isArray(content)) return [];
  return content
    .filter((b) => b && b.type === "image" && typeof b.url === "string" && b.url.startsWith("/"))
    .map((b) => b.url);
}

function runBubble(runId, into, runs = state.runs) {
  let run = runId ? runs.get(runId) : null;
  if (run) return run;
  const el = document.createElement("div");
  el.className = "msg assistant";
  if (runId) el.dataset.runId = runId;
  const tools = document.createElement("div");
  tools.className = "tools";
  const text = document.createElement("div");
  text.className = "text";
  const status = document.createElement("div");
  status.className = "status";
  status.hidden = true;
  el.append(tools, text, status);
  (into || $("messages")).appendChild(el);
  run = { el, tools, text, status, calls: new Map(), segments: [] };
  if (runId) runs.set(runId, run);
  return run;
}

function setStatus(run, text, kind) {
  run.status.hidden = !text;
  run.status.textContent = text || "";
  if (kind) run.el.classList.add(kind);
}

function toolBlock(run, callId, name, args) {
  let block = run.calls.get(callId);
  if (block) return block;
  const details = document.createElement("details");
  details.className = "tool";
  details.dataset.tool = name;
  details.dataset.state = "running";
  const summary = document.createElement("summary");
  summary.textContent = `🔧 ${name} — running…`;
  const argsLabel = document.createElement("div");
  argsLabel.className = "label";
  argsLabel.textContent = "arguments";
  const argsPre = document.createElement("pre");
  argsPre.className = "args";
  argsPre.textContent = JSON.stringify(args || {}, null, 2);
  const resultLabel = document.createElement("div");
  resultLabel.className = "label";
  resultLabel.textContent = "result";
  const resultPre = document.createElement("pre");
  resultPre.className = "result";
  details.append(summary, argsLabel, argsPre, resultLabel, resultPre);
  run.tools.appendChild(details);
  block = { details, summary, resultPre, name };
  run.calls.set(callId, block);
  return block;
}

function toolDone(block, text, isError) {
  block.details.dataset.state = isError ? "error" : "done";
  block.summary.textContent = `🔧 ${block.name} ${isError ? "✗ failed" : "✓"}`;
  block.resultPre.textContent = text || "";
}

function onChat(event) {
  if (event.sessionKey !== state.sessionKey) {
    if (event.state !== "delta") scheduleSessionsRefresh();
    return;
  }
  const run = runBubble(event.runId);
  const text = event.message ? textOf(event.message.content) : "";
  if (event.state === "delta") {
    state.active.add(event.runId);
    run.el.classList.add("streaming");
    renderText(run.text, text);
  } else {
    state.active.delete(event.runId);
    run.el.classList.remove("streaming");
    if (text || event.state === "final") renderText(run.text, text);
    if (event.state === "final") {
      if (event.stopReason === "notice") run.el.classList.add("notice");
      if (event.stopReason === "injected") run.el.classList.add("injected");
      run.el.dataset.state = "final";
    } else if (event.state === "aborted") {
      run.el.dataset.state = "aborted";
      setStatus(run, "Stopped", "aborted");
    } else if (event.state === "error") {
      run.el.dataset.state = "error";
      setStatus(run, event.errorMessage || "The reply failed.", "error");
    }
    scheduleSessionsRefresh();
  }
  updateComposer();
  scrollDown(false);
}

function onAgent(event) {
  if (event.sessionKey && event.sessionKey !== state.sessionKey) return;
  const data = event.data || {};
  if (event.stream === "lifecycle") {
    if (data.phase === "start") state.active.add(event.runId);
    else state.active.delete(event.runId);
    updateComposer();
    return;
  }
  if (event.stream !== "tool") return;
  const run = runBubble(event.runId);
  state.active.add(event.runId);
  const block = toolBlock(run, data.toolCallId, data.name, data.args);
  if (data.phase === "result") toolDone(block, data.result, data.isError);
  updateComposer();
  scrollDown(false);
}

// Transcript messages as bubbles in a fragment; `runs` collects the run bubbles by id.
// Messages already shown (by id) are skipped, so overlapping pages never duplicate.
function renderHistory(messages, runs) {
  const fragment = document.createDocumentFragment();
  let current = null;
  let currentRunId = null;
  for (const message of messages) {
    if (message.id) {
      if (state.seen.has(message.id)) continue;
      state.seen.add(message.id);
    }
    if (message.role === "user") {
      addUser(textOf(message.content), imagesOf(message.content), fragment);
      current = null;
      continue;
    }
    const runId = message.runId || null;
    if (!current || !runId || runId !== currentRunId) {
      current = runBubble(runId || undefined, fragment, runs);
      currentRunId = runId;
    }
    if (message.role === "assistant") {
      const text = textOf(message.content);
      if (text) current.segments.push(text);
      renderText(current.text, current.segments.join("\n\n"));
      for (const block of message.content || []) {
        if (block && block.type === "toolCall") toolBlock(current, block.id, block.name, block.arguments);
      }
      const stop = message.stopReason;
      if (stop === "aborted") setStatus(current, "Stopped", "aborted");
      else if (stop === "timeout") setStatus(current, message.errorMessage || "Timed out", "error");
      else if (stop === "error") current.el.classList.add("error");
      else if (stop === "notice") current.el.classList.add("notice");
      else if (stop === "injected") current.el.classList.add("injected");
    } else if (message.role === "toolResult") {
      const block = current.calls.get(message.toolCallId) ||
        toolBlock(current, message.toolCallId, message.toolName, {});
      toolDone(block, textOf(message.content), message.isError);
    }
  }
  return fragment;
}

// The "Load earlier" button heads the conversation while older messages remain.
const earlier = document.createElement("button");
earlier.type = "button";
earlier.id = "load-earlier";
earlier.className = "load-earlier";
earlier.textContent = "Load earlier messages";
earlier.hidden = true;
earlier.addEventListener("click", () => { loadEarlier(); });

function setPaging(result) {
  const messages = result.messages || [];
  if (messages.length && messages[0].id) state.oldestId = messages[0].id;
  state.hasMore = Boolean(result.hasMore) && Boolean(state.oldestId);
  earlier.hidden = !state.hasMore;
  $("messages").dataset.more = String(state.hasMore);
}

async function loadHistory() {
  const key = state.sessionKey;
  const generation = ++state.generation;
  state.hasMore = false; // no paging back until this session's last page is shown
  state.loadingEarlier = false;
  let result;
  try {
    result = await call("chat.history", { sessionKey: key, limit: PAGE });
  } catch (_) { return; }
  if (key !== state.sessionKey || generation !== state.generation) return;
  state.runs.clear();
  state.seen.clear();
  state.oldestId = null;
  earlier.disabled = false;
  earlier.textContent = "Load earlier messages";
  $("messages").replaceChildren(earlier, renderHistory(result.messages || [], state.runs));
  $("messages").dataset.pages = "1";
  setPaging(result);
  for (const runId of state.active) runBubble(runId).el.classList.add("streaming");
  state.historyLoaded = true;
  document.body.dataset.history = key;
  renderSessions();
  updateComposer();
  scrollDown(true);
}

// The page before the oldest message shown, put above it with the view kept where it
// was: the first message shown stays at the same place on screen.
async function loadEarlier() {
  if (!state.hasMore || state.loadingEarlier) return;
  const key = state.sessionKey;
  const generation = state.generation;
  state.loadingEarlier = true;
  earlier.disabled = true;
  earlier.textContent = "Loading…";
  let result = null;
  try {
    result = await call("chat.history", { sessionKey: key, limit: PAGE, before: state.oldestId });
  } catch (error) {
    showBanner("Could not load earlier messages: " + error.message);
  }
  if (key !== state.sessionKey || generation !== state.generation) return;
  state.loadingEarlier = false;
  earlier.disabled = false;
  earlier.textContent = "Load earlier messages";
  if (!result) return;
  const box = $("messages");
  const anchor = earlier.nextElementSibling;
  const top = anchor ? anchor.getBoundingClientRect().top : 0;
  earlier.after(renderHistory(result.messages || [], new Map()));
  if (anchor) box.scrollTop += anchor.getBoundingClientRect().top - top;
  setPaging(result);
  box.dataset.pages = String(Number(box.dataset.pages || 1) + 1);
}

// ---- composer ---------------------------------------------------------------------

function updateComposer() {
  const connected = document.body.dataset.conn === "connected";
  $("send").disabled = !connected || (!$("input").value.trim() && state.attachments.length === 0);
  $("stop").disabled = !connected || state.active.size === 0;
}

function uuid() {
  if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

// ---- attachments: images picked or pasted, sent as chat.send attachments -----------

const MAX_ATTACHMENT_BYTES = 350 * 1024; // a frame is at most 512 KiB once base64-encoded

function renderPending() {
  const box = $("attachments");
  box.textContent = "";
  box.hidden = state.attachments.length === 0;
  state.attachments.forEach((item, index) => {
    const chip = document.createElement("span");
    chip.className = "chip";
    const img = document.createElement("img");
    img.src = item.dataUrl;
    img.alt = item.fileName;
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "icon";
    remove.textContent = "×";
    remove.title = "Remove " + item.fileName;
    remove.addEventListener("click", () => {
      state.attachments.splice(index, 1);
      renderPending();
      updateComposer();
    });
    chip.append(img, remove);
    box.appendChild(chip);
  });
}

function addFiles(files) {
  for (const file of files) {
    if (!file.type.startsWith("image/")) continue;
    if (file.size > MAX_ATTACHMENT_BYTES) {
      showBanner(`${file.name} is too large to attach (max ${MAX_ATTACHMENT_BYTES / 1024} KB)`);
      continue;
    }
    const reader = new FileReader();
    reader.onload = () => {
      state.attachments.push({ fileName: file.name, mimeType: file.type, dataUrl: reader.result });
      renderPending();
      updateComposer();
    };
    reader.readAsDataURL(file);
  }
}

function showBanner(text) {
  const banner = $("banner");
  banner.textContent = text;
  banner.hidden = false;
  setTimeout(() => { banner.hidden = true; }, 5000);
}

async function send() {
  const input = $("input");
  const text = input.value.trim();
  const pending = state.attachments.splice(0);
  if (!text && pending.length === 0) return;
  input.value = "";
  autosize();
  renderPending();
  await loaded();
  const bubble = addUser(text, pending.map((item) => item.dataUrl));
  updateComposer();
  const attachments = pending.map((item) => ({
    type: "image",
    mimeType: item.mimeType,
    fileName: item.fileName,
    content: item.dataUrl.slice(item.dataUrl.indexOf(",") + 1),
  }));
  try {
    const params = { sessionKey: state.sessionKey, message: text, idempotencyKey: uuid() };
    if (attachments.length) params.attachments = attachments;
    const ack = await call("chat.send", params);
    if (ack && ack.runId && ack.status === "started") {
      state.active.add(ack.runId);
      bubble.dataset.runId = ack.runId;
    }
    if (ack && ack.reset) loadHistory();
  } catch (error) {
    bubble.classList.add("failed");
    const note = document.createElement("div");
    note.className = "status error-text";
    note.textContent = "Not sent: " + error.message;
    bubble.appendChild(note);
  }
  updateComposer();
  scheduleSessionsRefresh();
}

function autosize() {
  const input = $("input");
  input.style.height = "auto";
  input.style.height = Math.min(input.scrollHeight, 200) + "px";
}

$("messages").addEventListener("scroll", () => {
  const box = $("messages");
  state.follow = atBottom(box);
  if (box.scrollTop < EARLIER_MARGIN) loadEarlier();
});
$("composer").addEventListener("submit", (event) => { event.preventDefault(); send(); });
$("input").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    send();
  }
});
$("input").addEventListener("input", () => { autosize(); updateComposer(); });
$("file-input").addEventListener("change", (event) => {
  addFiles(event.target.files);
  event.target.value = "";
});
$("input").addEventListener("paste", (event) => {
  const files = Array.from(event.clipboardData ? event.clipboardData.files : []);
  if (files.length) addFiles(files);
});
// the 📎 label opens the file picker from the keyboard too
$("attach").addEventListener("keydown", (event) => {
  if (event.key === "Enter" || event.key === " ") {
    event.preventDefault();
    $("file-input").click();
  }
});
$("stop").addEventListener("click", async () => {
  try {
    await call("chat.abort", { sessionKey: state.sessionKey });
  } catch (_) { /* the run may have just ended */ }
});


/** Open `key` in the chat page (used by the Sessions page). */
export function openSession(key) {
  switchSession(key);
  if (location.hash !== "#/chat" && location.hash !== "") location.hash = "#/chat";
}

export default {
  init() {
    on("chat", onChat);
    on("agent", onAgent);
    onConnState(() => updateComposer());
  },
  connected() {
    track(onHello({})).catch(() => { /* reported by the calls themselves */ });
  },
  enter() {
    updateComposer();
  },
};
