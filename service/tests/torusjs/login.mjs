// The real legacy client (@toruslabs/torus.js 8.0.1) against a cluster of our nodes.
// Usage: node login.mjs ARGS.json   (written by service/tests/torusjs.rs)
// Stubs only the three non-node services the client calls (spec §10.13): the
// KeyAssign signer, the allow check, and the metadata host (nonce 0).
import http from "node:http";
import fs from "node:fs";
import TorusUtilsPkg from "@toruslabs/torus.js";

const TorusUtils = TorusUtilsPkg.default ?? TorusUtilsPkg;
const args = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const hits = { sign: 0, allow: 0, get: 0, other: 0 };

const server = http.createServer((req, res) => {
  let body = "";
  req.on("data", (c) => (body += c));
  req.on("end", () => {
    res.setHeader("Content-Type", "application/json");
    res.setHeader("Access-Control-Allow-Origin", "*");
    if (req.url.startsWith("/api/sign")) {
      hits.sign++;
      res.end(JSON.stringify({ "torus-timestamp": String(Math.floor(Date.now() / 1000)), "torus-nonce": "n" + hits.sign, "torus-signature": "AAAA" }));
    } else if (req.url.startsWith("/api/allow")) {
      hits.allow++;
      res.end(JSON.stringify({ success: true }));
    } else if (req.url.startsWith("/get_or_set_nonce")) {
      hits.get++;
      res.end(JSON.stringify({ typeOfUser: "v1", nonce: "0" }));
    } else if (req.url.startsWith("/get")) {
      hits.get++;
      res.end(JSON.stringify({ message: "0" }));
    } else {
      hits.other++;
      res.statusCode = 404;
      res.end("{}");
    }
  });
});
await new Promise((r) => server.listen(0, "127.0.0.1", r));
const stub = `http://127.0.0.1:${server.address().port}`;

const torus = new TorusUtils({
  network: "testnet",
  clientId: "torus-node-test",
  metadataHost: stub,
  allowHost: `${stub}/api/allow`,
  signerHost: `${stub}/api/sign`,
  enableOneKey: false,
});
const out = {};
try {
  const pub = await torus.getPublicAddress(args.endpoints, args.torusNodePubs, { verifier: args.verifier, verifierId: args.verifierId }, true);
  out.publicAddress = pub;
  const shares = await torus.retrieveShares(args.endpoints, args.indexes, args.verifier, { verifier_id: args.verifierId }, args.idToken);
  out.ethAddress = shares.ethAddress;
  out.privKey = shares.privKey;
} catch (e) {
  out.error = String(e && e.stack ? e.stack : e);
}
out.hits = hits;
server.close();
console.log(JSON.stringify(out));
process.exit(out.error ? 1 : 0);
