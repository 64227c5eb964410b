/* One section of the config as a form (the Channels page's per-channel settings, the
 * Automation page's heartbeat): the schema's part at `path` from `config.schema`, the
 * file's values from `config.get`, saved with `config.patch` and the base hash (a file
 * changed meanwhile is refused and reported, nothing overwritten). */

import { call } from "./conn.js";
import { attempt, fill, h, notice } from "./dom.js";
import { getPath, schemaForm } from "./schemaform.js";

function subSchema(schema, path) {
  const defs = schema.$defs || {};
  const resolve = (node) => (node && node.$ref ? defs[node.$ref.split("/").pop()] : node) || {};
  let node = resolve(schema);
  for (const key of path) node = resolve((node.properties || {})[key]);
  let wrapped = node;
  for (const key of [...path].reverse()) wrapped = { type: "object", properties: { [key]: wrapped } };
  return { ...wrapped, $defs: defs, found: Object.keys(node).length > 0 };
}

/** Fill `container` with the form of the config section at `path` (a list of keys). */
export async function sectionForm(container, path, { line, title, saved }) {
  const [got, shape] = await Promise.all([
    attempt(line, () => call("config.get")), attempt(line, () => call("config.schema")),
  ]);
  if (!got || !shape) return;
  if (container.dataset.hash === (got.hash || "") && container.firstChild) return; // keep edits
  container.dataset.hash = got.hash || "";
  const sub = subSchema(shape.schema, path);
  if (!sub.found) { fill(container); return; }
  let data = {};
  const value = getPath(got.parsed || {}, path);
  if (value !== undefined) {
    data = value;
    for (const key of [...path].reverse()) data = { [key]: data };
  }
  const form = schemaForm(sub, data, { open: true, hints: shape.uiHints });
  const save = h("button.primary", { type: "button", onclick: async () => {
    const errors = form.errors();
    if (errors.length) { notice(line, errors.map(([p, m]) => `${p}: ${m}`).join("; "), "error"); return; }
    const ok = await attempt(line, () => call("config.patch", {
      raw: JSON.stringify(form.patch()), baseHash: got.hash || undefined }));
    if (ok) {
      await sectionForm(container, path, { line, title, saved });
      notice(line, saved, "ok");
    }
  } }, `Save ${title.toLowerCase()}`);
  fill(container, h("h2", {}, title), form.element, h("div.form-row", {}, save));
}
