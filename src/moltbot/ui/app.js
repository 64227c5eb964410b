/* The Control UI: one WebSocket (lib/conn.js), one module per page (pages/*.js).
 * Pages are chosen by the fragment (#/config); each page is built on first visit and
 * told when it is shown (enter) or left (leave), and again after every reconnect. */

import * as conn from "./lib/conn.js";
import { startApprovals } from "./lib/approvals.js";
import { $ } from "./lib/dom.js";
import chat from "./pages/chat.js";
import sessions from "./pages/sessions.js";
import config from "./pages/config.js";
import logs from "./pages/logs.js";
import channels from "./pages/channels.js";
import automation from "./pages/automation.js";
import host from "./pages/host.js";
import usage from "./pages/usage.js";
import devices from "./pages/devices.js";

const PAGES = { chat, sessions, config, logs, channels, automation, host, usage, devices };
const built = new Set();
let current = null;

function pageFromHash() {
  const match = location.hash.match(/^#\/([a-z-]+)/);
  return match && PAGES[match[1]] ? match[1] : "chat";
}

function show(name) {
  if (current && current !== name) PAGES[current].leave?.();
  current = name;
  document.body.dataset.page = name;
  document.body.classList.remove("show-sidebar");
  for (const section of document.querySelectorAll("section.page")) {
    section.hidden = section.dataset.page !== name;
  }
  for (const link of document.querySelectorAll("#pages a")) {
    if (link.dataset.page === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const page = PAGES[name];
  if (!built.has(name)) {
    built.add(name);
    page.init?.($(`page-${name}`));
  }
  if (conn.connected()) page.enter?.();
}

window.addEventListener("hashchange", () => show(pageFromHash()));
document.addEventListener("click", (event) => {
  const menu = event.target.closest("[data-menu], #toggle-sidebar");
  if (menu) document.body.classList.toggle("show-sidebar");
});
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape") document.body.classList.remove("show-sidebar");
});

// A page whose first method this gateway does not offer is left out of the navigation.
const NEEDS = { devices: "device.pair.list", host: "host.status", usage: "usage.cost", automation: "cron.list" };

function offerPages(hello) {
  const methods = new Set(((hello && hello.features) || {}).methods || []);
  if (!methods.size) return;
  for (const link of document.querySelectorAll("#pages a")) {
    const needed = NEEDS[link.dataset.page];
    link.hidden = Boolean(needed) && !methods.has(needed);
  }
}

chat.init($("page-chat"));
built.add("chat");
conn.onReady((hello) => {
  offerPages(hello);
  chat.connected();
  if (current && current !== "chat") PAGES[current].enter?.();
});
startApprovals();
conn.start();
show(pageFromHash());
