/* Usage: tokens and cost by day, model and agent (`usage.cost`), and per provider
 * today / last 30 days (`usage.status`). */

import { call } from "../lib/conn.js";
import { attempt, fill, h, num, pageShell, table } from "../lib/dom.js";

let ui = null;

const money = (v) => (typeof v === "number" ? `$${v.toFixed(4)}` : "");

function rows(value, keyName) {
  if (Array.isArray(value)) return value;
  return Object.entries(value || {}).map(([key, v]) => ({ [keyName]: key, ...(typeof v === "object" ? v : { value: v }) }));
}

function usageTable(title, list, keyName) {
  const columns = [[keyName, (r) => r[keyName] ?? r.date ?? r.key ?? ""]];
  for (const [field, label, fmt] of [
    ["input", "Input", num], ["output", "Output", num], ["cacheRead", "Cache read", num],
    ["totalTokens", "Tokens", num], ["totalCost", "Cost", money], ["cost", "Cost", money],
  ]) {
    if (list.some((r) => r[field] !== undefined)) columns.push([label, (r) => fmt(r[field])]);
  }
  return h("section.card", { dataset: { usage: keyName } }, h("h2", {}, title),
    list.length ? h("div.scroll-x", {}, table(columns, list)) : h("p.muted", {}, "No usage recorded."));
}

async function load() {
  const days = Number(ui.days.value);
  const [cost, status] = await Promise.all([
    attempt(ui.line, () => call("usage.cost", { days })),
    attempt(ui.line, () => call("usage.status")),
  ]);
  if (!cost) return;
  const totals = cost.totals || {};
  fill(ui.out, 
    h("dl.facts", {}, Object.entries(totals).flatMap(([k, v]) =>
      [h("dt", {}, k), h("dd", {}, /cost/i.test(k) ? money(v) : num(v))])),
    usageTable("By day", rows(cost.daily, "date"), "date"),
    usageTable("By model", rows(cost.byModel, "model"), "model"),
    usageTable("By agent", rows(cost.byAgent, "agentId"), "agentId"),
    usageTable("By session", rows(cost.bySession, "key"), "key"),
    status ? usageTable("Today by provider",
      (status.providers || []).map((p) => ({ provider: p.provider, ...(p.today || {}) })), "provider") : null);
}

export default {
  init(root) {
    const days = h("select", { "aria-label": "Period" },
      [1, 7, 30, 90, 365].map((d) => h("option", { value: String(d), selected: d === 30 }, `${d} days`)));
    const { line, body } = pageShell(root, "Usage", days,
      h("button", { type: "button", onclick: () => load() }, "Refresh"));
    const out = h("div");
    body.append(out);
    ui = { line, days, out };
    days.addEventListener("change", load);
  },
  enter: load,
};
