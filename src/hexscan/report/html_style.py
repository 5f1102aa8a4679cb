"""The inline CSS and script of the HTML report, and the Content-Security-Policy that pins them.

They are Python constants rather than package data so the report is one self-contained
string with nothing to ship or look up. The script is allowed by its SHA-256 hash, not by
'unsafe-inline': should anything in a hostile file name ever slip past escaping as a
``<script>``, the browser would still refuse to run it. Nothing may be fetched: the policy
starts from ``default-src 'none'`` and only lets inline styles and ``data:`` images in.
"""

from __future__ import annotations

import base64
import hashlib

CSS = """\
:root {
  color-scheme: light dark;
  --bg: #f6f7f9; --fg: #1b1f24; --muted: #57606a; --card: #ffffff; --line: #d0d7de;
  --accent: #0b5cad; --code: #eef1f4; --bar-bg: #e6e9ed;
  --critical: #a4161a; --high: #c2410c; --medium: #a16207; --low: #0e7490; --info: #57606a;
  --good: #1a7f37; --warn: #9a6700; --bad: #a4161a;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #0d1117; --fg: #e6edf3; --muted: #9da7b3; --card: #161b22; --line: #30363d;
    --accent: #58a6ff; --code: #1f2630; --bar-bg: #262c36;
    --critical: #f85149; --high: #f0883e; --medium: #d4a72c; --low: #39c5cf; --info: #9da7b3;
    --good: #3fb950; --warn: #d29922; --bad: #f85149;
  }
}
* { box-sizing: border-box; }
[hidden] { display: none !important; }
body { margin: 0; background: var(--bg); color: var(--fg);
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", sans-serif; }
header, main, footer { max-width: 1200px; margin: 0 auto; padding: 0 24px; }
header { padding-top: 24px; }
h1 { font-size: 1.6rem; margin: 0 0 4px; }
h2 { font-size: 1.25rem; margin: 32px 0 12px; padding-bottom: 4px;
  border-bottom: 1px solid var(--line); }
h3 { font-size: 1rem; margin: 0; }
a { color: var(--accent); }
code, pre, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
  font-size: 0.86rem; }
pre { background: var(--code); padding: 8px 10px; border-radius: 6px; margin: 4px 0;
  white-space: pre-wrap; overflow-wrap: anywhere; max-height: 24em; overflow: auto; }
.sub { color: var(--muted); margin: 0; overflow-wrap: anywhere; }
.verdict { display: inline-block; margin-top: 12px; padding: 6px 12px; border-radius: 6px;
  font-weight: 600; border: 2px solid currentColor; }
.verdict.pass { color: var(--good); } .verdict.fail { color: var(--bad); }
.verdict.incomplete { color: var(--warn); }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(120px, 1fr));
  gap: 12px; margin: 0; }
h3.group { font-size: 0.95rem; color: var(--muted); margin: 16px 0 6px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px;
  padding: 10px 14px; border-left-width: 6px; }
.card dt { color: var(--muted); font-size: 0.85rem; }
.card dd { margin: 0; font-size: 1.6rem; font-weight: 650; }
.card.sev-CRITICAL { border-left-color: var(--critical); }
.card.sev-HIGH { border-left-color: var(--high); }
.card.sev-MEDIUM { border-left-color: var(--medium); }
.card.sev-LOW { border-left-color: var(--low); }
.card.sev-INFO { border-left-color: var(--info); }
.card.good { border-left-color: var(--good); } .card.warn { border-left-color: var(--warn); }
.card.bad { border-left-color: var(--bad); }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(320px, 1fr));
  gap: 16px; margin-top: 16px; }
figure { margin: 0; background: var(--card); border: 1px solid var(--line);
  border-radius: 8px; padding: 10px 14px; }
figcaption { font-weight: 600; margin-bottom: 6px; }
svg.chart { width: 100%; height: auto; display: block; }
svg.chart text { fill: var(--fg); font: 13px system-ui, sans-serif; }
svg.chart .track { fill: var(--bar-bg); }
svg.chart .bar { fill: var(--accent); }
svg.chart .bar.sev-CRITICAL { fill: var(--critical); }
svg.chart .bar.sev-HIGH { fill: var(--high); }
svg.chart .bar.sev-MEDIUM { fill: var(--medium); }
svg.chart .bar.sev-LOW { fill: var(--low); }
svg.chart .bar.sev-INFO { fill: var(--info); }
.empty { color: var(--muted); font-style: italic; }
ul.warnings { padding-left: 20px; }
ul.warnings li { color: var(--warn); }
table { width: 100%; border-collapse: collapse; background: var(--card);
  border: 1px solid var(--line); border-radius: 8px; }
th, td { text-align: left; padding: 6px 10px; vertical-align: top;
  overflow-wrap: anywhere; }
thead th { border-bottom: 2px solid var(--line); font-size: 0.85rem; color: var(--muted); }
tbody.file { border-top: 1px solid var(--line); }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.status > span:first-child { white-space: nowrap; }
tr.detail td { padding-top: 0; }
.badge { display: inline-block; min-width: 5.6em; text-align: center; padding: 1px 6px;
  border-radius: 4px; font-size: 0.78rem; font-weight: 700; letter-spacing: 0.02em;
  color: #fff; background: var(--info); }
.badge.sev-CRITICAL { background: var(--critical); }
.badge.sev-HIGH { background: var(--high); }
.badge.sev-MEDIUM { background: var(--medium); }
.badge.sev-LOW { background: var(--low); }
.badge.sev-INFO { background: var(--info); }
@media (prefers-color-scheme: dark) { .badge { color: #0d1117; } }
.tag { display: inline-block; padding: 0 6px; border: 1px solid var(--line);
  border-radius: 10px; font-size: 0.78rem; color: var(--muted); }
.status-error { color: var(--bad); font-weight: 600; }
.status-skipped { color: var(--muted); }
details > summary { cursor: pointer; color: var(--accent); padding: 2px 0; }
.finding { border: 1px solid var(--line); border-left: 6px solid var(--info);
  border-radius: 6px; padding: 8px 12px; margin: 8px 0; background: var(--bg); }
.finding.sev-CRITICAL { border-left-color: var(--critical); }
.finding.sev-HIGH { border-left-color: var(--high); }
.finding.sev-MEDIUM { border-left-color: var(--medium); }
.finding.sev-LOW { border-left-color: var(--low); }
.finding h3 { display: flex; gap: 8px; align-items: baseline; flex-wrap: wrap; }
.finding .msg { margin: 6px 0; overflow-wrap: anywhere; }
.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; margin: 4px 0; }
.facts dt { color: var(--muted); font-size: 0.85rem; }
.facts dd { margin: 0; overflow-wrap: anywhere; }
form#sev-filter { background: var(--card); border: 1px solid var(--line); border-radius: 8px;
  padding: 8px 12px; margin-bottom: 12px; display: flex; gap: 16px; flex-wrap: wrap;
  align-items: center; }
form#sev-filter fieldset { border: 0; margin: 0; padding: 0; display: flex; gap: 12px;
  flex-wrap: wrap; align-items: center; }
form#sev-filter legend { float: left; margin-right: 8px; font-weight: 600; }
form#sev-filter button { font: inherit; padding: 2px 10px; }
footer { color: var(--muted); font-size: 0.85rem; padding: 32px 24px; }
@media print { form#sev-filter { display: none; } pre { max-height: none; } }
"""

#: Progressive enhancement only: without it every finding is shown and <details> still work.
SCRIPT = """\
(function () {
  "use strict";
  var form = document.getElementById("sev-filter");
  if (!form) { return; }
  form.hidden = false;
  var boxes = form.querySelectorAll("input[name=severity]");
  var onlyFindings = document.getElementById("only-findings");
  var status = document.getElementById("filter-status");
  function apply() {
    var on = {};
    boxes.forEach(function (b) { on[b.value] = b.checked; });
    var shown = 0, total = 0;
    document.querySelectorAll(".finding").forEach(function (f) {
      total += 1;
      f.hidden = !on[f.getAttribute("data-severity")];
      if (!f.hidden) { shown += 1; }
    });
    document.querySelectorAll("tbody.file").forEach(function (g) {
      var all = g.querySelectorAll(".finding").length;
      var visible = g.querySelectorAll(".finding:not([hidden])").length;
      g.hidden = all ? visible === 0 : onlyFindings.checked;
    });
    status.textContent = "Showing " + shown + " of " + total + " findings.";
  }
  function openAll(open) {
    document.querySelectorAll("tbody.file details").forEach(function (d) { d.open = open; });
  }
  form.addEventListener("change", apply);
  document.getElementById("expand-all").addEventListener("click", function () {
    openAll(true);
  });
  document.getElementById("collapse-all").addEventListener("click", function () {
    openAll(false);
  });
  apply();
})();
"""


def script_hash(script: str = SCRIPT) -> str:
    """The CSP source expression that allows exactly ``script`` and nothing else."""
    digest = hashlib.sha256(script.encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode('ascii')}'"


#: No fetch of any kind; only the inline style, the one hashed script and data: images.
CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
       f"script-src {script_hash()}; base-uri 'none'; form-action 'none'")
