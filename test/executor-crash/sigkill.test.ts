import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { adminToken, type ControllerProcess, spawnController } from "../crash/ChildController.js"
import { startKillSwitchProxy, type Trip } from "../crash/KillSwitchProxy.js"
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
  seededRandom,
  snapshot,
  sqlClient,
  startRun,
  startSimulator,
  untilReady,
  waitFor
} from "./support.js"

/**
 * A rolling replace survives its controller being killed. A real controller process runs a run
 * of 200 replacements (20 fleets of 10 VMs on ubuntu-20.04, created through the API first so that
 * the simulator's ledger knows them, plus a ruby fleet the plan skips); it is SIGKILLed at moments
 * drawn from a seeded generator (FLEET_CRASH_SEED replays a draw), and once more at the worst
 * moment there is — proctor has accepted a submission and the controller dies before it hears the
 * answer — and restarted each time. At the end the ledger must show every old VM replaced exactly
 * once, after its replacement existed, no name created twice, nothing else touched, and the limits
 * held at every instant.
 */

const seed = Number(process.env["FLEET_CRASH_SEED"] ?? 20_261_126)
const randomKills = 3
const fleetCount = 20
const perFleet = 10
const maxInFlight = 16
const maxFleetsInParallel = 6

describe("a run under SIGKILL", () => {
  // With the readiness proc, each replacement is checked before its old VM goes; without it (and
  // with no bake), the old VM's decommission is written with the replacement and starts as it is ready.
  for (const readiness of [true, false]) {
    it.scopedLive(`is finished by restarted controllers: every old VM replaced once, within the limits (${readiness ? "readiness checks" : "swaps"})`, () =>
      Effect.gen(function* () {
        const began = Date.now()
        const random = seededRandom(seed)
        const { url } = yield* freshDatabase
        const sql = yield* sqlClient(url)
        // Executions take a few hundred ms (create, readiness check or none, decommission), so a kill finds work at every stage.
        const simulator = yield* startSimulator({ durationMs: { create: 150, destroy: 80, check: 30 } })
        const proxy = yield* startKillSwitchProxy(simulator.url)
        const env = controllerSettings({
          DATABASE_URL: url,
          PROCTOR_URL: proxy.url,
          ...(readiness ? {} : { FLEET_CATALOG: catalogWithoutReadiness(yield* scopedTempDirectory("fleet-sigkill-")) })
        })
        const token = yield* adminToken(url)
        let controller: ControllerProcess = yield* spawnController({ env })

        const fleets = fleetsOf("crash", fleetCount, perFleet)
        yield* requestFleets(controller.baseUrl, token, fleets)
        const skipped = yield* requestFleets(controller.baseUrl, token, [{ application: "crash-ruby", environment: "staging", stack: "ruby", count: 5 }])
        const total = fleetCount * perFleet + skipped.length
        yield* untilReady(sql, total)

        const plan = yield* savePlan(controller.baseUrl, token, recyclePlan("crash-recycle", bindingStrategy({ maxFleetsInParallel, maxInFlight }), ["environments: { include: [staging, production] }", "applications: { include: [\"crash-*\"] }"]))
        expect(plan.steps).toBe(fleetCount * perFleet)
        expect(plan.fleetsSkipped).toBe(1)

        const fleetsReadyMs = Date.now() - began
        const runStartedAt = (yield* simulator.ledger).now
        const run = yield* startRun(controller.baseUrl, token, plan.id)
        const progress = snapshot(sql, run.id)
        const kills: Array<{ readonly at: string; readonly underWay: number; readonly claimed: number; readonly restartMs: number }> = []
        const killAndRestart = (at: string, kill: Effect.Effect<void>) =>
          Effect.gen(function* () {
            yield* kill
            const exited = yield* controller.exited
            expect(exited.signal).toBe("SIGKILL")
            const atKill = yield* progress
            const restarting = Date.now()
            controller = yield* spawnController({ env })
            kills.push({ at, underWay: atKill.underWay, claimed: atKill.claimed, restartMs: Date.now() - restarting })
          })

        // Kills at random moments: after a random number of further steps is done, plus a random delay.
        for (let kill = 0; kill < randomKills; kill++) {
          const done = (yield* progress).steps["done"] ?? 0
          const threshold = done + 3 + Math.floor(random() * ((plan.steps - done) * 0.4) / (randomKills - kill))
          const delayMs = Math.floor(random() * 150)
          yield* waitFor(progress, (now) => (now.steps["done"] ?? 0) >= threshold, `${threshold} steps done`, { timeoutMs: 60_000 })
          yield* killAndRestart(`${threshold} done + ${delayMs} ms`, Effect.zipRight(Effect.sleep(delayMs), Effect.sync(() => controller.killNow())))
        }
        // And at the worst moment: proctor accepted a submission; its answer never reaches the controller.
        let trip: Trip | undefined
        yield* killAndRestart("a submission accepted, its answer lost", Effect.gen(function* () {
          const tripped = yield* proxy.armAfter(1, () => controller.killNow())
          trip = yield* tripped.pipe(Effect.timeout("30 seconds"), Effect.orDie)
        }))

        const finished = yield* waitFor(readRun(sql, run.id), (row) => row.finishedAt !== null, `run ${run.id} to finish`, { timeoutMs: 90_000 })
        expect(finished.state).toBe("succeeded")
        const steps = yield* readSteps(sql, run.id)
        expect(steps.filter((step) => step.state !== "done")).toEqual([])

        const ledger = yield* simulator.ledger
        const report = checkLedger({
          ledger,
          steps,
          runStartedAt,
          runFinishedAt: ledger.now,
          maxInFlight,
          maxFleetsInParallel,
          untouched: skipped
        })
        expect(report.violations).toEqual([])
        // The limits were reached, not just respected: they were under test.
        expect(report.peakInFlight).toBeGreaterThan(maxInFlight / 2)
        expect(report.peakFleets).toBeGreaterThanOrEqual(2)

        // The database agrees: every old VM decommissioned, every replacement ready on 24.04, the skipped fleet as it was.
        const states = yield* sql<{ name: string; state: string; osVersion: string }>`select name, state, os_version from vms`.pipe(Effect.orDie)
        const stateOf = new Map(states.map((vm) => [vm.name, vm]))
        for (const step of steps) {
          expect(stateOf.get(step.oldVmName)?.state).toBe("decommissioned")
          expect(stateOf.get(step.newVmName!)).toMatchObject({ state: "ready", osVersion: "ubuntu-24.04" })
        }
        for (const name of skipped) expect(stateOf.get(name)).toMatchObject({ state: "ready", osVersion: "ubuntu-20.04" })
        // Without the readiness proc, steps were queued behind others (maxInFlight binds before the
        // fleets do) and their creations started as those finished, through the kills.
        const queuedCreates = yield* sql<{ count: number }>`
          select count(*)::int as count from executions where kind = 'create' and after_execution_id is not null and state = 'succeeded'`.pipe(Effect.orDie)
        if (readiness) expect(queuedCreates[0]!.count).toBe(0)
        else expect(queuedCreates[0]!.count).toBeGreaterThan(0)

        // The kills mattered: controllers died with steps under way and executions claimed; the last
        // left a submission proctor had accepted, which was made again under the same name and counted once.
        expect(kills).toHaveLength(randomKills + 1)
        expect(kills.filter((kill) => kill.underWay > 0 && kill.claimed > 0).length).toBeGreaterThanOrEqual(1)
        expect(trip).toBeDefined()
        const tripped = ledger.executions.filter((execution) => execution.vmName === trip!.vmName)
        const trippedKind = tripped.find((execution) => execution.id === trip!.proctorId)!.kind
        expect(tripped.filter((execution) => execution.kind === trippedKind).length).toBeGreaterThanOrEqual(2)
        expect(report.resubmitted).toBeGreaterThanOrEqual(1)

        yield* Effect.logInfo(
          `sigkill: seed ${seed}; kills: ${kills.map((kill) => `[${kill.at}: ${kill.underWay} steps under way, ${kill.claimed} executions claimed; restarted in ${kill.restartMs} ms]`).join(" ")}; ` +
            `ledger: ${report.executions} executions, ${report.resubmitted} pieces of work submitted more than once, ` +
            `peak ${report.peakInFlight}/${maxInFlight} in flight, ${report.peakFleets}/${maxFleetsInParallel} fleets; ` +
            `old fleets ready after ${fleetsReadyMs} ms, run of ${(finished.finishedAt!.getTime() - finished.createdAt.getTime())} ms`
        )
      }), 150_000)
  }
})
