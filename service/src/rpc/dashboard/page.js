// The operator dashboard of one torus-node (served at /dashboard). Polls
// /dashboard/data and /readyz every REFRESH_MS and renders them; no other origin, no
// library. Text goes in with textContent only (nothing from the data is parsed as HTML).
"use strict";

const REFRESH_MS = 2000;
const SVG = "http://www.w3.org/2000/svg";

const $ = (id) => document.getElementById(id);
const set = (id, text) => { $(id).textContent = text; };
const num = (v) => (typeof v === "number" ? v.toLocaleString("en-US") : "–");
const ms = (v) => (typeof v === "number" ? v.toFixed(v < 10 ? 2 : 0) : "–");
const rate = (v) => (typeof v === "number" ? v.toFixed(v < 10 ? 2 : 0) : "–");
const short = (s) => (typeof s === "string" && s.length > 16 ? `${s.slice(0, 10)}…${s.slice(-6)}` : s ?? "");

function duration(s) {
  if (typeof s !== "number") return "–";
  if (s < 1) return `${Math.round(s * 1000)} ms`;
  if (s < 120) return `${s.toFixed(1)} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

function cell(row, text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  row.appendChild(td);
  return td;
}

function fill(tbodyId, items, render) {
  const body = $(tbodyId);
  body.replaceChildren();
  for (const item of items) {
    const tr = document.createElement("tr");
    render(tr, item);
    body.appendChild(tr);
  }
}

function svg(tag, attrs, text) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

// The key buffer chart: created, assigned and free against time.
function chart(points) {
  const el = $("buffer-chart");
  el.replaceChildren();
  const W = 800, H = 220, L = 56, R = 8, T = 10, B = 22;
  const t0 = points.length ? points[0].t_ms : 0;
  const t1 = points.length ? points[points.length - 1].t_ms : 1;
  const top = Math.max(1, ...points.map((p) => Math.max(p.created, p.assigned, p.free)));
  const x = (t) => L + ((t - t0) / Math.max(1, t1 - t0)) * (W - L - R);
  const y = (v) => T + (1 - v / top) * (H - T - B);
  for (const frac of [0, 0.5, 1]) {
    const v = Math.round(top * frac);
    el.appendChild(svg("line", { class: "grid", x1: L, x2: W - R, y1: y(v), y2: y(v) }));
    el.appendChild(svg("text", { class: "axis", x: L - 6, y: y(v) + 4, "text-anchor": "end" }, v.toLocaleString("en-US")));
  }
  const span = (t1 - t0) / 1000;
  el.appendChild(svg("text", { class: "axis", x: L, y: H - 6 }, points.length > 1 ? `-${duration(span)}` : ""));
  el.appendChild(svg("text", { class: "axis", x: W - R, y: H - 6, "text-anchor": "end" }, "now"));
  for (const series of ["created", "assigned", "free"]) {
    const line = svg("polyline", {
      class: series,
      "data-series": series,
      "data-points": points.length,
      points: points.map((p) => `${x(p.t_ms).toFixed(1)},${y(p[series]).toFixed(1)}`).join(" "),
    });
    el.appendChild(line);
  }
  el.setAttribute("data-points", String(points.length));
  set("buffer-span", points.length > 1 ? `(last ${duration(span)}, ${points.length} readings)` : "(collecting)");
}

function render(d) {
  set("node-index", d.node.index != null ? `node ${d.node.index}` : "observer");
  set("node-address", d.node.address);
  set("node-version", `v${d.node.version} · ${d.node.commit}`);
  set("node-uptime", `up ${duration(d.node.uptime_s)}`);
  set("epoch", num(d.epoch.epoch));
  set("thresholds", `n ${d.epoch.n} · k ${d.epoch.k} · t ${d.epoch.t}`);
  set("height", num(d.consensus.height));
  set("last-block", `last block ${duration(d.consensus.last_block_s)} ago`);
  set("round", d.consensus.round != null ? num(d.consensus.round) : "–");
  set("app-hash", `app hash ${short(d.consensus.app_hash)}`);
  $("app-hash").title = d.consensus.app_hash ?? "";
  set("peers", `${d.peers.connected} / ${d.peers.committee_peers}`);
  set("queued", `${num(d.peers.queued)} messages queued`);
  set("keys-created", num(d.keys.created));
  set("keys-assigned", num(d.keys.assigned));
  set("keys-free", num(d.keys.free));
  set("keys-opened", `${num(d.keys.opened)} opened`);
  set("shares", `${num(d.keys.shares)} shares held`);
  set("open-batch", d.keys.open_batch ? `batch of ${num(d.keys.open_batch.count)} open at ${num(d.keys.open_batch.start)}` : "no batch open");
  chart(d.buffer);
  fill("committee", d.epoch.committee, (tr, n) => {
    if (n.me) tr.classList.add("me");
    if (n.blamed) tr.classList.add("blamed");
    cell(tr, String(n.index));
    cell(tr, n.address ?? "invalid key", "mono");
    cell(tr, n.blamed ? "blamed" : n.me ? "this node" : "member");
  });
  set("blamed", d.blamed.length ? d.blamed.join(", ") : "none");
  set("complaints", num(d.complaints_filed));
  set("rpc-window", `(last ${d.rpc_window_s} s)`);
  fill("rpc", d.rpc, (tr, m) => {
    cell(tr, m.method);
    cell(tr, rate(m.per_s));
    cell(tr, rate(m.errors_per_s));
    cell(tr, ms(m.p50_ms));
    cell(tr, ms(m.p99_ms));
    cell(tr, num(m.total));
  });
  fill("batches", [...d.batches].reverse(), (tr, b) => {
    cell(tr, `${num(b.start)}–${num(b.start + b.count - 1)}`);
    cell(tr, num(b.count));
    cell(tr, b.dealers.join(", "));
    cell(tr, b.public_keys_decided ? "decided" : "pending");
    cell(tr, b.phases.length ? b.phases.map((p) => `${p.phase} ${duration(p.seconds)}`).join(" · ") : "–", "mono");
  });
}

async function refresh() {
  try {
    const [data, ready] = await Promise.all([
      fetch("/dashboard/data", { cache: "no-store" }),
      fetch("/readyz", { cache: "no-store" }),
    ]);
    const body = await data.json();
    if (!data.ok) throw new Error(body.error ?? `HTTP ${data.status}`);
    render(body);
    const r = await ready.json();
    const pill = $("ready");
    pill.textContent = r.ready ? "ready" : "not ready";
    pill.className = `pill ${r.ready ? "ok" : "bad"}`;
    $("reasons").hidden = r.ready;
    set("reasons", r.ready ? "" : (r.reasons ?? []).join("; "));
    $("error").hidden = true;
    set("updated", new Date().toLocaleTimeString("en-GB"));
  } catch (e) {
    $("error").hidden = false;
    set("error", `Cannot read the node: ${e.message}`);
  }
}

refresh();
setInterval(refresh, REFRESH_MS);
