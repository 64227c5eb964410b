/* Sessions: list with search and agent filter, preview, label, model and thinking
 * overrides, reset / compact / delete, token use per session. */

import { call } from "../lib/conn.js";
import { ago, attempt, fill, h, num, pageShell, table } from "../lib/dom.js";
import { openSession } from "./chat.js";

const THINKING = ["", "off", "minimal", "low", "medium", "high"];
let ui = null;
let rows = [];
let usage = new Map(); // session key -> usage.cost's bySession row (last 30 days)
let selected = null;

const agentOf = (key) => (key.split(":")[0] === "agent" ? key.split(":")[1] : "");

function render() {
  const query = ui.search.value.trim().toLowerCase();
  const agent = ui.agent.value;
  const shown = rows.filter((row) => (!agent || agentOf(row.key) === agent) && (!query ||
    [row.key, row.label, row.derivedTitle, row.lastMessagePreview]
      .some((v) => (v || "").toLowerCase().includes(query))));
  fill(ui.list, table([
    ["Session", (r) => h("button.link.row-open", {
      type: "button", dataset: { key: r.key }, onclick: () => select(r.key),
    }, r.label || r.derivedTitle || r.key)],
    ["Key", (r) => h("code", {}, r.key)],
    ["Updated", (r) => ago(r.updatedAt)],
    ["Model", (r) => r.model || ""],
    ["Tokens (30 days)", (r) => num((usage.get(r.key) || {}).totalTokens ?? r.totalTokens ?? 0)],
    ["Cost (30 days)", (r) => { const c = (usage.get(r.key) || {}).totalCost; return c ? `$${c.toFixed(4)}` : ""; }],
  ], shown, { "aria-label": "Sessions" }));
  ui.count.textContent = `${shown.length} of ${rows.length}`;
}

async function load() {
  const result = await attempt(ui.line, () => call("sessions.list", {
    includeDerivedTitles: true, includeLastMessage: true, limit: 500,
  }));
  if (!result) return;
  rows = result.sessions || [];
  const cost = await attempt(null, () => call("usage.cost", { days: 30 }));
  usage = new Map((((cost || {}).bySession) || []).map((u) => [u.key, u]));
  const agents = [...new Set(rows.map((r) => agentOf(r.key)).filter(Boolean))].sort();
  const chosen = ui.agent.value;
  fill(ui.agent, h("option", { value: "" }, "all agents"),
    agents.map((a) => h("option", { value: a, selected: a === chosen }, a)));
  ui.agent.hidden = agents.length < 2;
  render();
  if (selected) select(selected);
}

async function select(key) {
  selected = key;
  const row = rows.find((r) => r.key === key) || { key };
  const preview = await attempt(ui.line, () => call("sessions.preview", { keys: [key], limit: 8 }));
  const items = ((preview && preview.previews) || [])[0]?.items || [];
  const label = h("input", { value: row.label || "", "aria-label": "Label", maxlength: "100" });
  const model = h("input", { value: row.model || "", placeholder: "provider/model", "aria-label": "Model override" });
  const thinking = h("select", { "aria-label": "Thinking level" },
    THINKING.map((t) => h("option", { value: t, selected: (row.thinkingLevel || "") === t }, t || "(default)")));
  const act = (method, params, done) => attempt(ui.line, async () => {
    const result = await call(method, params);
    await load();
    return result;
  }, done);
  const compacted = (r) => (r.compacted
    ? `Compacted: ${num(r.tokensBefore ?? 0)} → ${num(r.tokensAfter ?? 0)} tokens.`
    : `Nothing compacted: ${r.reason || "no older turns"}.`);
  fill(ui.detail, 
    h("h2", {}, row.label || row.derivedTitle || key),
    h("p.muted", {}, key),
    h("div.form-row", {},
      h("label", {}, "Label ", label),
      h("label", {}, "Model ", model),
      h("label", {}, "Thinking ", thinking),
      h("button", {
        type: "button", onclick: () => act("sessions.patch", {
          key, label: label.value.trim() || null, model: model.value.trim() || null,
          thinkingLevel: thinking.value || null,
        }, "Saved."),
      }, "Save")),
    h("div.form-row", {},
      h("button", { type: "button", onclick: () => openSession(key) }, "Open in chat"),
      h("button", { type: "button", onclick: () => act("sessions.compact", { key }, compacted) }, "Compact"),
      h("button", {
        type: "button", onclick: () => confirm(`Reset ${key}? Its transcript is archived.`)
          && act("sessions.reset", { key }, "Reset."),
      }, "Reset"),
      h("button.danger", {
        type: "button", onclick: () => {
          if (!confirm(`Delete ${key}? Its transcript is archived.`)) return;
          selected = null;
          fill(ui.detail);
          act("sessions.delete", { key }, "Deleted.");
        },
      }, "Delete")),
    h("dl.facts", {},
      ["inputTokens", "outputTokens", "totalTokens", "contextTokens"].filter((k) => row[k] != null)
        .flatMap((k) => [h("dt", {}, k), h("dd", {}, num(row[k]))])),
    h("div.preview", {}, items.length ? items.map((item) =>
      h("div.preview-item", { dataset: { role: item.role } }, h("b", {}, item.role + ": "), item.text || ""))
      : h("p.muted", {}, "No messages yet.")));
}

export default {
  init(root) {
    const search = h("input", { type: "search", placeholder: "Search sessions", "aria-label": "Search sessions" });
    const refresh = h("button", { type: "button", onclick: load }, "Refresh");
    const agent = h("select", { "aria-label": "Agent", hidden: true });
    agent.addEventListener("change", render);
    const { line, body } = pageShell(root, "Sessions", search, agent, refresh);
    const count = h("span.muted");
    const list = h("div.scroll-x");
    const detail = h("div.detail");
    body.append(count, list, detail);
    ui = { line, search, list, detail, count, agent };
    search.addEventListener("input", render);
  },
  enter: load,
};
