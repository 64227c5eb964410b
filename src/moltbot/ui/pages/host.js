/* Host: every instance on this host (profile, ports in use vs configured, drift, service
 * state, whether it answers) and the doctor's host-wide findings with their fix
 * commands (`host.status`), and each other instance's service commands to copy. On a
 * rescue instance (`rescue.targets` set), its targets
 * with status, logs, config history/restore and restart (`rescue.*`). */

import { call } from "../lib/conn.js";
import { attempt, copyButton, fill, h, notice, pageShell, table } from "../lib/dom.js";

let ui = null;

function ports(row) {
  const live = `${row.port} · ${row.controlPort} · ${row.canvasPort}`;
  const c = row.configured || {};
  const configured = `${c.port} · ${c.controlPort} · ${c.canvasPort}`;
  return live === configured ? live : h("span", {}, live, h("br"), h("small.muted", {}, `configured ${configured}`));
}

function instances(rows, me) {
  return table([
    ["Profile", (r) => h("span", {}, r.profile, r.profile === me ? h("small.muted", {}, " (this)") : null)],
    ["Ports (base · browser · canvas)", ports],
    ["Drift", (r) => (r.drift ? h("span.warn", {}, r.drift) : "")],
    ["Running", (r) => (r.running ? `pid ${r.pid}${r.version ? ` · ${r.version}` : ""}` : "no")],
    ["Answers", (r) => (r.reachable ? (r.healthy ? "healthy" : "reachable") : r.foreignListener ? `port held by ${r.portOwner}` : "no")],
    ["Service", (r) => r.service || ""],
    ["Config", (r) => (r.configError ? h("span.error", {}, r.configError) : r.configPath)],
    ["State dir", (r) => r.stateDir],
  ], rows, { "aria-label": "Instances on this host", dataset: { table: "instances" } });
}

function findings(report) {
  const list = report.findings || [];
  if (!list.length) return h("p.ok", {}, "No findings: the instances on this host are isolated from each other.");
  return h("ul.findings", {}, list.map((f) =>
    h("li", { dataset: { severity: f.severity, code: f.code } },
      h("span.badge", { dataset: { state: f.severity } }, f.severity), " ", f.message,
      f.fix ? h("div", {}, "Fix: ", h("code", {}, f.fix)) : null)));
}

// The service manager's commands for every other instance, as text to copy and run in a
// shell on this host (the page never runs them: only rescue targets are driven from here).
function serviceCommands(rows, me) {
  const others = rows.filter((r) => r.profile !== me && (r.commands || []).length);
  if (!others.length) return [];
  return [h("h2", {}, "Service commands"),
    h("p.muted", {}, "For the other instances on this host: copy a command and run it in a shell here."),
    others.map((r) => h("div.commands", { dataset: { profile: r.profile } },
      h("h3", {}, r.profile, h("small.muted", {}, ` · ${r.service || ""}`)),
      h("dl.command-list", {}, r.commands.flatMap((c) => [
        h("dt", {}, c.action),
        h("dd", { dataset: { action: c.action } }, h("code", {}, c.command),
          copyButton(c.command, { "aria-label": `Copy the ${c.action} command of ${r.profile}` })),
      ]))))];
}

// ---- rescue ------------------------------------------------------------------------------

async function rescueCall(method, params) {
  let result = await call(method, params);
  if (result && result.status === "confirm") {
    if (!confirm(`${result.summary}\n\nCarry this out?`)) return null;
    result = await call(method, { ...params, confirm: result.code });
  }
  return result;
}

function targetCard(target) {
  const out = h("pre.rescue-out");
  const run = (method, params, label) => attempt(ui.line, async () => {
    const result = await rescueCall(method, { target, ...params });
    if (result) out.textContent = result.text || JSON.stringify(result, null, 2);
    if (method !== "rescue.status" && result) refresh();
  }, label);
  const version = h("input", { type: "number", min: "1", placeholder: "version", "aria-label": `Config version of ${target}`, size: 6 });
  const refresh = () => run("rescue.status", {});
  const card = h("section.card", { dataset: { target } },
    h("h3", {}, target),
    h("div.form-row", {},
      h("button", { type: "button", onclick: refresh }, "Status"),
      h("button", { type: "button", onclick: () => run("rescue.logs", { lines: 80 }) }, "Logs"),
      h("button", { type: "button", onclick: () => run("rescue.doctor", {}) }, "Doctor"),
      h("button", { type: "button", onclick: () => run("rescue.config", { action: "validate" }) }, "Validate config"),
      h("button", { type: "button", onclick: () => run("rescue.config", { action: "history" }) }, "Config history"),
      version,
      h("button", { type: "button", onclick: () => run("rescue.config", { action: "restore", version: Number(version.value) || undefined }, "Restored.") }, "Restore"),
      h("button.danger", { type: "button", onclick: () => run("rescue.restart", { action: "restart" }, "Restarted.") }, "Restart")),
    out);
  refresh();
  return card;
}

async function rescue(rows, me) {
  const got = await attempt(null, () => call("config.get"));
  const targets = got && got.config && got.config.rescue ? got.config.rescue.targets || [] : [];
  if (!targets.length) { fill(ui.rescue); return; }
  const names = targets.includes("*") ? rows.map((r) => r.profile).filter((p) => p !== me) : targets;
  fill(ui.rescue, h("h2", {}, "Rescue targets"),
    h("p.muted", {}, "Changes ask for confirmation first, as in the chat's /rescue."),
    names.map(targetCard));
}

async function load() {
  notice(ui.line, "Checking the host…", "");
  const result = await attempt(ui.line, () => call("host.status"));
  if (!result) return;
  notice(ui.line, "", "");
  fill(ui.instances, h("h2", {}, `Instances (${result.instances.length})`),
    h("div.scroll-x", {}, instances(result.instances, result.profile)));
  fill(ui.commands, serviceCommands(result.instances, result.profile));
  ui.commands.hidden = !ui.commands.childElementCount;
  fill(ui.doctor, h("h2", {}, "Doctor (host-wide)"), findings(result.doctor));
  document.body.dataset.hostLoaded = "1";
  await rescue(result.instances, result.profile);
}

export default {
  init(root) {
    const { line, body } = pageShell(root, "Host", h("button", { type: "button", onclick: () => load() }, "Refresh"));
    const instancesEl = h("section.card");
    const commands = h("section.card", { hidden: true, dataset: { commands: "1" } });
    const doctor = h("section.card");
    const rescueEl = h("div");
    body.append(instancesEl, commands, doctor, rescueEl);
    ui = { line, instances: instancesEl, commands, doctor, rescue: rescueEl };
  },
  enter: load,
};
