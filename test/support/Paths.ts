import { join } from "node:path"
import { fileURLToPath } from "node:url"

/** The repository's root folder. */
export const repoRoot = fileURLToPath(new URL("../../", import.meta.url))

/** The deprecation policies every test fleet starts with, unless a test names others (./deprecations.yaml says why). */
export const testPoliciesPath = join(repoRoot, "test", "support", "deprecations.yaml")
