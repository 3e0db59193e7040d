// Build the web pages into crossbeat/web/static (issue #12). Deterministic: the same
// sources and the locked dependencies give byte-identical output, which CI checks with
// `git diff --exit-code crossbeat/web/static` after `npm ci && npm run build`.
import * as esbuild from "esbuild";
import fs from "node:fs";
import path from "node:path";

const here = path.dirname(new URL(import.meta.url).pathname);
const out = path.join(here, "..", "crossbeat", "web", "static");
fs.rmSync(out, { recursive: true, force: true });
fs.mkdirSync(path.join(out, "assets"), { recursive: true });

const common = { bundle: true, minify: true, target: "es2020", charset: "utf8", logLevel: "warning" };
await esbuild.build({
  ...common,
  entryPoints: ["public", "methodology", "app", "admin", "field", "forecast"].map((n) => `src/${n}.js`),
  outdir: path.join(out, "assets"),
  format: "esm",
  splitting: true,
  chunkNames: "chunk-[hash]",
  absWorkingDir: here,
});
await esbuild.build({
  ...common,
  entryPoints: ["src/style.css"],
  outdir: path.join(out, "assets"),
  absWorkingDir: here,
});
await esbuild.build({
  ...common,
  entryPoints: ["src/sw.js"],
  outfile: path.join(out, "sw.js"),
  format: "iife",
  absWorkingDir: here,
});
for (const name of fs.readdirSync(path.join(here, "pages")).sort()) {
  fs.copyFileSync(path.join(here, "pages", name), path.join(out, name));
}
