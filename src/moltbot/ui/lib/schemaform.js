/* A form generated from a JSON schema (pydantic's, with $defs and anyOf).
 *
 * form = schemaForm(schema, data, {onChange}) renders `data` (the config file's own
 * content, secrets redacted) with the schema's defaults as placeholders. Only fields the
 * user touches are recorded; form.patch() is an RFC 7396 merge patch of them (an edit
 * inside a list sends the whole list; a cleared field is null, i.e. removed), and
 * form.changes() lists [path, before, after] for the review. Secret fields are
 * write-only: shown empty, sent only when typed. Invalid values are marked inline and
 * form.errors() lists them. */

import { h } from "./dom.js";

export const REDACTED = "__MOLTBOT_REDACTED__";
const SECRET = /(token|password|secret|apikey)$/i;

export function isSecret(path, hints) {
  const hint = hints && hints[path.join(".")];
  if (hint && hint.sensitive !== undefined) return Boolean(hint.sensitive);
  return SECRET.test(String(path[path.length - 1] || ""));
}

function clone(value) {
  return value === undefined ? undefined : JSON.parse(JSON.stringify(value));
}

export function getPath(data, path) {
  let node = data;
  for (const key of path) {
    if (node === null || typeof node !== "object") return undefined;
    node = node[key];
  }
  return node;
}

function setPath(data, path, value) {
  let node = data;
  path.slice(0, -1).forEach((key, i) => {
    if (node[key] === null || typeof node[key] !== "object") {
      node[key] = typeof path[i + 1] === "number" ? [] : {};
    }
    node = node[key];
  });
  const last = path[path.length - 1];
  if (value === undefined) {
    if (Array.isArray(node)) node[last] = null;
    else delete node[last];
  } else node[last] = value;
}

export function schemaForm(schema, data, options = {}) {
  const defs = schema.$defs || {};
  const resolve = (node) => {
    let seen = 0;
    while (node && node.$ref && seen++ < 20) node = defs[node.$ref.split("/").pop()] || {};
    return node || {};
  };
  const edits = new Map(); // JSON path -> {path, value}
  const invalid = new Map(); // JSON path -> message
  const draft = clone(data) || {};

  function branch(node, value) {
    node = resolve(node);
    if (!node.anyOf && !node.oneOf) return node;
    const options = (node.anyOf || node.oneOf).map(resolve).filter((b) => b.type !== "null");
    const pick = (test) => options.find(test);
    const isObject = (b) => b.type === "object" || b.properties;
    let chosen;
    if (value !== null && typeof value === "object" && !Array.isArray(value)) chosen = pick(isObject);
    else if (Array.isArray(value)) chosen = pick((b) => b.type === "array");
    else if (typeof value === "boolean") chosen = pick((b) => b.type === "boolean");
    else if (typeof value === "number") chosen = pick((b) => b.type === "integer" || b.type === "number");
    chosen = chosen || pick((b) => !isObject(b) && b.type !== "array") || options[0] || {};
    return { ...chosen, title: node.title || chosen.title, description: node.description || chosen.description,
      default: node.default !== undefined ? node.default : chosen.default, nullable: true };
  }

  function record(path, value, message) {
    const key = JSON.stringify(path);
    if (message) invalid.set(key, message);
    else invalid.delete(key);
    edits.set(key, { path, value });
    setPath(draft, path, value);
    options.onChange?.();
  }

  function label(path, node) {
    return String(path[path.length - 1] ?? node.title ?? "");
  }

  function leaf(path, node, value) {
    const id = "cfg-" + path.join("-").replace(/[^\w-]/g, "_");
    const name = path.join(".");
    const hint = node.description ? h("small.hint", {}, node.description) : null;
    const error = h("small.field-error", { hidden: true, role: "alert" });
    const fallback = node.default !== undefined && node.default !== null ? `default: ${JSON.stringify(node.default)}` : "";
    const check = (input, parse) => () => {
      let parsed, message = "";
      try { parsed = parse(); } catch (e) { message = e.message; }
      input.setCustomValidity(message);
      input.setAttribute("aria-invalid", message ? "true" : "false");
      error.hidden = !message;
      error.textContent = message;
      record(path, message ? getPath(draft, path) : parsed, message);
    };
    let input;
    if (node.type === "boolean") {
      input = h("select", { id, name, dataset: { path: name } },
        h("option", { value: "" }, fallback ? `(${fallback})` : "(unset)"),
        h("option", { value: "true", selected: value === true }, "true"),
        h("option", { value: "false", selected: value === false }, "false"));
      input.addEventListener("change", check(input, () => input.value === "" ? undefined : input.value === "true"));
    } else if (node.enum) {
      input = h("select", { id, name, dataset: { path: name } },
        h("option", { value: "" }, fallback ? `(${fallback})` : "(unset)"),
        node.enum.map((v) => h("option", { value: String(v), selected: value === v }, String(v))));
      input.addEventListener("change", check(input, () => input.value === "" ? undefined : node.enum.find((v) => String(v) === input.value)));
    } else if (node.type === "integer" || node.type === "number") {
      input = h("input", { id, name, type: "text", inputmode: "decimal", dataset: { path: name },
        value: value === undefined || value === null ? "" : String(value), placeholder: fallback });
      input.addEventListener("input", check(input, () => {
        const text = input.value.trim();
        if (!text) return undefined;
        const n = Number(text);
        if (!Number.isFinite(n)) throw new Error("not a number");
        if (node.type === "integer" && !Number.isInteger(n)) throw new Error("must be a whole number");
        if (node.minimum !== undefined && n < node.minimum) throw new Error(`must be at least ${node.minimum}`);
        if (node.maximum !== undefined && n > node.maximum) throw new Error(`must be at most ${node.maximum}`);
        if (node.exclusiveMinimum !== undefined && n <= node.exclusiveMinimum) throw new Error(`must be more than ${node.exclusiveMinimum}`);
        return n;
      }));
    } else if (node.type === "array") {
      input = h("textarea", { id, name, rows: 2, dataset: { path: name }, placeholder: "one per line" });
      input.value = Array.isArray(value) ? value.map(String).join("\n") : "";
      input.addEventListener("input", check(input, () => {
        const lines = input.value.split("\n").map((s) => s.trim()).filter(Boolean);
        const item = resolve(node.items || {});
        return lines.map((s) => {
          if (item.type !== "integer" && item.type !== "number") return s;
          const n = Number(s);
          if (!Number.isFinite(n)) throw new Error(`${s}: not a number`);
          return n;
        });
      }));
    } else {
      const secret = isSecret(path, options.hints);
      const set = value !== undefined && value !== null && value !== "";
      input = h("input", { id, name, dataset: { path: name, secret: secret ? "1" : undefined },
        type: secret ? "password" : "text", autocomplete: "off",
        value: secret || value === undefined || value === null ? "" : String(value),
        placeholder: secret ? (set ? "•••••• (set; type to replace)" : "(not set)") : fallback });
      input.addEventListener("input", check(input, () => {
        if (secret && input.value === "") return set ? REDACTED : undefined;
        if (!input.value && node.nullable) return undefined;
        if (node.minLength && input.value.length < node.minLength) throw new Error(`at least ${node.minLength} characters`);
        if (node.pattern && !new RegExp(node.pattern).test(input.value)) throw new Error(`must match ${node.pattern}`);
        return input.value;
      }));
    }
    return h("div.field", {}, h("label", { for: id }, label(path, node)), input, hint, error);
  }

  function group(path, node, value, depth) {
    const props = node.properties || {};
    const extra = node.additionalProperties;
    const children = Object.entries(props).map(([key, child]) =>
      field([...path, key], child, value ? value[key] : undefined, depth + 1));
    if (extra && typeof extra === "object" && value && typeof value === "object") {
      for (const key of Object.keys(value)) {
        if (!(key in props)) children.push(field([...path, key], extra, value[key], depth + 1));
      }
    }
    const title = path.length ? label(path, node) : "config";
    const summary = h("summary", {}, title, node.description ? h("small.hint", {}, " — " + node.description) : null);
    return h("details.group", { dataset: { path: path.join(".") }, open: options.open || (depth > 1 && children.length < 8) },
      summary, children.length ? children : h("p.muted", {}, "(nothing set)"));
  }

  function field(path, raw, value, depth) {
    const node = branch(raw, value);
    const resolved = resolve(node);
    const isObject = resolved.type === "object" || resolved.properties;
    const composite = value !== null && typeof value === "object";
    if (composite && !isObject && resolved.type !== "array") {
      // a shape the form does not edit (e.g. an object where the form offers a string)
      return h("div.field", {},
        h("label", {}, label(path, resolved)),
        h("code.raw-only", { dataset: { path: path.join(".") } }, JSON.stringify(value)),
        h("small.hint", {}, "This value's form is edited in the Raw editor."));
    }
    if (isObject) return group(path, resolved, value, depth);
    if (resolved.type === "array") {
      const item = resolve(resolved.items || {});
      if (item.type === "object" || item.properties || item.anyOf) {
        const list = Array.isArray(value) ? value : [];
        return h("details.group", { dataset: { path: path.join(".") } },
          h("summary", {}, `${label(path, resolved)} (${list.length})`),
          list.map((entry, i) => field([...path, i], resolved.items, entry, depth + 1)),
          list.length ? null : h("p.muted", {}, "(empty: add entries in the raw editor)"));
      }
    }
    return leaf(path, { ...resolved, nullable: node.nullable, default: node.default ?? resolved.default,
      description: node.description || resolved.description }, value);
  }

  const root = resolve(schema);
  const element = h("div.schema-form", {},
    Object.entries(root.properties || {}).map(([key, child]) =>
      field([key], child, data ? data[key] : undefined, 1)));

  function patchRoot(path) {
    for (let i = 0; i < path.length; i++) {
      if (typeof path[i] === "number") return path.slice(0, i);
    }
    return path;
  }

  return {
    element,
    errors: () => [...invalid.entries()].map(([key, message]) => [JSON.parse(key).join("."), message]),
    dirty: () => edits.size > 0,
    changes() {
      const out = [];
      for (const { path } of edits.values()) {
        const before = getPath(data, path);
        const after = getPath(draft, path);
        if (JSON.stringify(before) === JSON.stringify(after)) continue;
        const mask = (v) => (isSecret(path, options.hints) && v !== undefined ? "(secret)" : v);
        out.push([path.join("."), mask(before), mask(after)]);
      }
      return out;
    },
    patch() {
      const patch = {};
      for (const { path } of edits.values()) {
        const at = patchRoot(path);
        const value = getPath(draft, at);
        if (JSON.stringify(getPath(data, at)) === JSON.stringify(value)) continue;
        setPath(patch, at, value === undefined ? null : clone(value));
      }
      return patch;
    },
  };
}
