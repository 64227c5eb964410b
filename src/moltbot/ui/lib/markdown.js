/* Markdown for chat replies, built as DOM nodes (never HTML strings): fenced code with a
 * small highlighter and a Copy button, headings, lists, quotes, paragraphs, inline code,
 * bold, italic and http(s) links (opened without a referrer). */

import { copyButton, h } from "./dom.js";

const KEYWORDS = new Set(("if else elif for while return function const let var def class import " +
  "from export async await try except catch finally raise throw new in of and or not is with as " +
  "None null undefined true false True False self this fn pub struct impl match case switch break " +
  "continue yield lambda type interface enum package func go defer").split(" "));
const HASH_COMMENTS = /^(py|python|sh|bash|shell|zsh|yaml|yml|toml|ruby|rb|perl|r|conf|ini)$/i;
const TOKEN = /(\/\/[^\n]*|\/\*[\s\S]*?\*\/|#[^\n]*)|("(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*'|`[^`]*`)|\b(\d+(?:\.\d+)?)\b|\b([A-Za-z_]\w*)\b/g;

export function highlight(code, lang) {
  const out = [];
  let last = 0;
  const hashComments = HASH_COMMENTS.test(lang || "");
  for (const match of code.matchAll(TOKEN)) {
    const [text, comment, string, number, word] = match;
    let kind = null;
    if (comment && (hashComments || !comment.startsWith("#"))) kind = "comment";
    else if (comment) continue;
    else if (string) kind = "string";
    else if (number) kind = "number";
    else if (word && KEYWORDS.has(word)) kind = "keyword";
    if (!kind) continue;
    if (match.index > last) out.push(code.slice(last, match.index));
    out.push(h(`span.tok-${kind}`, {}, text));
    last = match.index + text.length;
  }
  out.push(code.slice(last));
  return out;
}

function codeBlock(part) {
  const lang = (part.match(/^([\w+-]*)\n/) || [])[1] || "";
  const text = part.replace(/^[\w+-]*\n/, "");
  const code = h("code", { dataset: { lang } }, highlight(text, lang));
  return h("pre", {}, code, copyButton(text));
}

const INLINE = /`([^`\n]+)`|\*\*([^*\n]+)\*\*|(?<![\w*])\*([^*\n]+)\*(?!\w)|(?<!\w)_([^_\n]+)_(?!\w)|\[([^\]\n]+)\]\((https?:\/\/[^)\s]+)\)/g;

export function inline(text) {
  const out = [];
  let last = 0;
  for (const match of text.matchAll(INLINE)) {
    const [all, code, bold, italic, italic2, label, url] = match;
    if (match.index > last) out.push(text.slice(last, match.index));
    if (code) out.push(h("code", {}, code));
    else if (bold) out.push(h("strong", {}, inline(bold)));
    else if (italic || italic2) out.push(h("em", {}, inline(italic || italic2)));
    else out.push(h("a", { href: url, target: "_blank", rel: "noopener noreferrer" }, label));
    last = match.index + all.length;
  }
  out.push(text.slice(last));
  return out.filter((x) => x !== "");
}

function blocks(text) {
  const out = [];
  let para = [];
  let list = null;
  const flush = () => {
    if (para.length) out.push(h("p", {}, inline(para.join("\n"))));
    para = [];
  };
  for (const line of text.split("\n")) {
    const heading = line.match(/^(#{1,6})\s+(.*)$/);
    const item = line.match(/^\s*([-*+]|\d+[.)])\s+(.*)$/);
    const quote = line.match(/^>\s?(.*)$/);
    if (heading) { flush(); list = null; out.push(h(`h${Math.min(6, heading[1].length + 2)}`, {}, inline(heading[2]))); }
    else if (item) {
      flush();
      const ordered = /\d/.test(item[1]);
      if (!list || list.ordered !== ordered) {
        list = { ordered, el: h(ordered ? "ol" : "ul") };
        out.push(list.el);
      }
      list.el.append(h("li", {}, inline(item[2])));
    } else if (quote) { flush(); list = null; out.push(h("blockquote", {}, inline(quote[1]))); }
    else if (!line.trim()) { flush(); list = null; }
    else { list = null; para.push(line); }
  }
  flush();
  return out;
}

/** Replace `el`'s content with `text` rendered as markdown. */
export function renderMarkdown(el, text) {
  const parts = (text || "").split("```");
  const nodes = [];
  parts.forEach((part, index) => {
    // an odd part is code; an unclosed fence (still streaming) is code too
    if (index % 2 === 1) nodes.push(codeBlock(part));
    else nodes.push(...blocks(part.replace(/^\n/, "").replace(/\n$/, "")));
  });
  el.replaceChildren(...nodes);
}
