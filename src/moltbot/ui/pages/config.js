/* Config: a form generated from `config.schema` and a raw JSON5 editor, both saved with
 * the base hash of the version they were loaded from. A review (the changed fields, or
 * a line diff) comes before every save. A file that changed meanwhile is a conflict:
 * shown with its diff, never overwritten; the user's edits stay in the page. */

import { call } from "../lib/conn.js";
import { attempt, fill, h, notice, pageShell, table, when } from "../lib/dom.js";
import { renderDiff } from "../lib/diff.js";
import { schemaForm } from "../lib/schemaform.js";

const STALE = /changed since last load/;
const SYNTAX_AT = /at .*?:(\d+):(\d+)(?::|\b)/;
let ui = null;
let loaded = null; // config.get payload the edits are based on
let schema = null;
let form = null;
let mode = "form";

function setMode(next) {
  mode = next;
  ui.formTab.setAttribute("aria-selected", String(next === "form"));
  ui.rawTab.setAttribute("aria-selected", String(next === "raw"));
  ui.historyTab.setAttribute("aria-selected", String(next === "history"));
  ui.formPane.hidden = next !== "form";
  ui.rawPane.hidden = next !== "raw";
  ui.historyPane.hidden = next !== "history";
  ui.review.hidden = true;
  if (next === "history") loadHistory();
}

// ---- history: the kept versions; one is restored through the raw editor ----------------

async function loadHistory() {
  const result = await attempt(ui.line, () => call("config.history"));
  if (!result) return;
  const good = result.lastGood && result.lastGood.hash;
  fill(ui.historyPane,
    h("p.muted", {}, `Current file written by ${result.current.writtenBy || "?"}` +
      (good === result.current.hash ? " (the last good config)" : "")),
    result.versions.length ? h("div.scroll-x", {}, table([
      ["#", (v) => String(v.number)], ["Saved", (v) => when(v.savedAt)],
      ["Written by", (v) => v.writtenBy], ["Replaced by", (v) => v.replacedBy],
      ["", (v) => (v.hash === good ? h("span.badge", { dataset: { state: "running" } }, "last good") : "")],
      ["", (v) => h("button", { type: "button", onclick: () => restore(v) }, "Restore…")],
    ], result.versions, { dataset: { table: "history" } })) : h("p.muted", {}, "No earlier versions kept yet."));
}

async function restore(version) {
  const got = await attempt(ui.line, () => call("config.history.get", { id: version.id }));
  await loading; // the restored text must not be overwritten by a load still in flight
  if (!got || !loaded) return;
  setMode("raw");
  ui.raw.value = got.raw;
  review();
  notice(ui.line, `Version ${version.number} is in the editor: review and save to restore it ` +
    "(secrets keep their current values).", "");
}

let loading = Promise.resolve();

/** Load the file and schema; a restore or review waits for a load in flight. */
function load() {
  loading = loadNow();
  return loading;
}

async function loadNow() {
  const [got, shape] = await Promise.all([
    attempt(ui.line, () => call("config.get")),
    schema ? Promise.resolve(schema) : attempt(ui.line, () => call("config.schema")),
  ]);
  if (!got || !shape) return;
  loaded = got;
  schema = shape;
  ui.conflict.hidden = true;
  ui.path.textContent = `${got.path} · hash ${String(got.hash || "").slice(0, 12)}`;
  ui.raw.value = got.raw || "{}\n";
  ui.rawError.hidden = true;
  buildForm();
  if (!got.valid) notice(ui.line, "The file on disk is invalid: " + (got.issues[0] || {}).message, "error");
  document.body.dataset.configHash = got.hash || "";
}

function filterFields() {
  const query = ui.find.value.trim().toLowerCase();
  for (const field of ui.form.querySelectorAll(".field")) {
    const path = field.querySelector("[data-path]").dataset.path.toLowerCase();
    field.hidden = Boolean(query) && !path.includes(query);
  }
  for (const group of [...ui.form.querySelectorAll("details.group")].reverse()) {
    const match = Boolean(query) && group.querySelector(".field:not([hidden])") !== null;
    group.hidden = Boolean(query) && !match;
    if (query) group.open = match;
  }
}

function buildForm() {
  form = schemaForm(schema.schema, loaded.parsed || {}, {
    hints: schema.uiHints, onChange: () => { ui.review.hidden = true; },
  });
  fill(ui.form, form.element);
  filterFields();
}

function showConflict(mine) {
  attempt(null, () => call("config.get")).then((theirs) => {
    ui.conflict.hidden = false;
    fill(ui.conflict, 
      h("h2", {}, "Conflict: the file changed since you loaded it"),
      h("p", {}, "Nothing was saved and nothing was overwritten. Your edits are still here. " +
        "Below: what changed on disk since you loaded it."),
      renderDiff(loaded.raw || "", (theirs && theirs.raw) || ""),
      h("div.form-row", {},
        h("button", { type: "button", onclick: () => load() }, "Discard my edits and load the new version"),
        mine ? h("button", { type: "button", onclick: () => navigator.clipboard?.writeText(mine) }, "Copy my version") : null));
    ui.conflict.focus();
  });
}

function afterSave(result) {
  notice(ui.line, `Saved (hash ${String(result.hash || "").slice(0, 12)}); the gateway applies it itself.`, "ok");
  load().then(() => notice(ui.line, `Saved (hash ${String(result.hash || "").slice(0, 12)}); the gateway applies it itself.`, "ok"));
}

async function save(method, params, mine) {
  try {
    const result = await call(method, { ...params, baseHash: loaded.hash || undefined });
    ui.review.hidden = true;
    afterSave(result);
  } catch (error) {
    ui.review.hidden = true;
    if (STALE.test(error.message)) { notice(ui.line, error.message, "error"); showConflict(mine); return; }
    const at = error.message.match(SYNTAX_AT);
    if (method === "config.set" && at) showRawError(error.message, Number(at[1]), Number(at[2]));
    else notice(ui.line, error.message, "error");
  }
}

function showRawError(message, line, col) {
  ui.rawError.hidden = false;
  fill(ui.rawError, 
    h("span", { dataset: { line: String(line), col: String(col) } }, `Line ${line}, column ${col}: `), message,
    h("button.link", { type: "button", onclick: () => goTo(line, col) }, " Go there"));
  goTo(line, col);
}

function goTo(line, col) {
  const lines = ui.raw.value.split("\n");
  let offset = 0;
  for (let i = 0; i < Math.min(line - 1, lines.length); i++) offset += lines[i].length + 1;
  offset += Math.max(0, col - 1);
  ui.raw.focus();
  ui.raw.setSelectionRange(offset, offset + 1);
}

function review() {
  if (!loaded) return;
  ui.review.hidden = false;
  notice(ui.line, "", "");
  if (mode === "form") {
    const errors = form.errors();
    if (errors.length) {
      fill(ui.review, h("p.error", {}, "Fix these first: " + errors.map(([p, m]) => `${p}: ${m}`).join("; ")));
      return;
    }
    const changes = form.changes();
    fill(ui.review, 
      h("h2", {}, "Review"),
      changes.length ? h("ul.changes", {}, changes.map(([path, before, after]) =>
        h("li", {}, h("code", {}, path), `: ${JSON.stringify(before) ?? "(unset)"} → ${JSON.stringify(after) ?? "(unset)"}`)))
        : h("p", {}, "No changes."),
      changes.length ? h("button.primary", {
        type: "button", id: "config-confirm", onclick: () => save("config.patch", { raw: JSON.stringify(form.patch()) }),
      }, "Save") : null);
  } else {
    const text = ui.raw.value;
    fill(ui.review, h("h2", {}, "Review"), renderDiff(loaded.raw || "", text),
      h("button.primary", { type: "button", id: "config-confirm", onclick: () => save("config.set", { raw: text }, text) }, "Save"));
  }
  ui.review.querySelector("button.primary")?.focus();
}

export default {
  init(root) {
    const formTab = h("button", { type: "button", role: "tab", onclick: () => setMode("form") }, "Form");
    const rawTab = h("button", { type: "button", role: "tab", onclick: () => setMode("raw") }, "Raw JSON5");
    const historyTab = h("button", { type: "button", role: "tab", onclick: () => setMode("history") }, "History");
    const { line, body } = pageShell(root, "Config",
      h("div.tabs", { role: "tablist" }, formTab, rawTab, historyTab),
      h("button", { type: "button", onclick: () => load() }, "Reload"),
      h("button.primary", { type: "button", id: "config-review", onclick: review }, "Review & save"));
    const path = h("p.muted");
    const conflict = h("div.conflict", { hidden: true, tabindex: "-1", role: "alert" });
    const review_ = h("div.review", { hidden: true });
    const formEl = h("form.config-form", { onsubmit: (e) => { e.preventDefault(); review(); } });
    const raw = h("textarea.raw", { spellcheck: "false", "aria-label": "Config file (JSON5)", rows: 24 });
    raw.addEventListener("input", () => { ui.review.hidden = true; });
    const rawError = h("p.error.raw-error", { hidden: true, role: "alert" });
    const find = h("input", { type: "search", placeholder: "Find a setting (e.g. gateway.port)", "aria-label": "Find a setting" });
    find.addEventListener("input", () => filterFields());
    const formPane = h("div", {}, find, formEl);
    const rawPane = h("div", { hidden: true }, rawError, raw);
    const historyPane = h("div", { hidden: true });
    body.append(path, conflict, review_, formPane, rawPane, historyPane);
    ui = { line, path, conflict, review: review_, form: formEl, raw, rawError, formPane, rawPane, formTab, rawTab, find,
      historyTab, historyPane };
    setMode("form");
  },
  async enter() {
    if (!loaded) { load(); return; }
    // back on the page: keep the user's edits; load only a changed, untouched file
    const got = await attempt(null, () => call("config.get"));
    if (!got || got.hash === loaded.hash) return;
    const edited = form.dirty() || ui.raw.value !== (loaded.raw || "{}\n");
    if (edited) notice(ui.line, "The file changed on disk since it was loaded here; saving will show the conflict.", "");
    else load();
  },
};
