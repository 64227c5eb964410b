/* Small DOM helpers shared by the pages (no innerHTML: text is always text). */

export const $ = (id) => document.getElementById(id);

/** h("button.primary", {type: "button", onclick}, "Save") */
export function h(spec, attrs, ...children) {
  const [tag, ...classes] = spec.split(".");
  const el = document.createElement(tag || "div");
  if (classes.length) el.className = classes.join(" ");
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key in el && typeof value !== "string") el[key] = value;
    else el.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

/** A table: columns are [label, row => cell content]. */
export function table(columns, rows, attrs) {
  return h("table.grid", attrs,
    h("thead", {}, h("tr", {}, columns.map(([label]) => h("th", { scope: "col" }, label)))),
    h("tbody", {}, rows.map((row) =>
      h("tr", {}, columns.map(([, cell]) => h("td", {}, cell(row) ?? ""))))));
}

export function when(ms) {
  if (!ms) return "";
  const date = new Date(ms);
  return isNaN(date) ? "" : date.toLocaleString();
}

export function ago(ms) {
  if (!ms) return "";
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86400)}d ago`;
}

export function num(value) {
  return typeof value === "number" ? value.toLocaleString() : (value ?? "");
}

/** A page-level message line: kind "error" | "ok" | "". */
export function notice(el, text, kind) {
  el.hidden = !text;
  el.textContent = text || "";
  el.className = "notice-line" + (kind ? " " + kind : "");
}

/** Run an async action, reporting its failure in `line` instead of the console (and
 * `okText`, when given, on success: a string, or a function of the result; otherwise the
 * line is left as it is). */
export async function attempt(line, action, okText) {
  try {
    const result = await action();
    const text = typeof okText === "function" ? okText(result) : okText;
    if (line && text) notice(line, text, "ok");
    return result;
  } catch (error) {
    if (line) notice(line, error.message, "error");
    return undefined;
  }
}

/** The page's section: a heading, an optional toolbar, a status line, a body. */
export function pageShell(root, title, ...tools) {
  const line = h("p.notice-line", { hidden: true, role: "status" });
  const body = h("div.page-body");
  root.replaceChildren(
    h("header.page-head", {},
      h("button.icon.menu", { type: "button", "aria-label": "Menu", dataset: { menu: "1" } }, "☰"),
      h("h1", {}, title), h("div.tools", {}, tools)),
    line, body);
  return { line, body };
}

/** Replace `el`'s children (arrays are flattened; null, undefined and false skipped). */
export function fill(el, ...children) {
  el.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
  return el;
}

/** A button that copies `text` to the clipboard and says whether it worked. */
export function copyButton(text, attrs = {}) {
  const button = h("button.copy", { type: "button", ...attrs }, "Copy");
  button.addEventListener("click", () => {
    navigator.clipboard?.writeText(text).then(
      () => { button.textContent = "Copied"; }, () => { button.textContent = "Copy failed"; });
  });
  return button;
}
