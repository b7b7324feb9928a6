// Builds dist/torus.js (or the file named by the first argument): torus.js for the
// browser, minified, with Node's Buffer from the `buffer` package and without Node's
// `crypto` (see shims/). Same input, same esbuild (pinned), same bytes: the node serves
// the checked-in file, and service/tests/the_login_page_bundle_is_built_from_its_lock_file.rs
// checks that it is this build's output.
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const here = path.dirname(fileURLToPath(import.meta.url));
const outfile = path.resolve(process.argv[2] ?? path.join(here, "dist", "torus.js"));
await esbuild.build({
  absWorkingDir: here,
  entryPoints: ["entry.js"],
  bundle: true,
  minify: true,
  format: "iife",
  platform: "browser",
  target: "es2020",
  legalComments: "none",
  charset: "utf8",
  inject: ["./shims/buffer.js"],
  alias: { crypto: "./shims/crypto.js" },
  define: { global: "globalThis" },
  outfile,
  logLevel: "warning",
});
