/* Channels: each channel's accounts (state, connected, last error, retry backoff) from
 * `channels.status`, a live probe, logout (`channels.logout`), DM pairing requests to
 * approve or reject and the approved senders (`channels.pairing.*`). Channel settings
 * are edited on the Config page (its `channels` section). */

import { call } from "../lib/conn.js";
import { ago, attempt, fill, h, pageShell, table, when } from "../lib/dom.js";
import { sectionForm } from "../lib/sectionform.js";

let ui = null;

function accounts(channel, rows) {
  return table([
    ["Account", (a) => a.name ? `${a.accountId} (${a.name})` : a.accountId],
    ["State", (a) => h("span.badge", { dataset: { state: a.state } }, a.state)],
    ["Connected", (a) => (a.connected ? "yes" : "no")],
    ["Bot", (a) => (a.bot ? a.bot.username || a.bot.id : "")],
    ["DM policy", (a) => a.dmPolicy || ""],
    ["Last in / out", (a) => `${ago(a.lastInboundAt) || "–"} / ${ago(a.lastOutboundAt) || "–"}`],
    ["Last error", (a) => (a.lastError ? `${a.lastError} (${ago(a.lastErrorAt)})` : "")],
    ["Backoff", (a) => (a.nextRetryAt ? `retry ${when(a.nextRetryAt)} (attempt ${a.reconnectAttempts})` : "")],
    ["", (a) => h("button", {
      type: "button", onclick: () => confirm(`Log ${channel}:${a.accountId} out?`) &&
        attempt(ui.line, () => call("channels.logout", { channel, accountId: a.accountId }), "Logged out.").then(load),
    }, "Logout")],
  ], rows, { "aria-label": `${channel} accounts` });
}

async function loadPairing() {
  const result = await attempt(ui.line, () => call("channels.pairing.list"));
  if (!result) return;
  const act = (method, params, done) =>
    attempt(ui.line, () => call(method, params), done).then(loadPairing);
  const who = (r) => {
    const m = r.meta || {};
    return [m.name, m.username ? "@" + m.username : null, `id ${r.id}`].filter(Boolean).join(" · ");
  };
  const allowed = Object.entries(result.allowed || {}).filter(([, ids]) => ids.length);
  fill(ui.pairing, h("h2", {}, "Pairing requests"),
    result.requests.length ? h("div.scroll-x", {}, table([
      ["Channel", (r) => r.channel], ["Code", (r) => h("code", {}, r.code)], ["Sender", who],
      ["Asked", (r) => ago(Date.parse(r.lastSeenAt))],
      ["", (r) => h("div.actions", {},
        h("button.primary", { type: "button", onclick: () => act("channels.pairing.approve", { channel: r.channel, code: r.code }, `Approved ${who(r)}.`) }, "Approve"),
        h("button", { type: "button", onclick: () => act("channels.pairing.reject", { channel: r.channel, code: r.code }, "Rejected.") }, "Reject"))],
    ], result.requests, { "aria-label": "Pairing requests", dataset: { table: "pairing" } }))
      : h("p.muted", {}, "No pending requests. A stranger who writes to the bot gets a code that shows up here."),
    h("h2", {}, "Approved senders"),
    allowed.length ? h("ul.allowed", {}, allowed.flatMap(([channel, ids]) => ids.map((id) =>
      h("li", {}, `${channel}: ${id} `, h("button", {
        type: "button", onclick: () => confirm(`Revoke ${channel} sender ${id}?`) &&
          act("channels.pairing.revoke", { channel, id }, "Revoked."),
      }, "Revoke")))))
      : h("p.muted", {}, "None approved by pairing (config allowFrom lists are on the Config page)."));
}

async function load(probe) {
  loadPairing();
  const status = await attempt(ui.line, () => call("channels.status", probe ? { probe: true, timeoutMs: 8000 } : {}));
  if (!status) return;
  const order = status.channelOrder || [];
  fill(ui.list, 
    status.error ? h("p.error", {}, status.error) : null,
    order.length ? order.map((name) => {
      const summary = status.channels[name] || {};
      const settings = h("details.channel-settings", {
        ontoggle: (e) => e.target.open && sectionForm(form, ["channels", name],
          { line: ui.line, title: "Settings", saved: `${status.channelLabels[name] || name} settings saved.` }),
      }, h("summary", {}, "Settings"));
      const form = h("div");
      settings.append(form);
      return h("section.card", { dataset: { channel: name } },
        h("h2", {}, status.channelLabels[name] || name, " ",
          h("span.badge", { dataset: { state: summary.state } }, summary.state)),
        summary.lastError ? h("p.error", {}, summary.lastError) : null,
        h("div.scroll-x", {}, accounts(name, status.channelAccounts[name] || [])), settings);
    }) : h("p.muted", {}, "No channels are configured. Add one with `moltbot channels add` or in Config → channels."));
}

export default {
  init(root) {
    const { line, body } = pageShell(root, "Channels",
      h("button", { type: "button", onclick: () => load(false) }, "Refresh"),
      h("button", { type: "button", onclick: () => load(true) }, "Probe now"),
      h("a.button", { href: "#/config" }, "Edit settings"));
    const list = h("div");
    const pairing = h("section.card.pairing");
    body.append(list, pairing);
    ui = { line, list, pairing };
  },
  enter: () => load(false),
};
