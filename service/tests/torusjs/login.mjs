// The real legacy client (@toruslabs/torus.js 8.0.1) against a cluster of our nodes.
// Usage: node login.mjs ARGS.json   (written by service/tests/torusjs.rs)
// The three non-node services the client calls (spec §10.13: the KeyAssign signer,
// the allow check and the metadata host) are the devnet's (`hosts` in ARGS.json).
import fs from "node:fs";
import TorusUtilsPkg from "@toruslabs/torus.js";

const TorusUtils = TorusUtilsPkg.default ?? TorusUtilsPkg;
const args = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const torus = new TorusUtils({
  network: "testnet",
  clientId: "torus-node-test",
  metadataHost: args.hosts.metadata,
  allowHost: args.hosts.allow,
  signerHost: args.hosts.signer,
  enableOneKey: Boolean(args.enableOneKey),
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
console.log(JSON.stringify(out));
process.exit(out.error ? 1 : 0);
