// The devnet's login page: what examples/torusjs-app/index.js does on Node.js, in the
// browser. It reads devnet.json from the devnet (/login/devnet.json), asks the devnet's
// development issuer for an id token (/login/token), then runs torus.js (the bundle at
// /login/torus.js, `window.TorusUtils`): getPublicAddress (lookup, KeyAssign through the
// devnet's signer for a new user, lookup) and retrieveShares (commitments, shares,
// decryption, interpolation). Every request torus.js makes goes through a wrapped
// `window.fetch`, which records where it went, the JSON-RPC method, the HTTP status, the
// time and a short summary of the answer. Elements have ids and data-testid attributes
// for service/tests/the_login_page_logs_in_in_chromium.rs.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const realFetch = window.fetch.bind(window);
  let manifest = null;
  let step = "";
  let requests = [];
  let steps = [];
  // The committee size, once a login has finished (then the node summary is shown).
  let nodeCount = null;

  // Who a URL belongs to, by devnet.json.
  function who(url) {
    if (!manifest) return url;
    const node = manifest.nodes.find((n) => url === n.endpoint || url.startsWith(`${n.endpoint}/`));
    if (node) return `node ${node.index}`;
    const h = manifest.torus_hosts;
    if (url.startsWith(h.metadata)) return "metadata host";
    if (url.startsWith(h.signer)) return "signer";
    if (url.startsWith(h.allow)) return "allow check";
    return url;
  }

  // A short summary of a JSON-RPC (or host) answer.
  function summary(json) {
    if (json === null || typeof json !== "object") return String(json);
    if (json.error) {
      const e = json.error;
      const text = typeof e === "string" ? e : [e.message, e.data].filter(Boolean).join(": ");
      // A new user's first lookup: torus.js goes on with KeyAssign.
      if (text.includes("has not yet been assigned")) return "not assigned yet (a new user)";
      return `error: ${text}`;
    }
    const r = json.result;
    if (r && Array.isArray(r.keys) && r.keys.length > 0) {
      const k = r.keys[0];
      const index = k.key_index ?? k.Index;
      if (index !== undefined) return `ok, key index ${parseInt(index, 16)}`;
    }
    return "ok";
  }

  window.fetch = async (input, init) => {
    const url = typeof input === "string" ? input : input.url;
    // The JSON-RPC method, else the HTTP method and the path (the hosts).
    let method = `${(init && init.method) || "GET"} ${new URL(url, location.href).pathname}`;
    try {
      const body = JSON.parse(init && init.body);
      if (body && body.method) method = body.method;
    } catch {
      // Not a JSON-RPC body.
    }
    const entry = { step, to: who(url), url, method, status: "", ms: null, answer: "" };
    requests.push(entry);
    const t0 = performance.now();
    try {
      const response = await realFetch(input, init);
      entry.ms = performance.now() - t0;
      entry.status = response.status;
      // The answers are small: read a copy before torus.js reads the original.
      const text = await response.clone().text();
      try {
        entry.json = JSON.parse(text);
        entry.answer = summary(entry.json);
      } catch {
        entry.answer = text.slice(0, 120);
      }
      return response;
    } catch (e) {
      entry.ms = performance.now() - t0;
      entry.status = "failed";
      entry.answer = String(e);
      throw e;
    } finally {
      render();
    }
  };

  function cell(row, text, cls, field) {
    const td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    if (field) td.dataset.field = field;
    row.appendChild(td);
  }

  function render() {
    const s = $("steps").tBodies[0];
    s.replaceChildren();
    for (const st of steps) {
      const row = document.createElement("tr");
      row.dataset.testid = "step";
      row.dataset.step = st.name;
      cell(row, st.name, "", "name");
      cell(row, st.ms === null ? "" : st.ms.toFixed(0), "num", "ms");
      cell(row, st.result, st.ok === false ? "bad" : "", "result");
      s.appendChild(row);
    }
    const r = $("requests").tBodies[0];
    r.replaceChildren();
    for (const q of requests) {
      const row = document.createElement("tr");
      row.dataset.testid = "request";
      cell(row, q.step, "", "step");
      cell(row, q.to, "", "to");
      cell(row, q.method, "", "method");
      cell(row, String(q.status), q.status === 200 ? "num ok" : "num bad", "status");
      cell(row, q.ms === null ? "" : q.ms.toFixed(0), "num", "ms");
      cell(row, q.answer, q.answer.startsWith("error") ? "bad" : "", "answer");
      r.appendChild(row);
    }
    if (nodeCount !== null) {
      const shareAnswers = requests.filter((q) => q.method === "ShareRequest" && q.status === 200 && q.json && q.json.result);
      const answered = new Set(shareAnswers.map((q) => q.to));
      $("nodes-summary").textContent = `${answered.size} of ${nodeCount} nodes gave a share`;
      $("nodes-summary").dataset.answered = String(answered.size);
      $("nodes-summary").dataset.n = String(nodeCount);
    }
  }

  async function timed(name, f) {
    step = name;
    const st = { name, ms: null, result: "running", ok: null };
    steps.push(st);
    render();
    const t0 = performance.now();
    try {
      const v = await f();
      st.ms = performance.now() - t0;
      st.result = "ok";
      st.ok = true;
      return v;
    } catch (e) {
      st.ms = performance.now() - t0;
      st.result = String(e && e.message ? e.message : e);
      st.ok = false;
      throw e;
    } finally {
      render();
    }
  }

  async function getJson(url, init) {
    const r = await realFetch(url, init);
    const j = await r.json().catch(() => null);
    if (!r.ok) throw new Error(`${url}: HTTP ${r.status}${j && j.error ? `: ${j.error}` : ""}`);
    return j;
  }

  async function login(email) {
    requests = [];
    steps = [];
    nodeCount = null;
    for (const id of ["user", "address", "key-index", "nodes-summary", "total", "error"]) $(id).textContent = "";
    $("status").textContent = "running";
    $("status").className = "";
    $("user").textContent = email;
    const t0 = performance.now();
    manifest = await timed("devnet.json", () => getJson("/login/devnet.json"));
    const idToken = await timed("id token", async () => {
      const j = await getJson("/login/token", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ email }),
      });
      return j.id_token;
    });
    const torus = new window.TorusUtils({
      network: "testnet",
      clientId: "torus-devnet-login-page",
      metadataHost: manifest.torus_hosts.metadata,
      signerHost: manifest.torus_hosts.signer,
      allowHost: manifest.torus_hosts.allow,
      enableOneKey: false,
    });
    const endpoints = manifest.nodes.map((n) => n.endpoint);
    const torusNodePubs = manifest.nodes.map((n) => ({ X: n.pub_key_x, Y: n.pub_key_y }));
    const indexes = manifest.nodes.map((n) => n.index);
    const address = await timed("getPublicAddress", () =>
      torus.getPublicAddress(endpoints, torusNodePubs, { verifier: "devnet", verifierId: email }),
    );
    $("address").textContent = address;
    const key = await timed("retrieveShares", () =>
      torus.retrieveShares(endpoints, indexes, "devnet", { verifier_id: email }, idToken),
    );
    if (key.ethAddress !== address) {
      throw new Error(`the key's address ${key.ethAddress} is not the public address ${address}`);
    }
    const lookups = requests.filter((q) => q.method === "VerifierLookupRequest" && q.json && q.json.result);
    const last = lookups[lookups.length - 1];
    const index = last && last.json.result.keys && last.json.result.keys[0].key_index;
    $("key-index").textContent = index === undefined ? "?" : String(parseInt(index, 16));
    // torus.js goes on once enough nodes answered; render() counts the later answers too.
    nodeCount = manifest.nodes.length;
    $("total").textContent = `${(performance.now() - t0).toFixed(0)} ms`;
    $("status").textContent = "logged in";
    $("status").className = "ok";
    render();
  }

  $("form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const email = $("email").value.trim();
    $("login").disabled = true;
    login(email)
      .catch((e) => {
        $("status").textContent = "failed";
        $("status").className = "bad";
        $("error").textContent = String(e && e.stack ? e.stack : e);
      })
      .finally(() => {
        $("login").disabled = false;
        render();
      });
  });

  // Says whether the devnet is ready (devnet.json is served once the key buffer is full).
  getJson("/login/devnet.json")
    .then((m) => {
      manifest = m;
      $("status").textContent = `ready: ${m.n} nodes, threshold ${m.k}`;
    })
    .catch((e) => {
      $("status").textContent = String(e.message);
    });
})();
