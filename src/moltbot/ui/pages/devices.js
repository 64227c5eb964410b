/* Devices, nodes and exec approvals: needs the `device.*`, `node.*` and `exec.approval.*`
 * methods; a gateway without them says so here. */

import { call } from "../lib/conn.js";
import { attempt, fill, h, pageShell } from "../lib/dom.js";

let ui = null;

async function load() {
  const result = await attempt(ui.line, () => call("device.pair.list"));
  fill(ui.body, result ? h("pre", {}, JSON.stringify(result, null, 2))
    : h("p.muted", {}, "This gateway does not offer device pairing over the protocol yet."));
}

export default {
  init(root) {
    const { line, body } = pageShell(root, "Devices", h("button", { type: "button", onclick: () => load() }, "Refresh"));
    ui = { line, body };
  },
  enter: load,
};
