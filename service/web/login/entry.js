// The browser bundle of the devnet's login page (dist/torus.js, served at /login/torus.js):
// the real @toruslabs/torus.js 8.0.1, unchanged, exposed as `window.TorusUtils`.
// `npm ci && npm run build` rebuilds it byte for byte (esbuild's version is pinned in
// package.json and package-lock.json, its options are in build.mjs); the node serves the
// checked-in file.
import TorusUtilsPkg from "@toruslabs/torus.js";

window.TorusUtils = TorusUtilsPkg.default ?? TorusUtilsPkg;
