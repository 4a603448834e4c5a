/**
 * The sources as one bundle, built once per test run (vitest's global set-up) with the production
 * build (scripts/build.mjs), for the tests that start fleet as a process: `node` loads it in about
 * a second, where tsx compiling the sources took four to ten on a busy machine, for each process.
 * It is built beside the production bundle, not over it: a benchmark may be running that one.
 */
import { execFileSync } from "node:child_process"
import { join } from "node:path"
import { fileURLToPath } from "node:url"

const root = fileURLToPath(new URL("../../", import.meta.url))

/** The bundle's path, relative to the repository's root. */
export const testBundle = "dist/test/fleet.mjs"

export const testBundlePath = join(root, testBundle)

export default function buildTestBundle(): void {
  execFileSync(process.execPath, ["scripts/build.mjs", testBundle], { cwd: root, stdio: ["ignore", "ignore", "inherit"] })
}
