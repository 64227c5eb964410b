/* Channels: each channel's accounts (state, connected, last error, retry backoff) from
 * `channels.status`, a live probe, and logout where the gateway offers `channels.logout`.
 * Channel settings are edited on the Config page (its `channels` section). */

import { call } from "../lib/conn.js";
import { ago, attempt, h, pageShell, table, when } from "../lib/dom.js";

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

async function load(probe) {
  const status = await attempt(ui.line, () => call("channels.status", probe ? { probe: true, timeoutMs: 8000 } : {}));
  if (!status) return;
  const order = status.channelOrder || [];
  ui.list.replaceChildren(
    status.error ? h("p.error", {}, status.error) : null,
    order.length ? order.map((name) => {
      const summary = status.channels[name] || {};
      return h("section.card", { dataset: { channel: name } },
        h("h2", {}, status.channelLabels[name] || name, " ",
          h("span.badge", { dataset: { state: summary.state } }, summary.state)),
        summary.lastError ? h("p.error", {}, summary.lastError) : null,
        h("div.scroll-x", {}, accounts(name, status.channelAccounts[name] || [])));
    }) : h("p.muted", {}, "No channels are configured. Add one with `moltbot channels add` or in Config → channels."));
}

export default {
  init(root) {
    const { line, body } = pageShell(root, "Channels",
      h("button", { type: "button", onclick: () => load(false) }, "Refresh"),
      h("button", { type: "button", onclick: () => load(true) }, "Probe now"),
      h("a.button", { href: "#/config" }, "Edit settings"));
    const list = h("div");
    body.append(list);
    ui = { line, list };
  },
  enter: () => load(false),
};
