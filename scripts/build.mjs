/**
 * `npm run build`: the production bundle, dist/fleet.mjs (what the Dockerfile and the benchmarks
 * run). The dependencies are bundled with fleet's code, so that only the modules fleet uses are
 * loaded: `effect` and `@effect/platform` each load every one of their modules through their
 * index otherwise, among them an API reference page of 6.5 MB that fleet never serves. A few
 * stay outside, loaded from node_modules at run time: pg (its optional native binding), pino and
 * pino-pretty (a pino transport, which fleet does not use today but a deployment may configure,
 * loads its modules by name in a worker thread), and PGlite (it reads its WebAssembly and data
 * files from beside its own modules).
 *
 * `node scripts/build.mjs [outfile]`: dist/fleet.mjs unless another file is named (the test of
 * the bundle builds its own, beside it, so as not to replace the one a benchmark may be running).
 */
import { build } from "esbuild"
import process from "node:process"

await build({
  entryPoints: ["src/bin.ts"],
  outfile: process.argv[2] ?? "dist/fleet.mjs",
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  sourcemap: true,
  logLevel: "info",
  external: ["pg", "pg-native", "pino", "pino-pretty", "@electric-sql/pglite", "@electric-sql/pglite-socket"],
  // Bundled CommonJS modules call require() for Node's own modules: an ES module has none of its own.
  banner: { js: "import { createRequire as fleetCreateRequire } from \"node:module\"; const require = fleetCreateRequire(import.meta.url);" }
})
