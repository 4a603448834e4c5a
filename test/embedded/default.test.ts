import { describe, expect, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { FleetClient, waitForRequest } from "../../src/client/Client.js"
import { VmRequestAccepted } from "../../src/vms/Domain.js"
import { type ControllerProcess, httpJson, type LogLine, demoToken, spawnController } from "../crash/ChildController.js"

/**
 * The default a new user gets (`npm start` with nothing configured): no DATABASE_URL, no
 * PROCTOR_URL. The real `fleet serve` must run on the embedded PGlite under FLEET_DATA_DIR and
 * the bundled simulator in-process, say so loudly, create VMs, and keep them across a restart.
 */

const warnings = (controller: ControllerProcess): ReadonlyArray<string> =>
  controller.logs.filter((line: LogLine) => line.level === 40).map((line) => line.msg ?? "")

/** The in-process simulator's address, from its warning line (its ledger is served there). */
const simulatorUrl = (controller: ControllerProcess): string => {
  const line = warnings(controller).find((msg) => msg.includes("VMs are SIMULATED"))
  const url = /(http:\/\/[^\s;]+)/.exec(line ?? "")?.[1]
  if (url === undefined) throw new Error(`no simulator URL in the warnings:\n${controller.output()}`)
  return url
}

describe("the embedded default (no DATABASE_URL, no PROCTOR_URL)", () => {
  it.scopedLive("serves on PGlite with the in-process simulator, warns about both, and keeps VMs across a restart", () =>
    Effect.gen(function* () {
      const dataDir = yield* Effect.acquireRelease(
        Effect.sync(() => mkdtempSync(join(tmpdir(), "fleet-embedded-"))),
        (directory) => Effect.sync(() => rmSync(directory, { recursive: true, force: true }))
      )
      // Only timings and the data folder: the database and proctor are left to their defaults.
      // The bundled simulator takes 4 s per VM; polls every second at most keep the wait short.
      const env = {
        FLEET_DATA_DIR: dataDir,
        FLEET_POLL_INITIAL: "1 second",
        FLEET_POLL_MAX: "1 second",
        FLEET_RECONCILE_INTERVAL: "200 millis",
        FLEET_RATE_LIMIT: "0"
      }

      // The first start as `npm start` makes it: the TypeScript sources through tsx.
      const first = yield* spawnController({ env, entry: "sources" })
      expect(warnings(first)).toEqual(expect.arrayContaining([
        expect.stringMatching(/^Using the embedded database in .*fleet-embedded-.*pglite \(set DATABASE_URL to use PostgreSQL\)$/),
        expect.stringMatching(/^PROCTOR_URL is not set: VMs are SIMULATED by the bundled proctor simulator at http:\/\/127\.0\.0\.1:\d+; nothing real is created$/)
      ]))
      const sim = simulatorUrl(first)

      // The embedded demo prints a fresh admin token at every start (when the API requires one).
      const token = yield* demoToken(first)
      const client = yield* FleetClient.make({ baseUrl: first.baseUrl, token })
      const answer = yield* httpJson(`${first.baseUrl}/v1/vm-requests`, {
        method: "POST",
        token,
        body: { application: "demo-shop", environment: "staging", stack: "node", osVersion: "ubuntu-24.04", machineType: "e2-small", count: 3 }
      })
      expect(answer.status).toBe(202)
      const accepted = yield* Schema.decodeUnknown(VmRequestAccepted)(answer.body).pipe(Effect.orDie)
      const names = accepted.vms.map((vm) => vm.name).sort()
      const settled = yield* waitForRequest(client, accepted.id, { timeout: "40 seconds", initialDelay: "250 millis", maxDelay: "1 second" }).pipe(Effect.orDie)
      expect(settled.state).toBe("ready")
      expect(settled.vms.map((vm) => vm.name).sort()).toEqual(names)
      expect(settled.vms[0]!.history.map((event) => event.to)).toEqual(["pending", "submitting", "provisioning", "ready"])

      // The in-process simulator created exactly these.
      const ledger = yield* httpJson(`${sim}/__sim/ledger`)
      expect((ledger.body as { vms: Array<{ name: string }> }).vms.map((vm) => vm.name).sort()).toEqual(names)

      // A normal stop (SIGTERM) closes PGlite cleanly.
      const stopped = yield* first.stop("SIGTERM").pipe(Effect.timeout("20 seconds"), Effect.orDie)
      expect(stopped).toEqual({ code: 0, signal: null })
      expect(first.logs.map((line) => line.msg)).toContain("Stopping (interrupted: SIGINT or SIGTERM): finishing what is under way")
      // A first start revoked nothing, and says nothing of it.
      expect(first.output()).toContain("an admin API token was made for this run:\n")

      // Same data folder: the VMs and their history are still there.
      const second = yield* spawnController({ env })
      expect(warnings(second)).toEqual(expect.arrayContaining([expect.stringMatching(/^Using the embedded database in /)]))
      const again = yield* FleetClient.make({ baseUrl: second.baseUrl, token: yield* demoToken(second) })
      expect(second.output()).toContain("an admin API token was made for this run (the previous one is revoked):\n")
      const kept = yield* again.vms.getRequest({ path: { id: accepted.id } }).pipe(Effect.orDie)
      expect(kept.state).toBe("ready")
      expect(kept.vms.map((vm) => [vm.name, vm.state]).sort()).toEqual(names.map((name) => [name, "ready"]))
      expect(kept.vms[0]!.history.map((event) => event.to)).toEqual(["pending", "submitting", "provisioning", "ready"])
      const listed = yield* again.vms.listVms({ urlParams: { application: "demo-shop" } }).pipe(Effect.orDie)
      expect(listed.items.map((vm) => vm.name).sort()).toEqual(names)
      // Nothing was applied twice: the migrations ran once, on the first start.
      expect(second.logs.some((line) => /^Applied migration/.test(line.msg ?? ""))).toBe(false)
      expect(first.logs.some((line) => /^Applied migration/.test(line.msg ?? ""))).toBe(true)
    }), 120_000)
})
