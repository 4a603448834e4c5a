/**
 * The sources as one bundle, built once per test run (vitest's global set-up) with the production
 * build (scripts/build.mjs), for the tests that start fleet as a process: `node` loads it in about
 * a second, where tsx compiling the sources took four to ten on a busy machine, for each process.
 * It is built beside the production bundle, not over it: a benchmark may be running that one.
 */
import { execFileSync } from "node:child_process"
import type { TestProject } from "vitest/node"
import { join } from "node:path"
import { repoRoot } from "./Paths.js"

/** The bundle's path, relative to the repository's root. */
export const testBundle = "dist/test/fleet.mjs"

export const testBundlePath = join(repoRoot, testBundle)

const build = () => execFileSync(process.execPath, ["scripts/build.mjs", testBundle], { cwd: repoRoot, stdio: ["ignore", "ignore", "inherit"] })

/** Built at the start of the run, and again before each rerun in watch mode, so that no test runs code older than the sources. */
export default function buildTestBundle(project: TestProject): void {
  build()
  project.onTestsRerun(() => void build())
}
