import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { adminToken, type ControllerProcess, spawnController } from "../crash/ChildController.js"
import { freshDatabase } from "../support/Database.js"
import {
  bindingStrategy,
  catalogWithoutReadiness,
  checkLedger,
  controllerSettings,
  fleetsOf,
  readRun,
  readSteps,
  recyclePlan,
  requestFleets,
  savePlan,
  scopedTempDirectory,
  sqlClient,
  startRun,
  startSimulator,
  untilReady,
  waitFor
} from "./support.js"

/**
 * Three controller processes on one database finish one run together: the run's row lock lets
 * one of them advance it at a time, execution claims and leases split the proctor work, and the
 * ledger must show the same invariants as with one controller.
 */

const controllers = 3
const fleetCount = 12
const perFleet = 10
// Below the fleets' 6 × 3 steps at once: maxInFlight binds first, so steps are queued behind others.
const maxInFlight = 15
const maxFleetsInParallel = 6

/** Log lines of a controller that say it moved an execution on (the reconciler's transitions). */
const handled = (controller: ControllerProcess) =>
  controller.logs.filter((line) => /^(create|decommission|check) execution \w+ → \w+/.test(line.msg ?? "")).length
/** Log lines that say it advanced the run (requested replacements while holding the run's lock). */
const advanced = (controller: ControllerProcess) =>
  controller.logs.filter((line) => /^Requested \d+ replacement VM/.test(line.msg ?? "")).length

describe("several controllers", () => {
  it.scopedLive("finish one run together, sharing the work, within the limits", () =>
    Effect.gen(function* () {
      const { url } = yield* freshDatabase
      const sql = yield* sqlClient(url)
      const simulator = yield* startSimulator({ durationMs: { create: 150, destroy: 80, check: 30 } })
      // No readiness proc and no bake: each old VM goes by the swap written with its replacement.
      const catalog = catalogWithoutReadiness(yield* scopedTempDirectory("fleet-controllers-"))
      // Each controller follows at most a third of maxInFlight's executions at once: what its
      // advances write beyond that is written due, for the others to claim, so the run's peak
      // (checked below) needs at least two of them following executions at the same time.
      const env = controllerSettings({
        DATABASE_URL: url,
        PROCTOR_URL: simulator.url,
        FLEET_CATALOG: catalog,
        FLEET_RECONCILER_CONCURRENCY: String(maxInFlight / controllers)
      })
      const token = yield* adminToken(url)
      const processes = yield* Effect.forEach(Array.from({ length: controllers }, (_, index) => index), () => spawnController({ env }), {
        concurrency: "unbounded"
      })

      // Old fleets, requested through all three.
      const fleets = fleetsOf("multi", fleetCount, perFleet)
      yield* Effect.forEach(processes, (controller, index) =>
        requestFleets(controller.baseUrl, token, fleets.filter((_, fleet) => fleet % controllers === index)), { concurrency: "unbounded" })
      yield* untilReady(sql, fleetCount * perFleet)
      const before = processes.map((controller) => ({ handled: handled(controller), advanced: advanced(controller) }))

      const plan = yield* savePlan(processes[0]!.baseUrl, token, recyclePlan("multi-recycle", bindingStrategy({ maxFleetsInParallel, maxInFlight }), ["environments: { include: [staging, production] }"]))
      expect(plan.steps).toBe(fleetCount * perFleet)
      const runStartedAt = (yield* simulator.ledger).now
      const run = yield* startRun(processes[1]!.baseUrl, token, plan.id)
      const finished = yield* waitFor(readRun(sql, run.id), (row) => row.finishedAt !== null, `run ${run.id} to finish`, { timeoutMs: 90_000 })
      expect(finished.state).toBe("succeeded")
      const steps = yield* readSteps(sql, run.id)
      expect(steps.filter((step) => step.state !== "done")).toEqual([])

      const ledger = yield* simulator.ledger
      const report = checkLedger({ ledger, steps, runStartedAt, runFinishedAt: ledger.now, maxInFlight, maxFleetsInParallel })
      expect(report.violations).toEqual([])
      expect(report.peakInFlight).toBeGreaterThan(maxInFlight / 2)
      const swaps = yield* sql<{ state: string; count: number }>`
        select state, count(*)::int as count from executions where after_vm_id is not null and kind = 'decommission' group by state`.pipe(Effect.orDie)
      expect(swaps).toEqual([{ state: "succeeded", count: fleetCount * perFleet }])
      // Steps were queued behind others of their fleet, and their creations started as those finished.
      const queued = yield* sql<{ state: string; count: number }>`
        select state, count(*)::int as count from executions where after_execution_id is not null and kind = 'create' group by state`.pipe(Effect.orDie)
      expect(queued.map((row) => row.state)).toEqual(["succeeded"])
      expect(queued[0]!.count).toBeGreaterThan(0)

      // The controllers shared the run's work: more than one moved executions on, and more than one advanced the run.
      const shares = processes.map((controller, index) => ({
        controller: index,
        handled: handled(controller) - before[index]!.handled,
        advanced: advanced(controller) - before[index]!.advanced
      }))
      // The split is uneven by design: the controller that writes an execution (or records the
      // VM a swap waits for) takes it, as far as its capacity goes; the others find the rest. So
      // what is required is that no one did it all.
      expect(shares.filter((share) => share.handled > 0).length).toBeGreaterThanOrEqual(2)
      expect(shares.filter((share) => share.advanced > 0).length).toBeGreaterThanOrEqual(2)
      expect(shares.reduce((sum, share) => sum + share.handled, 0)).toBeGreaterThanOrEqual(fleetCount * perFleet * 2)
      yield* Effect.logInfo(
        `controllers: ${shares.map((share) => `#${share.controller} handled ${share.handled} and advanced the run ${share.advanced} times`).join("; ")}; ` +
          `peak ${report.peakInFlight}/${maxInFlight} in flight, ${report.peakFleets}/${maxFleetsInParallel} fleets`
      )
    }), 120_000)
})
