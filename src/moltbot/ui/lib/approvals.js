/* Exec approval prompts: when an agent's command waits for an operator
 * (`exec.approval.requested`), a dialog pops up on whatever page is open, with the
 * command, its directory, agent and session, and Allow once / Always allow / Deny
 * (`exec.approval.resolve`). A decision made elsewhere (`exec.approval.resolved`, the
 * CLI, a chat reply) or the request's expiry closes it. */

import { call, on, onReady } from "./conn.js";
import { $, fill, h, when } from "./dom.js";

const waiting = new Map(); // id -> {id, request, createdAtMs, expiresAtMs}
let dialog = null;

export function pendingApprovals() {
  return [...waiting.values()];
}

export async function resolveApproval(id, decision) {
  try {
    await call("exec.approval.resolve", { id, decision });
    waiting.delete(id);
  } catch (error) {
    const line = dialog && dialog.querySelector(".error");
    if (line) { line.hidden = false; line.textContent = error.message; }
  }
  render();
}

function render() {
  const [next] = waiting.values();
  if (!next) {
    if (dialog.open) dialog.close();
    return;
  }
  const r = next.request || {};
  fill(dialog, h("form", { method: "dialog", onsubmit: (e) => e.preventDefault() },
    h("h2", {}, "Allow this command?"),
    h("pre.command", {}, r.command || ""),
    h("dl.facts", {},
      [["Directory", r.cwd], ["Agent", r.agentId], ["Session", r.sessionKey], ["Host", r.host],
        ["Expires", when(next.expiresAtMs)]].filter(([, v]) => v).flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
    waiting.size > 1 ? h("p.muted", {}, `${waiting.size - 1} more waiting`) : null,
    h("p.error", { hidden: true, role: "alert" }),
    h("menu", {},
      h("button.primary", { type: "button", dataset: { decision: "allow-once" }, onclick: () => resolveApproval(next.id, "allow-once") }, "Allow once"),
      h("button", { type: "button", dataset: { decision: "allow-always" }, onclick: () => resolveApproval(next.id, "allow-always") }, "Always allow"),
      h("button.danger", { type: "button", dataset: { decision: "deny" }, onclick: () => resolveApproval(next.id, "deny") }, "Deny"))));
  dialog.dataset.approval = next.id;
  if (!dialog.open) dialog.showModal();
}

export function startApprovals() {
  dialog = $("approval-dialog");
  dialog.addEventListener("cancel", (e) => e.preventDefault()); // Escape does not dismiss a waiting agent
  on("exec.approval.requested", (payload) => {
    if (!payload.id) return;
    waiting.set(payload.id, payload);
    render();
  });
  on("exec.approval.resolved", (payload) => {
    waiting.delete(payload.id);
    render();
  });
  onReady(async () => {
    try {
      const listed = await call("exec.approval.list");
      waiting.clear();
      for (const item of listed.pending || []) waiting.set(item.id, item);
      render();
    } catch (_) { /* a gateway without exec approvals */ }
  });
  setInterval(() => {
    const now = Date.now();
    let changed = false;
    for (const [id, item] of waiting) {
      if (item.expiresAtMs && item.expiresAtMs < now) { waiting.delete(id); changed = true; }
    }
    if (changed) render();
  }, 1000);
}
