/* A line diff (longest common subsequence) for the review before a raw save. Config
 * files are small; above MAX_CELLS the diff degrades to "all old lines out, all new in". */

import { h } from "./dom.js";

const MAX_CELLS = 4_000_000;

export function lineDiff(before, after) {
  const a = before.split("\n");
  const b = after.split("\n");
  let start = 0;
  while (start < a.length && start < b.length && a[start] === b[start]) start++;
  let endA = a.length, endB = b.length;
  while (endA > start && endB > start && a[endA - 1] === b[endB - 1]) { endA--; endB--; }
  const midA = a.slice(start, endA), midB = b.slice(start, endB);
  const out = a.slice(0, start).map((line) => [" ", line]);
  if (midA.length * midB.length > MAX_CELLS) {
    out.push(...midA.map((l) => ["-", l]), ...midB.map((l) => ["+", l]));
  } else {
    const n = midA.length, m = midB.length;
    const lcs = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
    for (let i = n - 1; i >= 0; i--) {
      for (let j = m - 1; j >= 0; j--) {
        lcs[i][j] = midA[i] === midB[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
      }
    }
    let i = 0, j = 0;
    while (i < n || j < m) {
      if (i < n && j < m && midA[i] === midB[j]) { out.push([" ", midA[i]]); i++; j++; }
      else if (j < m && (i >= n || lcs[i][j + 1] >= lcs[i + 1][j])) { out.push(["+", midB[j]]); j++; }
      else { out.push(["-", midA[i]]); i++; }
    }
  }
  out.push(...a.slice(endA).map((line) => [" ", line]));
  return out;
}

/** The changed lines with two lines of context, as a <pre>. */
export function renderDiff(before, after) {
  const lines = lineDiff(before, after);
  const keep = lines.map((_, i) => lines.slice(Math.max(0, i - 2), i + 3).some(([k]) => k !== " "));
  const pre = h("pre.diff");
  let gap = false;
  lines.forEach(([kind, text], i) => {
    if (!keep[i]) { gap = true; return; }
    if (gap) { pre.append(h("span.gap", {}, "…\n")); gap = false; }
    pre.append(h(kind === "+" ? "ins" : kind === "-" ? "del" : "span", {}, `${kind} ${text}\n`));
  });
  if (!lines.some(([k]) => k !== " ")) pre.append("(no changes)");
  return pre;
}
