import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { execFile } from "node:child_process"
import { randomBytes } from "node:crypto"
import { rmSync } from "node:fs"
import { dirname, join } from "node:path"
import { FleetClient, waitForRequest } from "../../src/client/Client.js"
import { adminToken, httpJson, repoRoot, spawnController } from "../crash/ChildController.js"
import { freshDatabase } from "../support/Database.js"

/** Runs node with these arguments in the repository's root; its stdout. */
const node = (args: ReadonlyArray<string>) =>
  Effect.async<string, Error>((resume) => {
    execFile(process.execPath, [...args], { cwd: repoRoot, timeout: 120_000 }, (error, stdout, stderr) =>
      resume(error === null ? Effect.succeed(stdout) : Effect.fail(new Error(`node ${args.join(" ")}: ${error.message}\n${stderr}`))))
  }).pipe(Effect.orDie)

/**
 * The production bundle (`npm run build`: fleet with its dependencies, a few left outside) is what
 * the Docker image runs and the benchmarks measure; the other tests run the sources. A dependency
 * that cannot be bundled shows up only when the bundle runs, so this builds one and runs it.
 */
describe("the production bundle", () => {
  it.scopedLive("builds a bundle, and serves from it: a VM created through proctor, the OpenAPI document and its page", () =>
    Effect.gen(function* () {
      // Its own file beside dist/fleet.mjs (a benchmark may be running that one): the package root is found from there.
      const bundle = `dist/test-${randomBytes(4).toString("hex")}/fleet.mjs`
      yield* Effect.acquireRelease(node(["scripts/build.mjs", bundle]), () =>
        Effect.sync(() => rmSync(join(repoRoot, dirname(bundle)), { recursive: true, force: true })))
      expect(yield* node([bundle, "--version"])).toContain("0.1.0")

      const { url } = yield* freshDatabase
      const token = yield* adminToken(url)
      // No PROCTOR_URL: the simulator bundled with fleet serves in the same process (creates take 4 s).
      const controller = yield* spawnController({ entry: "bundle", bundle, env: { DATABASE_URL: url, FLEET_RATE_LIMIT: "0", LOG_LEVEL: "info" } })
      const client = yield* FleetClient.make({ baseUrl: controller.baseUrl, token })
      const accepted = yield* client.vms.createRequest({
        payload: { application: "bundle-check", environment: "staging", stack: "java", osVersion: "ubuntu-22.04", machineType: "e2-small", count: 1 }
      })
      const request = yield* waitForRequest(client, accepted.id, { timeout: "60 seconds", initialDelay: "200 millis", maxDelay: "1 second" })
      expect(request.state).toBe("ready")
      expect(request.vms.map((vm) => vm.name)).toEqual(accepted.vms.map((vm) => vm.name))

      const spec = yield* httpJson(`${controller.baseUrl}/openapi.json`)
      expect(spec.status).toBe(200)
      expect((spec.body as { paths: Record<string, unknown> }).paths).toHaveProperty(["/v1/vm-requests"])
      const docs = yield* Effect.promise(() => fetch(`${controller.baseUrl}/docs`).then(async (response) => ({ status: response.status, text: await response.text() })))
      expect(docs.status).toBe(200)
      expect(docs.text).toContain("swagger")
    }), { timeout: 180_000 })
})
