/* Logs: a live tail of the gateway's log file over the protocol (`logs.tail` with a
 * cursor, asked again every second while the page is shown), with level and subsystem
 * filters, a search and a pause. Paused, the tail is still read but its new lines are
 * held back (the button counts them) and shown on Resume. */

import { call } from "../lib/conn.js";
import { fill, h, notice, pageShell } from "../lib/dom.js";

const POLL_MS = 1000;
const KEEP = 2000;
const LEVELS = ["debug", "info", "warning", "error", "critical"];
let ui = null;
let cursor = null;
let timer = null;
let entries = [];
let paused = false;
let held = []; // lines read while paused, shown on Resume
let busy = false;

function parse(line) {
  try {
    const entry = JSON.parse(line);
    if (entry && typeof entry === "object") return entry;
  } catch (_) { /* not JSON: keep it as a message */ }
  return { level: "info", subsystem: "", message: line };
}

function visible(entry) {
  const min = LEVELS.indexOf(ui.level.value);
  if (LEVELS.indexOf(entry.level) < min && LEVELS.includes(entry.level)) return false;
  const sub = ui.subsystem.value;
  if (sub && !(entry.subsystem || "").startsWith(sub)) return false;
  const query = ui.search.value.trim().toLowerCase();
  return !query || JSON.stringify(entry).toLowerCase().includes(query);
}

function row(entry) {
  return h("div.log-line", { dataset: { level: entry.level || "" } },
    h("span.time", {}, (entry.time || "").replace("T", " ").replace(/\.\d+Z$/, "")),
    h("span.level", {}, entry.level || ""), h("span.sub", {}, entry.subsystem || ""),
    h("span.message", {}, entry.message || ""),
    entry.exception ? h("pre", {}, entry.exception) : null);
}

function render() {
  fill(ui.out, ...entries.filter(visible).map(row));
  const subs = [...new Set(entries.map((e) => (e.subsystem || "").split(".")[0]).filter(Boolean))].sort();
  const chosen = ui.subsystem.value;
  fill(ui.subsystem, h("option", { value: "" }, "all subsystems"),
    subs.map((s) => h("option", { value: s, selected: s === chosen }, s)));
  ui.out.scrollTop = ui.out.scrollHeight;
}

function showHeld() {
  ui.pause.textContent = !paused ? "Pause" : held.length ? `Resume (${held.length} new)` : "Resume";
  ui.pause.dataset.held = String(held.length);
}

async function poll() {
  if (busy) return;
  busy = true;
  try {
    const result = await call("logs.tail", { cursor: cursor ?? undefined, limit: 500 });
    if (result.reset) { entries = []; held = []; }
    const fresh = (result.lines || []).map(parse);
    cursor = result.cursor;
    ui.out.dataset.cursor = String(cursor);
    if (paused) {
      held = held.concat(fresh).slice(-KEEP);
      showHeld();
    } else if (fresh.length) {
      entries = entries.concat(fresh).slice(-KEEP);
      const follow = ui.out.scrollHeight - ui.out.scrollTop - ui.out.clientHeight < 40;
      const shown = fresh.filter(visible).map(row);
      ui.out.append(...shown);
      while (ui.out.childElementCount > KEEP) ui.out.firstElementChild.remove();
      if (follow) ui.out.scrollTop = ui.out.scrollHeight;
    }
    notice(ui.line, result.file ? `${result.file}` : "", "");
  } catch (error) {
    notice(ui.line, error.message, "error");
  } finally {
    busy = false;
  }
}

export default {
  init(root) {
    const level = h("select", { "aria-label": "Minimum level" },
      LEVELS.map((l) => h("option", { value: l, selected: l === "debug" }, l)));
    const subsystem = h("select", { "aria-label": "Subsystem" });
    const search = h("input", { type: "search", placeholder: "Search", "aria-label": "Search logs" });
    const pause = h("button", { type: "button", "aria-pressed": "false" }, "Pause");
    const { line, body } = pageShell(root, "Logs", level, subsystem, search, pause);
    const out = h("div.log-out", { role: "log", "aria-live": "off", tabindex: "0" });
    body.append(out);
    ui = { line, level, subsystem, search, out, pause };
    for (const el of [level, subsystem]) el.addEventListener("change", render);
    search.addEventListener("input", render);
    pause.addEventListener("click", () => {
      paused = !paused;
      pause.setAttribute("aria-pressed", String(paused));
      document.body.dataset.logsPaused = String(paused);
      if (!paused && held.length) {
        entries = entries.concat(held).slice(-KEEP);
        held = [];
        render();
      }
      showHeld();
    });
  },
  enter() {
    clearInterval(timer);
    if (cursor === null) { entries = []; fill(ui.out); }
    poll().then(render);
    timer = setInterval(poll, POLL_MS);
  },
  leave() {
    clearInterval(timer);
  },
};
