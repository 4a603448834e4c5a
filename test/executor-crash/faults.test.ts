import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { adminToken, spawnController } from "../crash/ChildController.js"
import { freshDatabase } from "../support/Database.js"
import {
  call,
  catalogWithoutReadiness,
  checkLedger,
  controllerSettings,
  finishedRunStates,
  followedUntil,
  readRun,
  readSteps,
  recyclePlan,
  requestFleets,
  savePlan,
  scopedTempDirectory,
  snapshot,
  sqlClient,
  startRun,
  startSimulator,
  untilReady,
  waitFor
} from "./support.js"

/**
 * Runs against a proctor that misbehaves: POSTs refused (failureRate), executions that fail
 * (executionFailureRate), executions whose status stays CREATED forever (stuckRate), and
 * answers lost after proctor acted (lostResponseRate). Each run must still end in the state its
 * plan says — a stuck create fails its step once the execution deadline has passed; failures
 * count against the failure budget, which pauses or aborts the run — and the ledger must show
 * nothing done twice.
 */

const deadlineMs = 3000
const faults = { failureRate: 0.2, executionFailureRate: 0.05, stuckRate: 0.1, lostResponseRate: 0.2 } as const

describe("a run against a faulty proctor", () => {
  // With the readiness proc, each replacement is checked before its old VM goes; without it (and
  // with no bake), the old VM's decommission is written with the replacement and starts as it is ready.
  for (const readiness of [true, false]) {
    it.scopedLive(`ends in the state its plan says, failures counted against the budget, nothing done twice (${readiness ? "readiness checks" : "swaps"})`, () =>
      Effect.gen(function* () {
        const { url } = yield* freshDatabase
        const sql = yield* sqlClient(url)
        const simulator = yield* startSimulator({ durationMs: { create: 150, destroy: 80, check: 30 }, seed: 7 })
        const controller = yield* spawnController({
          env: controllerSettings({
            DATABASE_URL: url,
            PROCTOR_URL: simulator.url,
            FLEET_EXECUTION_DEADLINE: `${deadlineMs} millis`,
            FLEET_LEASE: "2 seconds",
            ...(readiness ? {} : { FLEET_CATALOG: catalogWithoutReadiness(yield* scopedTempDirectory("fleet-faults-")) })
          })
        })
        const token = yield* adminToken(url)
        const baseUrl = controller.baseUrl
        const fleet = (application: string, environment: string, stack: string, count: number) => ({ application, environment, stack, count })

        // The old fleets, made while proctor behaves.
        yield* requestFleets(baseUrl, token, [
          fleet("fa-00", "staging", "java", 8),
          fleet("fa-01", "staging", "go", 8),
          fleet("fa-02", "production", "python", 8),
          fleet("fa-03", "production", "node", 8),
          fleet("fb-00", "staging", "java", 6),
          fleet("fb-01", "production", "go", 6),
          fleet("fc-00", "staging", "python", 6),
          fleet("fc-01", "production", "node", 6)
        ])
        yield* untilReady(sql, 56)
        const planFor = (name: string, applications: string, budget: string) =>
          savePlan(baseUrl, token, recyclePlan(name, [
            "maxSurge: 25%",
            "maxUnavailable: 0",
            "maxFleetsInParallel: 4",
            "maxInFlight: 8",
            "environmentOrder: [staging, production]",
            "bakeTime: 0s",
            `failureBudget: ${budget}`
          ], ["environments: { include: [staging, production] }", `applications: { include: ["${applications}"] }`]))
        const settle = (runId: string) => waitFor(readRun(sql, runId), (row) => finishedRunStates.includes(row.state), `run ${runId} to end`, { timeoutMs: 60_000 })
        const ledgerReport = (runId: string, runStartedAt: number, limits = { maxInFlight: 8, maxFleetsInParallel: 4 }) =>
          Effect.gen(function* () {
            const ledger = yield* simulator.ledger
            const steps = yield* readSteps(sql, runId)
            const gaveUpAt = yield* followedUntil(sql)
            return { ledger, steps, report: checkLedger({ ledger, steps, runStartedAt, runFinishedAt: ledger.now, ...limits, gaveUpAt }) }
          })

        // Run A: a budget large enough to finish. Its first creates get stuck (CREATED forever),
        // then every fault is on at once.
        const planA = yield* planFor("faults-a", "fa-*", "{ max: 100%, action: pause }")
        yield* simulator.configure({ stuckRate: 1 })
        const startedA = (yield* simulator.ledger).now
        const runA = yield* startRun(baseUrl, token, planA.id)
        yield* waitFor(simulator.ledger, (ledger) => ledger.executions.some((execution) => execution.kind === "create" && execution.submittedAt >= startedA), "a create")
        yield* simulator.configure(faults)
        const endA = yield* settle(runA.id)
        const a = yield* ledgerReport(runA.id, startedA)
        expect(a.report.violations).toEqual([])
        const failedA = a.steps.filter((step) => step.state === "failed")
        expect(a.steps.filter((step) => step.state !== "done" && step.state !== "failed")).toEqual([])
        expect(failedA.length).toBeGreaterThan(0)
        expect(endA.state).toBe("failed")
        expect(endA.failures).toBe(failedA.length)
        for (const step of failedA) expect(step.reason).toMatch(/timed out|failed/)
        // A create proctor never finished: its step failed as timed out, and not before the deadline.
        const stuckCreates = a.steps.filter((step) => {
          const creates = a.ledger.executions.filter((execution) => execution.kind === "create" && execution.vmName === step.newVmName)
          return creates.length > 0 && creates.every((execution) => execution.stuck)
        })
        expect(stuckCreates.length).toBeGreaterThan(0)
        const finishedAt = new Map((yield* sql<{ index: number; finishedMs: number }>`
          select index, (extract(epoch from finished_at) * 1000)::float8 as finished_ms from steps where run_id = ${runA.id}`.pipe(Effect.orDie))
          .map((row) => [row.index, row.finishedMs]))
        for (const step of stuckCreates) {
          expect(step.state).toBe("failed")
          expect(step.reason).toMatch(/timed out/)
          const submitted = Math.min(...a.ledger.executions.filter((execution) => execution.vmName === step.newVmName).map((execution) => execution.submittedAt))
          expect(finishedAt.get(step.index)! - submitted).toBeGreaterThanOrEqual(deadlineMs)
          expect(a.ledger.vms.some((vm) => vm.name === step.newVmName)).toBe(false)
        }
        // Answers were lost, and the work was submitted again under the same names, done once.
        const stats = yield* simulator.stats
        expect(stats.submit.lost).toBeGreaterThan(0)
        expect(stats.submit.failed).toBeGreaterThan(0)
        expect(a.report.resubmitted).toBeGreaterThan(0)

        // Run B: no failure allowed, pause. Its steps fail often now.
        yield* simulator.configure({ executionFailureRate: 0.5 })
        const planB = yield* planFor("faults-b", "fb-*", "{ max: 0, action: pause }")
        const startedB = (yield* simulator.ledger).now
        const runB = yield* startRun(baseUrl, token, planB.id)
        const pausedB = yield* waitFor(readRun(sql, runB.id), (row) => row.state !== "running", `run ${runB.id} to stop`, { timeoutMs: 60_000 })
        expect(pausedB).toMatchObject({ state: "paused", pauseReason: "failure-budget" })
        expect(pausedB.failures).toBeGreaterThan(pausedB.allowedFailures)
        // Paused: the steps under way finish, and no new one starts.
        const quiet = yield* waitFor(snapshot(sql, runB.id), (now) => now.underWay === 0 && (now.steps["baking"] ?? 0) === 0, "run B's steps under way to finish", {
          timeoutMs: 30_000
        })
        const cancelled = yield* call(`${baseUrl}/v1/runs/${runB.id}/cancel`, token, { method: "POST" })
        expect(cancelled.status).toBe(200)
        const endB = yield* settle(runB.id)
        expect(endB.state).toBe("cancelled")
        const b = yield* ledgerReport(runB.id, startedB)
        expect(b.report.violations).toEqual([])
        // Steps queued behind others were held with the pause, and are cancelled with the pending ones.
        expect(b.steps.filter((step) => step.state === "cancelled")).toHaveLength((quiet.steps["pending"] ?? 0) + (quiet.steps["queued"] ?? 0))
        expect(endB.failures).toBe(b.steps.filter((step) => step.state === "failed").length)

        // Run C: one failure allowed, then abort, rolling back: replacements not swapped in are removed, old VMs stay.
        const planC = yield* planFor("faults-c", "fc-*", "{ max: 1, action: abort }")
        const startedC = (yield* simulator.ledger).now
        const runC = yield* startRun(baseUrl, token, planC.id, { rollbackOnAbort: true })
        const endC = yield* settle(runC.id)
        expect(endC.state).toBe("aborted")
        expect(endC.failures).toBeGreaterThan(1)
        const c = yield* ledgerReport(runC.id, startedC)
        expect(c.report.violations).toEqual([])
        // The steps that ended failed, each once, whether or not its rollback failed too.
        expect(endC.reason).toBe(`aborted after ${c.steps.filter((step) => step.state === "failed").length} failed step(s)`)
        expect(c.steps.filter((step) => ["pending", "queued", "creating", "checking", "baking", "decommissioning", "rolling_back"].includes(step.state))).toEqual([])
        const live = new Set(c.ledger.vms.filter((vm) => vm.destroyedAt === null).map((vm) => vm.name))
        for (const step of c.steps) {
          switch (step.state) {
            case "done":
              expect(live.has(step.oldVmName)).toBe(false)
              expect(live.has(step.newVmName!)).toBe(true)
              break
            case "rolled_back":
            case "cancelled":
              expect(live.has(step.oldVmName)).toBe(true)
              if (step.newVmName !== null) expect(live.has(step.newVmName)).toBe(false)
              break
            case "failed": {
              // Its old VM stays; a replacement that came up is removed by the rollback unless that failed too.
              // Except where proctor left fleet in the dark: a decommission it carried out but whose
              // answer was lost, then submitted again, and that attempt failed (what fleet saw).
              const removedUnheard = c.ledger.executions.some((execution) =>
                execution.vmName === step.oldVmName && execution.effect === "destroyed" && execution.responseLost)
              if (!removedUnheard) expect(live.has(step.oldVmName)).toBe(true)
              break
            }
          }
        }

        yield* Effect.logInfo(
          `faults: A ${endA.state} with ${failedA.length}/${a.steps.length} failed (${stuckCreates.length} stuck creates), ` +
            `B ${pausedB.state} (${pausedB.pauseReason}) after ${pausedB.failures} failure(s) then ${endB.state}, C ${endC.state} after ${endC.failures} failure(s) ` +
            `(${c.steps.filter((step) => step.state === "rolled_back").length} rolled back); proctor: ${stats.submit.failed} POSTs refused, ` +
            `${stats.submit.lost} answers lost; ${a.report.resubmitted + b.report.resubmitted + c.report.resubmitted} pieces of work submitted more than once`
        )
      }), 150_000)
  }
})
