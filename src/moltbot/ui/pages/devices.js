/* Devices, nodes and exec approvals: pending device pairings (approve / reject), paired
 * devices with their role tokens (rotate / revoke), nodes with their capabilities and
 * pending node pairings, and the exec approvals waiting now (`device.*`, `node.*`,
 * `exec.approval.*`). The approval prompt itself pops up on every page (lib/approvals.js). */

import { call, on } from "../lib/conn.js";
import { ago, attempt, fill, h, notice, pageShell, table, when } from "../lib/dom.js";
import { pendingApprovals, resolveApproval } from "../lib/approvals.js";

let ui = null;
let shown = false;

const act = (method, params, done) => attempt(ui.line, () => call(method, params), done).then((r) => { load(); return r; });
const list = (value) => (Array.isArray(value) ? value.join(", ") : value || "");

function devices(result) {
  const pending = result.pending || [];
  const paired = result.paired || [];
  const tokens = paired.flatMap((d) => (d.tokens || []).map((t) => ({ device: d, token: t })));
  return [
    h("h2", {}, "Device pairing requests"),
    pending.length ? h("div.scroll-x", {}, table([
      ["Device", (r) => r.displayName || r.deviceId], ["Platform", (r) => r.platform || ""],
      ["Role", (r) => r.role || list(r.roles)], ["Scopes", (r) => list(r.scopes)],
      ["From", (r) => r.remoteIp || ""], ["Asked", (r) => ago(r.ts)],
      ["", (r) => h("div.actions", {},
        h("button.primary", { type: "button", onclick: () => act("device.pair.approve", { requestId: r.requestId }, "Approved.") }, "Approve"),
        h("button", { type: "button", onclick: () => act("device.pair.reject", { requestId: r.requestId }, "Rejected.") }, "Reject"))],
    ], pending, { dataset: { table: "device-pending" } })) : h("p.muted", {}, "No device is waiting."),
    h("h2", {}, "Paired devices"),
    tokens.length ? h("div.scroll-x", {}, table([
      ["Device", ({ device }) => device.displayName || device.deviceId], ["Platform", ({ device }) => device.platform || ""],
      ["Role", ({ token }) => token.role], ["Scopes", ({ token }) => list(token.scopes)],
      ["Token", ({ token }) => (token.revokedAtMs ? `revoked ${when(token.revokedAtMs)}` : `issued ${when(token.rotatedAtMs || token.createdAtMs)}`)],
      ["", ({ device, token }) => token.revokedAtMs ? "" : h("div.actions", {},
        h("button", { type: "button", onclick: async () => {
          const r = await act("device.token.rotate", { deviceId: device.deviceId, role: token.role });
          if (r) notice(ui.line, `New ${r.role} token for ${device.displayName || device.deviceId} (shown once): ${r.token}`, "ok");
        } }, "Rotate"),
        h("button.danger", { type: "button", onclick: () => confirm(`Revoke the ${token.role} token of ${device.displayName || device.deviceId}? Its connections close now.`)
          && act("device.token.revoke", { deviceId: device.deviceId, role: token.role }, "Revoked.") }, "Revoke"))],
    ], tokens, { dataset: { table: "device-paired" } })) : h("p.muted", {}, "No paired devices."),
  ];
}

function nodes(listed, pairing) {
  const rows = listed.nodes || [];
  const pending = pairing.pending || [];
  return [
    h("h2", {}, "Nodes"),
    rows.length ? h("div.scroll-x", {}, table([
      ["Node", (n) => n.displayName || n.nodeId], ["Platform", (n) => n.platform || ""],
      ["Connected", (n) => (n.connected ? "yes" : "no")], ["Paired", (n) => (n.paired ? "yes" : "no")],
      ["Capabilities", (n) => list(n.caps)], ["Commands", (n) => list(n.commands)],
      ["", (n) => h("button", { type: "button", onclick: () => {
        const name = prompt("New name", n.displayName || "");
        if (name) act("node.rename", { nodeId: n.nodeId, displayName: name }, "Renamed.");
      } }, "Rename")],
    ], rows, { dataset: { table: "nodes" } })) : h("p.muted", {}, "No nodes."),
    pending.length ? [h("h2", {}, "Node pairing requests"), h("div.scroll-x", {}, table([
      ["Node", (r) => r.displayName || r.nodeId], ["Platform", (r) => r.platform || ""], ["Asked", (r) => ago(r.ts)],
      ["", (r) => h("div.actions", {},
        h("button.primary", { type: "button", onclick: () => act("node.pair.approve", { requestId: r.requestId }, "Approved.") }, "Approve"),
        h("button", { type: "button", onclick: () => act("node.pair.reject", { requestId: r.requestId }, "Rejected.") }, "Reject"))],
    ], pending, { dataset: { table: "node-pending" } }))] : null,
  ];
}

function approvals() {
  const waiting = pendingApprovals();
  return [h("h2", {}, "Exec approvals waiting"),
    waiting.length ? h("div.scroll-x", {}, table([
      ["Command", (a) => h("code", {}, a.request.command)], ["Agent", (a) => a.request.agentId || ""],
      ["Session", (a) => a.request.sessionKey || ""], ["Expires", (a) => when(a.expiresAtMs)],
      ["", (a) => h("div.actions", {},
        ["allow-once", "allow-always", "deny"].map((d) => h("button", { type: "button", onclick: () => resolveApproval(a.id, d) }, d)))],
    ], waiting, { dataset: { table: "approvals" } })) : h("p.muted", {}, "Nothing waits for an approval.")];
}

async function load() {
  if (!shown) return;
  const [paired, listed, pairing] = await Promise.all([
    attempt(ui.line, () => call("device.pair.list")),
    attempt(ui.line, () => call("node.list")),
    attempt(ui.line, () => call("node.pair.list")),
  ]);
  fill(ui.devices, paired ? devices(paired) : null);
  fill(ui.nodes, listed ? nodes(listed, pairing || {}) : null);
  fill(ui.approvals, approvals());
}

export default {
  init(root) {
    const { line, body } = pageShell(root, "Devices", h("button", { type: "button", onclick: () => load() }, "Refresh"));
    const devicesEl = h("section.card");
    const nodesEl = h("section.card");
    const approvalsEl = h("section.card");
    body.append(approvalsEl, devicesEl, nodesEl);
    ui = { line, devices: devicesEl, nodes: nodesEl, approvals: approvalsEl };
    for (const event of ["device.pair.requested", "device.pair.resolved", "node.pair.requested", "node.pair.resolved",
      "exec.approval.requested", "exec.approval.resolved"]) on(event, () => load());
  },
  enter() { shown = true; load(); },
  leave() { shown = false; },
};
