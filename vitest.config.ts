import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // The bundle the tests that start fleet as a process run (test/support/TestBundle.ts).
    globalSetup: ["test/support/TestBundle.ts"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Test files run in parallel processes; each gets its own database.
    pool: "forks",
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    reporters: ["default"]
  }
})
