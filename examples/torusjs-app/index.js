// A torus.js 8 app against a local devnet, unchanged but for its hosts, which come from
// the devnet's devnet.json: the nodes (endpoints, public keys, indexes) and the three
// services torus.js calls besides them (`torus_hosts`: metadata, KeyAssign signer,
// allow check). The devnet's nodes require the signer's signature on KeyAssign.
//
//   npm ci
//   node index.js [path/to/devnet.json] [email]
//
// Defaults: ../../devnet-data/devnet.json (what `torus-node devnet` writes when run from
// the repository root) and alice@example.com. Prints the user and its address.
import fs from "node:fs";
import path from "node:path";
import crypto from "node:crypto";
import TorusUtilsPkg from "@toruslabs/torus.js";

const TorusUtils = TorusUtilsPkg.default ?? TorusUtilsPkg;

const manifestPath = process.argv[2] ?? process.env.DEVNET_JSON ?? "../../devnet-data/devnet.json";
const email = process.argv[3] ?? "alice@example.com";
const devnet = JSON.parse(fs.readFileSync(manifestPath, "utf8"));
if (!devnet.torus_hosts) {
  throw new Error(`${manifestPath} has no torus_hosts: start the devnet with a torus-node that serves them`);
}
const verifier = devnet.verifiers.find((v) => v.name === "devnet");
if (!verifier) throw new Error(`${manifestPath} lists no "devnet" verifier`);

const b64url = (buf) => Buffer.from(buf).toString("base64url");

// The id token. A real app gets it from its login provider; on the devnet the provider
// is the development issuer, whose ES256 key is dev-issuer.key next to devnet.json (the
// same token `torus-node login` mints: iss, sub, aud, email, email_verified, iat, exp).
async function mintIdToken(user) {
  const seed = Buffer.from(
    fs.readFileSync(path.join(path.dirname(manifestPath), "dev-issuer.key"), "utf8").trim(),
    "hex",
  );
  const ecdh = crypto.createECDH("prime256v1");
  ecdh.setPrivateKey(seed);
  const point = ecdh.getPublicKey(); // 04 || x || y
  const jwk = { kty: "EC", crv: "P-256", d: b64url(seed), x: b64url(point.subarray(1, 33)), y: b64url(point.subarray(33)) };
  const key = crypto.createPrivateKey({ key: jwk, format: "jwk" });
  // The issuer publishes the key with its kid.
  const jwks = await (await fetch(verifier.jwks_url)).json();
  const published = jwks.keys.find((k) => k.x === jwk.x && k.y === jwk.y);
  if (!published) throw new Error(`dev-issuer.key is not among the keys at ${verifier.jwks_url}`);
  const now = Math.floor(Date.now() / 1000);
  const header = { alg: "ES256", kid: published.kid, typ: "JWT" };
  const claims = {
    iss: verifier.issuer,
    sub: user,
    aud: verifier.audience,
    email: user,
    email_verified: true,
    iat: now,
    exp: now + 3600,
    nonce: crypto.randomBytes(8).toString("hex"),
  };
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  const sig = crypto.sign("sha256", Buffer.from(input), { key, dsaEncoding: "ieee-p1363" });
  return `${input}.${b64url(sig)}`;
}

const torus = new TorusUtils({
  network: "testnet",
  clientId: "torus-devnet-example",
  metadataHost: devnet.torus_hosts.metadata,
  signerHost: devnet.torus_hosts.signer,
  allowHost: devnet.torus_hosts.allow,
  enableOneKey: false,
});
const endpoints = devnet.nodes.map((n) => n.endpoint);
const torusNodePubs = devnet.nodes.map((n) => ({ X: n.pub_key_x, Y: n.pub_key_y }));
const indexes = devnet.nodes.map((n) => n.index);

// The user's address (lookup; KeyAssign through the signer for a new user; lookup).
const publicAddress = await torus.getPublicAddress(endpoints, torusNodePubs, { verifier: "devnet", verifierId: email });
// The key itself (commitments, shares, decryption, interpolation).
const idToken = await mintIdToken(email);
const key = await torus.retrieveShares(endpoints, indexes, "devnet", { verifier_id: email }, idToken);
if (key.ethAddress !== publicAddress) {
  throw new Error(`the key's address ${key.ethAddress} is not the public address ${publicAddress}`);
}
console.log(`user        ${email}`);
console.log(`address     ${key.ethAddress}`);
