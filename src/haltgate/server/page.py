"""The one status page: readable at a glance, usable under stress.

A full-width banner says TRADING ALLOWED (green) or TRADING HALTED (red) with the reasons;
if the page cannot reach the server it says STATUS UNKNOWN (grey) rather than showing an
old answer. Below: every breaker's state, and halt/reset controls that take a token.
"""

from __future__ import annotations

import base64
import hashlib
import re

__all__ = ["CONTENT_SECURITY_POLICY", "STATUS_PAGE"]

STATUS_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>haltgate</title>
<style>
  * { box-sizing: border-box; }
  body { margin: 0; font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
         background: #f4f5f7; color: #111; font-size: 18px; }
  #banner { padding: 28px 32px 24px; color: #fff; background: #666; }
  #banner.allowed { background: #0b7a2e; }
  #banner.halted { background: #c0111f; }
  #banner.unknown { background: #555; }
  #banner-title { font-size: 64px; font-weight: 900; letter-spacing: 2px; margin: 0; }
  #reasons { margin: 10px 0 0; padding-left: 26px; font-size: 24px; font-weight: 600; }
  #reasons:empty { display: none; }
  #updated { margin-top: 10px; font-size: 15px; opacity: .9; }
  main { padding: 20px 32px 40px; }
  /* A table wider than the window scrolls inside its wrapper, never the page; the column
     of Halt/Reset buttons is pinned to the wrapper's right edge, so it stays in view. */
  .table-wrap { overflow-x: auto; max-width: 100%; background: #fff;
                box-shadow: 0 1px 3px rgba(0,0,0,.15); }
  table { border-collapse: collapse; width: 100%; background: #fff; }
  th, td { text-align: left; padding: 12px 14px; border-bottom: 1px solid #e2e4e8;
           vertical-align: middle; }
  th { background: #e9ebef; font-size: 14px; text-transform: uppercase; letter-spacing: 1px; }
  td.name { font-weight: 700; font-size: 20px; }
  .pill { display: inline-block; padding: 5px 12px; border-radius: 6px; font-weight: 800;
          font-size: 16px; color: #fff; }
  .pill.NORMAL { background: #0b7a2e; }
  .pill.TRIPPED { background: #c0111f; }
  .pill.MANUALLY_HALTED { background: #8a0012; }
  .pill.RESETTING { background: #b36b00; }
  td.name, td.reason { overflow-wrap: anywhere; word-break: break-word; }
  td.name { min-width: 8em; }
  td.reason { min-width: 12em; max-width: 520px; }
  td.since { white-space: nowrap; }
  th.action, td.action { position: sticky; right: 0; white-space: nowrap; background: #fff;
                         box-shadow: -6px 0 6px -6px rgba(0,0,0,.25); }
  th.action { background: #e9ebef; }
  tr.blocking { background: #fff0f0; }
  #refusals { margin: 1em 0; padding: .5em .8em; background: #fff7e6; border-radius: 4px; }
  tr.blocking td.action { background: #fff0f0; }
  button { font-size: 16px; padding: 8px 14px; border-radius: 6px; border: 1px solid #888;
           background: #fff; cursor: pointer; font-weight: 600; }
  button.reset { border-color: #0b7a2e; color: #0b7a2e; }
  button.halt { border-color: #c0111f; color: #c0111f; }
  #halt-all { background: #c0111f; color: #fff; border: none; font-size: 20px;
              padding: 12px 22px; font-weight: 800; }
  section.controls { margin: 22px 0; padding: 16px 18px; background: #fff;
                     box-shadow: 0 1px 3px rgba(0,0,0,.15); display: flex; flex-wrap: wrap;
                     gap: 14px; align-items: end; }
  label { display: flex; flex-direction: column; font-size: 14px; font-weight: 600; gap: 4px; }
  input { font-size: 16px; padding: 8px; border: 1px solid #999; border-radius: 6px;
          min-width: 220px; }
  #message { margin: 0 0 16px; padding: 12px 16px; font-size: 18px; font-weight: 600;
             display: none; }
  #message.ok { display: block; background: #e5f6ea; border-left: 6px solid #0b7a2e; }
  #message.error { display: block; background: #fde8ea; border-left: 6px solid #c0111f; }
  h2 { font-size: 18px; margin: 26px 0 10px; }
  #events { font-family: ui-monospace, Menlo, monospace; font-size: 14px; background: #fff;
            padding: 10px 14px; white-space: pre-wrap; overflow-wrap: anywhere;
            box-shadow: 0 1px 3px rgba(0,0,0,.15); }
  #reasons li { overflow-wrap: anywhere; }
  @media (max-width: 900px) {
    body { font-size: 16px; }
    #banner { padding: 18px 16px 16px; }
    #banner-title { font-size: 40px; letter-spacing: 1px; }
    #reasons { font-size: 18px; }
    main { padding: 14px 12px 30px; }
    th, td { padding: 8px 8px; }
    td.name { font-size: 17px; }
    /* Room for the reason: the type is hidden (the name says it) and the time wraps. */
    th.type, td.type { display: none; }
    td.since { white-space: normal; min-width: 6em; }
    input { min-width: 0; width: 100%; }
    section.controls label { flex: 1 1 200px; }
  }
</style>
</head>
<body>
<div id="banner" class="unknown">
  <h1 id="banner-title">STATUS UNKNOWN</h1>
  <ul id="reasons"></ul>
  <div id="updated">connecting&hellip;</div>
</div>
<main>
  <div id="message"></div>
  <div class="table-wrap">
  <table id="breakers">
    <thead><tr><th>Breaker</th><th class="type">Type</th><th>State</th><th>Since (UTC)</th>
      <th>By</th><th>Reason</th><th class="action">Action</th></tr></thead>
    <tbody></tbody>
  </table>
  </div>
  <section class="controls">
    <label>Operator token <input id="token" type="password" autocomplete="off"
      placeholder="paste your token"></label>
    <label>Reason (halt / reset) <input id="reason" type="text"
      placeholder="why"></label>
    <label>Kill-switch key (keyed resets) <input id="key" type="password"
      autocomplete="off"></label>
    <button id="halt-all" type="button">HALT ALL TRADING</button>
  </section>
  <div id="refusals" hidden></div>
  <h2>Latest audit entries</h2>
  <div id="events">&ndash;</div>
</main>
<script>
"use strict";
const tokenInput = document.getElementById("token");
tokenInput.value = sessionStorage.getItem("haltgate-token") || "";
tokenInput.addEventListener("change", () => {
  sessionStorage.setItem("haltgate-token", tokenInput.value.trim());
  refresh();
});

function headers() {
  const h = {"Content-Type": "application/json"};
  const t = tokenInput.value.trim();
  if (t) h["Authorization"] = "Bearer " + t;
  return h;
}

function text(value) { return value === null || value === undefined ? "-" : String(value); }

function when(iso) {
  if (!iso) return "-";
  return iso.replace("T", " ").replace(/\\.\\d+/, "").replace("+00:00", "");
}

function show(kind, msg) {
  const el = document.getElementById("message");
  el.className = kind;
  el.textContent = msg;
}

function cell(row, content, cls) {
  const td = document.createElement("td");
  if (cls) td.className = cls;
  if (content instanceof Node) td.appendChild(content); else td.textContent = content;
  row.appendChild(td);
  return td;
}

let lastSignature = null;

function render(status) {
  const banner = document.getElementById("banner");
  banner.className = status.trading_allowed ? "allowed" : "halted";
  document.getElementById("banner-title").textContent =
    status.trading_allowed ? "TRADING ALLOWED" : "TRADING HALTED";
  const reasons = document.getElementById("reasons");
  reasons.replaceChildren(...status.blocking.map((r) => {
    const li = document.createElement("li"); li.textContent = r; return li;
  }));
  document.getElementById("updated").textContent =
    "updated " + when(status.time) + " UTC \\u00b7 " + status.breakers.length + " breakers";
  // Orders refused by the pre-trade checks, by deny code (only where this server's manager
  // is the trading one: `haltgate serve` has none to count).
  const refusals = Object.entries(status.refusals || {}).sort();
  const box = document.getElementById("refusals");
  box.hidden = refusals.length === 0;
  box.textContent = refusals.length === 0 ? "" : "Refused by pre-trade checks: " +
    refusals.map(([code, n]) => code + " " + n).join(" \\u00b7 ");
  // Rebuild the table only when something changed, so a button never vanishes under the
  // pointer between refreshes.
  const signature = JSON.stringify([status.breakers, status.keyed]);
  if (signature === lastSignature) return;
  lastSignature = signature;
  const body = document.querySelector("#breakers tbody");
  body.replaceChildren();
  for (const b of status.breakers) {
    const tr = document.createElement("tr");
    tr.dataset.breaker = b.name;
    tr.dataset.state = b.state;
    const blocking = b.state === "TRIPPED" || b.state === "MANUALLY_HALTED";
    if (blocking) tr.className = "blocking";
    cell(tr, b.name, "name");
    cell(tr, b.type, "type");
    const pill = document.createElement("span");
    pill.className = "pill " + b.state;
    pill.textContent = b.state.replace("_", " ");
    cell(tr, pill, "state");
    cell(tr, when(b.since), "since");
    cell(tr, text(b.operator), "operator");
    cell(tr, text(b.reason), "reason");
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.breaker = b.name;
    if (blocking) {
      button.className = "reset";
      button.textContent = status.keyed.includes(b.name) ? "Reset (key)" : "Reset";
      button.addEventListener("click", () => act("reset", b.name));
    } else {
      button.className = "halt";
      button.textContent = "Halt";
      button.addEventListener("click", () => act("halt", b.name));
    }
    cell(tr, button, "action");
    body.appendChild(tr);
  }
}

function unknown(msg) {
  document.getElementById("banner").className = "unknown";
  document.getElementById("banner-title").textContent = "STATUS UNKNOWN";
  document.getElementById("reasons").replaceChildren();
  document.getElementById("updated").textContent = msg;
}

async function refresh() {
  try {
    const r = await fetch("/api/status", {headers: headers(), cache: "no-store"});
    if (r.status === 401) { unknown("enter a token to see the status"); return; }
    if (!r.ok) { unknown("server error " + r.status); return; }
    render(await r.json());
    loadEvents();
  } catch (e) {
    unknown("cannot reach the haltgate server (" + new Date().toISOString() + ")");
  }
}

async function loadEvents() {
  try {
    const r = await fetch("/api/events?n=8", {headers: headers(), cache: "no-store"});
    if (!r.ok) return;
    const data = await r.json();
    document.getElementById("events").textContent = data.events.slice().reverse().map((e) =>
      when(e.time) + "  " + e.event + "  " + text(e.breaker) + "  " + text(e.operator) +
      (e.payload && e.payload.reason ? "  " + e.payload.reason : "")).join("\\n") || "-";
  } catch (e) { /* the banner already says the server is unreachable */ }
}

async function act(action, breaker) {
  const reason = document.getElementById("reason").value.trim();
  if (action === "halt" && !reason) { show("error", "Type a reason before halting."); return; }
  const body = {reason: reason || null};
  if (breaker) body.breaker = breaker;
  if (action === "reset") body.key = document.getElementById("key").value || null;
  try {
    const r = await fetch("/api/" + action, {method: "POST", headers: headers(),
                                            body: JSON.stringify(body)});
    const data = await r.json();
    if (!r.ok) {
      show("error", (action === "halt" ? "HALT FAILED: " : "RESET REFUSED: ") + data.error);
    } else {
      show("ok", (action === "halt" ? "Halted " : "Reset ") +
        (breaker || "ALL TRADING") + " as " + data.operator + ".");
      // A reason or key is for one action only: never carry it into the next one.
      document.getElementById("reason").value = "";
      document.getElementById("key").value = "";
      render(data);
      loadEvents();
    }
  } catch (e) {
    show("error", action.toUpperCase() + " FAILED: cannot reach the server. Nothing changed " +
      "that this page knows of; check with `haltgate status`.");
  }
}

document.getElementById("halt-all").addEventListener("click", () => act("halt", null));
refresh();
setInterval(refresh, 2000);
</script>
</body>
</html>
"""


def _source_hash(tag: str) -> str:
    match = re.search(rf"<{tag}>(.*?)</{tag}>", STATUS_PAGE, re.DOTALL)
    if match is None:  # pragma: no cover - the page above has both
        raise RuntimeError(f"the status page has no <{tag}>")
    digest = hashlib.sha256(match.group(1).encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        # Only the page's own inline script and style, by their hashes: an injected
        # script or style (or an inline handler) never runs.
        f"script-src {_source_hash('script')}",
        f"style-src {_source_hash('style')}",
        "connect-src 'self'",
        "img-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)
"""The ``Content-Security-Policy`` of every response of the admin server."""
