/* Automation: cron jobs (`cron.*`: list, add, edit, enable/disable, run now, run
 * history, remove), the scheduler's status, and the heartbeat settings
 * (`agents.defaults.heartbeat`, a form from `config.schema` saved with `config.patch`
 * and the base hash, as on the Config page). */

import { call } from "../lib/conn.js";
import { attempt, fill, h, notice, pageShell, table, when } from "../lib/dom.js";
import { sectionForm } from "../lib/sectionform.js";

let ui = null;
let editing = null; // job id being edited, or null for a new job

function schedule(s) {
  if (!s) return "";
  if (s.kind === "every") return `every ${Math.round(s.everyMs / 60000)} min`;
  if (s.kind === "cron") return `cron ${s.expr}${s.tz ? ` (${s.tz})` : ""}`;
  if (s.kind === "at") return `at ${s.at || when(s.atMs)}`;
  return JSON.stringify(s);
}

function payload(p) {
  if (!p) return "";
  return p.kind === "systemEvent" ? `System: ${p.text}` : `Agent: ${p.message}`;
}

async function act(method, params, done) {
  const result = await attempt(ui.line, () => call(method, params), done);
  await load();
  return result;
}

async function showRuns(job) {
  const result = await attempt(ui.line, () => call("cron.runs", { id: job.id, limit: 50 }));
  if (!result) return;
  fill(ui.runs, h("h2", {}, `Runs of ${job.name}`),
    (result.entries || []).length ? h("div.scroll-x", {}, table([
      ["When", (r) => when(r.ts || r.runAtMs)], ["Status", (r) => r.status || ""],
      ["Summary", (r) => r.summary || r.error || ""], ["Took", (r) => (r.durationMs != null ? `${r.durationMs} ms` : "")],
    ], result.entries.slice().reverse())) : h("p.muted", {}, "No runs yet."));
}

function edit(job) {
  editing = job ? job.id : null;
  const f = ui.form.elements;
  f.name.value = job ? job.name : "";
  const s = job ? job.schedule : { kind: "every", everyMs: 30 * 60000 };
  f.kind.value = s.kind;
  f.when.value = s.kind === "every" ? String(Math.round(s.everyMs / 60000)) : s.kind === "cron" ? s.expr : (s.at || "");
  f.tz.value = s.tz || "";
  const p = job ? job.payload : { kind: "systemEvent", text: "" };
  f.payloadKind.value = p.kind;
  f.text.value = p.kind === "systemEvent" ? p.text : p.message;
  ui.submit.textContent = job ? "Save job" : "Add job";
  ui.cancel.hidden = !job;
  if (job) f.name.focus();
}

function formJob() {
  const f = ui.form.elements;
  const kind = f.kind.value;
  const value = f.when.value.trim();
  let sched;
  if (kind === "every") sched = { kind, everyMs: Math.round(Number(value) * 60000) };
  else if (kind === "cron") sched = { kind, expr: value, ...(f.tz.value.trim() ? { tz: f.tz.value.trim() } : {}) };
  else sched = { kind, at: value };
  const system = f.payloadKind.value === "systemEvent";
  return {
    name: f.name.value.trim(),
    schedule: sched,
    sessionTarget: system ? "main" : "isolated",
    wakeMode: "next-heartbeat",
    payload: system ? { kind: "systemEvent", text: f.text.value } : { kind: "agentTurn", message: f.text.value },
  };
}

async function submit(event) {
  event.preventDefault();
  const job = formJob();
  const ok = editing
    ? await act("cron.update", { id: editing, patch: job }, "Saved.")
    : await act("cron.add", job, "Added.");
  if (ok) edit(null);
}

function loadHeartbeat() {
  return sectionForm(ui.heartbeat, ["agents", "defaults", "heartbeat"],
    { line: ui.line, title: "Heartbeat", saved: "Heartbeat saved." });
}

async function load() {
  loadHeartbeat();
  const [list, status] = await Promise.all([
    attempt(ui.line, () => call("cron.list", { includeDisabled: true })),
    attempt(null, () => call("cron.status")),
  ]);
  if (status) ui.status.textContent = `Scheduler ${status.enabled === false ? "disabled" : "enabled"} · ${status.jobs ?? 0} jobs` +
    (status.nextWakeAtMs ? ` · next wake ${when(status.nextWakeAtMs)}` : "");
  if (!list) return;
  const jobs = list.jobs || [];
  fill(ui.list, jobs.length ? table([
    ["Name", (j) => j.name],
    ["Schedule", (j) => schedule(j.schedule)],
    ["Does", (j) => payload(j.payload)],
    ["Next", (j) => when(j.state && j.state.nextRunAtMs)],
    ["Last", (j) => (j.state && j.state.lastStatus) || ""],
    ["", (j) => h("div.actions", {},
      h("button", { type: "button", onclick: () => act("cron.update", { id: j.id, patch: { enabled: !j.enabled } }) }, j.enabled ? "Disable" : "Enable"),
      h("button", { type: "button", onclick: () => act("cron.run", { id: j.id, mode: "force" }, "Ran.").then(() => showRuns(j)) }, "Run now"),
      h("button", { type: "button", onclick: () => showRuns(j) }, "History"),
      h("button", { type: "button", onclick: () => edit(j) }, "Edit"),
      h("button.danger", { type: "button", onclick: () => confirm(`Remove ${j.name}?`) && act("cron.remove", { id: j.id }, "Removed.") }, "Remove"))],
  ], jobs, { "aria-label": "Cron jobs" }) : h("p.muted", {}, "No cron jobs."));
}

export default {
  init(root) {
    const { line, body } = pageShell(root, "Automation",
      h("button", { type: "button", onclick: () => load() }, "Refresh"));
    const status = h("p.muted");
    const list = h("div.scroll-x");
    const runs = h("div");
    const submitButton = h("button.primary", { type: "submit" }, "Add job");
    const cancel = h("button", { type: "button", hidden: true, onclick: () => edit(null) }, "Cancel");
    const form = h("form.card.job-form", { onsubmit: submit },
      h("h2", {}, "Job"),
      h("div.form-row", {},
        h("label", {}, "Name ", h("input", { name: "name", required: true })),
        h("label", {}, "Schedule ", h("select", { name: "kind" },
          h("option", { value: "every" }, "every N minutes"), h("option", { value: "cron" }, "cron expression"),
          h("option", { value: "at" }, "once at"))),
        h("label", {}, "Value ", h("input", { name: "when", required: true, placeholder: "30 | 0 7 * * * | 2026-01-01T08:00:00Z" })),
        h("label", {}, "Time zone ", h("input", { name: "tz", placeholder: "Europe/Berlin" }))),
      h("div.form-row", {},
        h("label", {}, "Kind ", h("select", { name: "payloadKind" },
          h("option", { value: "systemEvent" }, "system event (main session)"),
          h("option", { value: "agentTurn" }, "agent turn (isolated session)"))),
        h("label.grow", {}, "Text ", h("input", { name: "text", required: true }))),
      h("div.form-row", {}, submitButton, cancel));
    const heartbeat = h("section.card.heartbeat");
    body.append(status, list, form, runs, heartbeat);
    ui = { line, status, list, runs, form, submit: submitButton, cancel, heartbeat };
    edit(null);
    notice(line, "", "");
  },
  enter: load,
};
