import { SqlClient } from "@effect/sql"
import { peakOverlap } from "../support/Intervals.js"
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Either, Fiber } from "effect"
import { randomUUID } from "node:crypto"
import { FleetClient, waitForRequest, waitUntil } from "../../src/client/Client.js"
import type { RunView, StepPage } from "../../src/executor/Domain.js"
import { insertVms } from "../../src/demo/Seed.js"
import { Scheduler } from "../../src/executor/Scheduler.js"
import type { InventoryVm } from "../../src/planner/Domain.js"
import { PlanService } from "../../src/planner/PlanService.js"
import type { PlanId } from "../../src/planner/Records.js"
import type { SimulatorLedger } from "../../src/proctor/SimulatorModel.js"
import { CreateVmRequest, VmId } from "../../src/vms/Domain.js"
import { startFleet, type TestFleet } from "../support/Fleet.js"

const fast = { timeout: "60 seconds", initialDelay: "20 millis", maxDelay: "100 millis" } as const

/** Creates `count` VMs of a fleet through the API and waits until they are ready. */
const fleetOf = (
  fleet: TestFleet,
  application: string,
  environment: string,
  stack: string,
  count: number,
  osVersion = "ubuntu-20.04",
  metadata?: Record<string, string>
) =>
  Effect.gen(function* () {
    const accepted = yield* fleet.client.vms.createRequest({
      payload: new CreateVmRequest({ application, environment, stack, osVersion, machineType: "e2-small", count, ...(metadata === undefined ? {} : { metadata }) })
    })
    const settled = yield* waitForRequest(fleet.client, accepted.id, fast)
    expect(settled.state).toBe("ready")
    return settled.vms
  })

const savePlan = (fleet: TestFleet, yaml: string) =>
  fleet.use(Effect.flatMap(PlanService, (plans) => plans.save(yaml, "test", { email: "planner@example.com" })))

/** The saved plans made two minutes older, as if saved before the latest fire of an every-minute cron. */
const savedEarlier = (fleet: TestFleet) =>
  fleet.use(Effect.flatMap(SqlClient.SqlClient, (sql) => sql`update plans set created_at = created_at - interval '2 minutes'`)).pipe(Effect.orDie)

/** A plan named nightly that moves the 20.04 VMs to 24.04, with `extra` (a strategy, a schedule) after its target. */
const nightly = (extra = "") => `
name: nightly
select:
  osVersions: [ubuntu-20.04]
target: ubuntu-24.04
${extra}`

/** A schedule that fires every minute, its window an hour. */
const everyMinute = `schedule:
  cron: "* * * * *"
  timeZone: Europe/Amsterdam
  window: 1h
`

/** One look at the schedules, as a controller's scheduler takes every FLEET_SCHEDULER_INTERVAL. */
const schedulerTick = (fleet: TestFleet) => fleet.use(Effect.flatMap(Scheduler, (scheduler) => scheduler.tick))

const waitForRun = (fleet: TestFleet, id: RunView["id"], done: (run: RunView) => boolean) =>
  waitUntil(fleet.client.runs.getRun({ path: { id } }), done, `run ${id}`, fast)

const settledRun = (run: RunView) => ["succeeded", "failed", "cancelled", "aborted"].includes(run.state)

const retirePlan = (strategy: string) => `
name: retire-2004
select:
  osVersions: [ubuntu-20.04]
target: ubuntu-24.04
strategy:
${strategy}
`

/** The most executions that were under way at one instant, among those submitted at or after `since`. */
const peakInFlight = (ledger: SimulatorLedger, since: number) =>
  peakOverlap(ledger.executions
    .filter((execution) => execution.submittedAt >= since)
    .map((execution) => ({ from: execution.submittedAt, to: execution.finishedAt ?? Number.MAX_SAFE_INTEGER })))

describe("runs", () => {
  it.scopedLive("replace every VM of the moving fleets within the limits, old VMs only after their replacement is ready", () =>
    Effect.gen(function* () {
      const fleet = yield* startFleet({ simulator: { durationMs: { create: 60, destroy: 30, check: 10 } } })
      const payments = yield* fleetOf(fleet, "payments-api", "production", "java", 4, "ubuntu-20.04", { team: "payments" })
      const search = yield* fleetOf(fleet, "search-api", "staging", "go", 3)
      const billing = yield* fleetOf(fleet, "billing", "production", "ruby", 2)
      const saved = yield* savePlan(fleet, retirePlan(`
  maxSurge: 1
  maxUnavailable: 1
  maxInFlight: 3
  maxFleetsInParallel: 2
  environmentOrder: [integration, staging, production]`))
      expect(saved.plan.totals.steps).toBe(7)
      expect(saved.plan.skipped.map((skip) => skip.application)).toEqual(["billing"])
      const since = (yield* fleet.simulator.ledger).now
      const started = yield* fleet.client.runs.startRun({ path: { id: saved.id }, payload: {} })
      expect(started.steps).toBe(7)
      const run = yield* waitForRun(fleet, started.id, settledRun)
      expect(run.state).toBe("succeeded")
      expect(run.counts.done).toBe(7)
      expect(run.percent).toBe(100)

      const steps = (yield* fleet.client.runs.listSteps({ path: { id: started.id }, urlParams: {} })).items
      expect(steps).toHaveLength(7)
      // A page at a time, by the cursor each page ends with: the same steps, once each, in order.
      const paged: Array<string> = []
      let cursor: number | null = null
      do {
        const page: StepPage = yield* fleet.client.runs.listSteps({ path: { id: started.id }, urlParams: { limit: 3, ...(cursor === null ? {} : { cursor }) } })
        paged.push(...page.items.map((step) => step.id))
        cursor = page.nextCursor
      } while (cursor !== null)
      expect(paged).toEqual(steps.map((step) => step.id))
      const ledger = yield* fleet.simulator.ledger
      const byName = new Map(ledger.vms.map((vm) => [vm.name, vm]))
      for (const step of steps) {
        expect(step.state).toBe("done")
        const replacement = byName.get(step.newVm!.name)!
        const old = byName.get(step.oldVm.name)!
        expect(replacement.destroyedAt).toBeNull()
        expect(old.destroyedAt).not.toBeNull()
        // The old VM went only after its replacement existed.
        expect(old.destroyedAt!).toBeGreaterThanOrEqual(replacement.createdAt)
        expect(step.newVm!.osVersion).toBe("ubuntu-24.04")
        // A replacement keeps its old VM's metadata, and says what it replaced in which run.
        const replacementVm = yield* fleet.client.vms.getVm({ path: { id: VmId.make(step.newVm!.id) } })
        expect(replacementVm.metadata).toEqual({
          ...(step.fleet.startsWith("payments-api/") ? { team: "payments" } : {}),
          replaces: step.oldVm.name,
          run: started.id
        })
        // Its history is its own states (the step's are the run's), and a passed readiness check leaves it as it was.
        expect(replacementVm.history.map((event) => `${event.from} → ${event.to}`)).toEqual([
          "null → pending", "pending → submitting", "submitting → provisioning", "provisioning → ready"
        ])
        expect(replacementVm.state).toBe("ready")
        expect(replacementVm.reason).not.toMatch(/readiness/)
      }
      expect(peakInFlight(ledger, since)).toBeLessThanOrEqual(3)
      // Per fleet, at most surge + unavailable = 2 steps at once: from a replacement's creation to its old VM's removal.
      for (const name of ["payments-api/production/java", "search-api/staging/go"]) {
        const windows = steps
          .filter((step) => step.fleet === name)
          .map((step) => ({ from: step.startedAt!.getTime(), to: step.finishedAt!.getTime() }))
        expect(peakOverlap(windows)).toBeLessThanOrEqual(2)
      }
      // Environment order: every staging step ended before the first production step started.
      const stagingEnd = Math.max(...steps.filter((step) => step.fleet.includes("/staging/")).map((step) => step.finishedAt!.getTime()))
      const productionStart = Math.min(...steps.filter((step) => step.fleet.includes("/production/")).map((step) => step.startedAt!.getTime()))
      expect(stagingEnd).toBeLessThanOrEqual(productionStart)

      const inventory = yield* fleet.client.inventory.inventory({ urlParams: { groupBy: ["application", "osVersion"] } })
      expect(inventory.groups).toEqual(expect.arrayContaining([
        { application: "payments-api", osVersion: "ubuntu-24.04", count: 4 },
        { application: "search-api", osVersion: "ubuntu-24.04", count: 3 },
        { application: "billing", osVersion: "ubuntu-20.04", count: 2 }
      ]))
      expect(inventory.total).toBe(payments.length + search.length + billing.length)
    }))

  it.scopedLive("refuses a stale plan, a second run of a busy fleet, and control actions a state does not allow", () =>
    Effect.gen(function* () {
      const fleet = yield* startFleet({ simulator: { durationMs: { create: 400, destroy: 50, check: 10 } } })
      yield* fleetOf(fleet, "payments-api", "production", "java", 2)
      const saved = yield* savePlan(fleet, retirePlan("  maxSurge: 1"))
      const again = yield* savePlan(fleet, retirePlan("  maxSurge: 1"))
      const started = yield* fleet.client.runs.startRun({ path: { id: saved.id }, payload: {} })
      // Once the run has created a replacement, the other plan is stale too: the busy fleet is still what is said.
      yield* waitForRun(fleet, started.id, (run) => (run.counts["pending"] ?? 0) < run.steps)
      const staleMeanwhile = yield* Effect.flip(fleet.client.plans.verifyPlan({ path: { id: again.id } }))
      expect(staleMeanwhile._tag).toBe("StalePlan")
      const busy = yield* Effect.flip(fleet.client.runs.startRun({ path: { id: again.id }, payload: {} }))
      expect(busy._tag).toBe("Conflict")
      expect(busy.message).toContain("payments-api/production/java")
      // A token not allowed the plan's application learns nothing of that run: 403 comes first.
      const searchOnly = yield* FleetClient.make({
        baseUrl: fleet.baseUrl,
        token: yield* fleet.createToken({ name: "search", scopes: ["runs:write", "plans:read"], applications: ["search-*"] })
      })
      const notAllowed = yield* Effect.flip(searchOnly.runs.startRun({ path: { id: again.id }, payload: {} }))
      expect(notAllowed._tag).toBe("Forbidden")

      const paused = yield* fleet.client.runs.pauseRun({ path: { id: started.id } })
      expect(paused.state).toBe("paused")
      const pausedTwice = yield* Effect.flip(fleet.client.runs.pauseRun({ path: { id: started.id } }))
      expect(pausedTwice._tag).toBe("Conflict")
      const resumed = yield* fleet.client.runs.resumeRun({ path: { id: started.id } })
      expect(resumed.state).toBe("running")
      const done = yield* waitForRun(fleet, started.id, settledRun)
      expect(done.state).toBe("succeeded")
      const cancelDone = yield* Effect.flip(fleet.client.runs.cancelRun({ path: { id: started.id } }))
      expect(cancelDone._tag).toBe("Conflict")

      // The inventory moved on: the plan saved before is stale now.
      const stale = yield* Effect.flip(fleet.client.runs.startRun({ path: { id: again.id }, payload: {} }))
      expect(stale._tag).toBe("StalePlan")
      const missing = yield* Effect.flip(fleet.client.runs.getRun({ path: { id: "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b" as RunView["id"] } }))
      expect(missing._tag).toBe("NotFound")
    }))

  it.scopedLive("pauses so no new step starts, and cancels leaving each VM replaced or untouched", () =>
    Effect.gen(function* () {
      const fleet = yield* startFleet({ simulator: { durationMs: { create: 300, destroy: 50, check: 10 } } })
      yield* fleetOf(fleet, "payments-api", "production", "java", 6)
      const saved = yield* savePlan(fleet, retirePlan("  maxSurge: 1\n  maxInFlight: 1"))
      const started = yield* fleet.client.runs.startRun({ path: { id: saved.id }, payload: {} })
      yield* waitForRun(fleet, started.id, (run) => run.counts.creating === 1)
      yield* fleet.client.runs.pauseRun({ path: { id: started.id } })
      const quiet = yield* waitForRun(fleet, started.id, (run) => run.counts.done === 1 && run.counts.decommissioning === 0)
      expect(quiet.counts.pending).toBe(5)
      expect(quiet.counts.creating).toBe(0)
      yield* fleet.client.runs.resumeRun({ path: { id: started.id } })
      yield* waitForRun(fleet, started.id, (run) => run.counts.done >= 2 && run.counts.creating === 1)
      const cancelled = yield* fleet.client.runs.cancelRun({ path: { id: started.id } })
      expect(cancelled.state).toBe("cancelling")
      const final = yield* waitForRun(fleet, started.id, settledRun)
      expect(final.state).toBe("cancelled")
      expect(final.counts.done).toBe(3)
      expect(final.counts.cancelled).toBe(3)
      // Each VM is either replaced (old gone, new ready) or untouched (old ready, no replacement).
      const vms = yield* fleet.client.vms.listVms({ urlParams: { application: "payments-api", limit: 100 } })
      const live = vms.items.filter((vm) => vm.state !== "decommissioned")
      expect(live).toHaveLength(6)
      expect(live.every((vm) => vm.state === "ready")).toBe(true)
      expect(live.filter((vm) => vm.osVersion === "ubuntu-24.04")).toHaveLength(3)
    }))

  it.scopedLive("queues a step behind one under way, holds it while paused, starts it on resume, and never creates it when cancelled", () =>
    Effect.gen(function* () {
      // No readiness proc and no bake: a step's swap is written with its replacement, so the next
      // step can be queued behind it, its creation started as the swap ends.
      const fleet = yield* startFleet({ simulator: { durationMs: { create: 300, destroy: 50, check: 10 } }, withoutReadinessProc: true })
      yield* fleetOf(fleet, "payments-api", "production", "java", 6)
      const since = (yield* fleet.simulator.ledger).now
      const saved = yield* savePlan(fleet, retirePlan("  maxSurge: 2\n  maxInFlight: 1"))
      const started = yield* fleet.client.runs.startRun({ path: { id: saved.id }, payload: {} })
      const sql = yield* fleet.use(SqlClient.SqlClient)
      const queuedStep = fleet.use(sql<{ id: string; afterStepId: string | null; newVmName: string; createState: string; createAfter: string | null }>`
        select s.id, s.after_step_id, s.new_vm_name, e.state as create_state, e.after_execution_id as create_after
        from steps s join executions e on e.vm_id = s.new_vm_id and e.kind = 'create'
        where s.run_id = ${started.id} and s.state = 'queued'`)

      yield* waitForRun(fleet, started.id, (run) => run.counts.creating === 1 && run.counts.queued === 1)
      const [queued] = yield* queuedStep
      expect(queued).toMatchObject({ createState: "waiting" })
      expect(queued!.afterStepId).not.toBeNull()
      expect(queued!.createAfter).not.toBeNull()

      // Paused: the step under way finishes, and the queued one is held rather than started.
      yield* fleet.client.runs.pauseRun({ path: { id: started.id } })
      const quiet = yield* waitForRun(fleet, started.id, (run) => run.counts.done === 1 && run.counts.creating === 0 && run.counts.decommissioning === 0)
      expect(quiet.counts).toMatchObject({ queued: 1, pending: 4 })
      expect(yield* queuedStep).toEqual([{ ...queued, afterStepId: null, createAfter: null }])

      // Resumed: the held step starts, and the next is queued behind it.
      yield* fleet.client.runs.resumeRun({ path: { id: started.id } })
      yield* waitForRun(fleet, started.id, (run) => run.counts.done === 1 && run.counts.creating === 1 && run.counts.queued === 1)
      const [queuedAgain] = yield* queuedStep
      const cancelled = yield* fleet.client.runs.cancelRun({ path: { id: started.id } })
      expect(cancelled.state).toBe("cancelling")
      const final = yield* waitForRun(fleet, started.id, settledRun)
      expect(final.state).toBe("cancelled")
      expect(final.counts).toMatchObject({ done: 2, cancelled: 4, queued: 0 })

      // The step queued when the run was cancelled: its replacement was never created, and says so.
      const neverCreated = (yield* fleet.client.vms.listVms({ urlParams: { application: "payments-api", state: "failed", limit: 100 } })).items
      expect(neverCreated.map((vm) => ({ name: vm.name, reason: vm.reason }))).toEqual([
        { name: queuedAgain!.newVmName, reason: "not created: the run was cancelled before its creation started" }
      ])
      const ledger = yield* fleet.simulator.ledger
      expect(ledger.executions.some((execution) => execution.vmName === queuedAgain!.newVmName)).toBe(false)
      // One execution at a time, queued creations included; each VM replaced or untouched.
      expect(peakInFlight(ledger, since)).toBeLessThanOrEqual(1)
      const live = (yield* fleet.client.vms.listVms({ urlParams: { application: "payments-api", state: "ready", limit: 100 } })).items
      expect(live).toHaveLength(6)
      expect(live.filter((vm) => vm.osVersion === "ubuntu-24.04")).toHaveLength(2)
    }))

  it.scopedLive("replaces one application's fleet on demand, once at a time", () =>
    Effect.gen(function* () {
      const fleet = yield* startFleet({ simulator: { durationMs: { create: 200, destroy: 30, check: 10 } } })
      yield* fleetOf(fleet, "payments-api", "production", "java", 2)
      yield* fleetOf(fleet, "payments-api", "staging", "java", 1)
      const started = yield* fleet.client.runs.replaceApplication({
        path: { application: "payments-api" },
        payload: { environment: "production", strategy: { maxSurge: { kind: "count", value: 2 } } }
      })
      expect(started.uri).toBe(`/v1/runs/${started.id}`)
      expect(started.steps).toBe(2)
      const busy = yield* Effect.flip(fleet.client.runs.replaceApplication({ path: { application: "payments-api" }, payload: { environment: "production" } }))
      expect(busy._tag).toBe("Conflict")
      const bad = yield* Effect.flip(fleet.client.runs.replaceApplication({ path: { application: "payments-api" }, payload: { environment: "prod", targetOs: "windows-95" } }))
      expect(bad._tag).toBe("InvalidInput")
      // Onto a deprecated version: refused, naming the versions that are supported.
      const backwards = yield* Effect.flip(fleet.client.runs.replaceApplication({ path: { application: "payments-api" }, payload: { environment: "staging", targetOs: "ubuntu-18.04" } }))
      expect(backwards._tag === "InvalidInput" && backwards.issues.map((issue) => [issue.path.join("."), issue.message])).toEqual([
        ["targetOs", "ubuntu-18.04 is itself deprecated; expected a supported version: ubuntu-22.04, ubuntu-24.04"]
      ])
      const done = yield* waitForRun(fleet, started.id, settledRun)
      expect(done.state).toBe("succeeded")
      expect(done.trigger).toBe("on-demand")
      const staging = yield* fleet.client.vms.listVms({ urlParams: { application: "payments-api", environment: "staging" } })
      expect(staging.items.map((vm) => vm.osVersion)).toEqual(["ubuntu-20.04"])
      const nothing = yield* Effect.flip(fleet.client.runs.replaceApplication({ path: { application: "payments-api" }, payload: { environment: "production" } }))
      expect(nothing._tag).toBe("Conflict")
      expect(nothing.message).toBe("nothing to replace for payments-api in production: none of its 2 live VM(s) is on a deprecated OS version")
      const onTarget = yield* Effect.flip(fleet.client.runs.replaceApplication({ path: { application: "payments-api" }, payload: { environment: "production", targetOs: "ubuntu-24.04" } }))
      expect(onTarget.message).toBe("nothing to replace for payments-api in production: its 2 live VM(s) are on ubuntu-24.04 already")
      const unknown = yield* Effect.flip(fleet.client.runs.replaceApplication({ path: { application: "payments-apx" }, payload: { environment: "production" } }))
      expect([unknown._tag, unknown.message]).toEqual(["Conflict", "nothing to replace: payments-apx has no live VM in production"])
      // The refused replacements (busy, nothing to replace) saved no plan: only the one that ran is there.
      const plans = yield* fleet.client.plans.listPlans({ urlParams: {} })
      expect(plans.items.map((plan) => plan.name)).toEqual(["replace-payments-api-production"])
    }))

  it.scopedLive("of two replacements of a fleet at the same instant, the one refused leaves no plan behind", () =>
    Effect.gen(function* () {
      const fleet = yield* startFleet({ simulator: { durationMs: { create: 50, destroy: 30, check: 10 } } })
      yield* fleetOf(fleet, "payments-api", "production", "java", 1)
      // A lock on the fleets a run holds: both replacements pass the busy check (a read) and wait at taking the fleet.
      const release = yield* Deferred.make<void>()
      const locked = yield* Deferred.make<void>()
      yield* Effect.forkScoped(fleet.use(Effect.flatMap(SqlClient.SqlClient, (sql) =>
        sql.withTransaction(
          sql`lock table run_fleets in exclusive mode`.pipe(Effect.zipRight(Deferred.succeed(locked, undefined)), Effect.zipRight(Deferred.await(release)))
        )
      )).pipe(Effect.orDie))
      yield* Deferred.await(locked)
      const replace = Effect.either(fleet.client.runs.replaceApplication({ path: { application: "payments-api" }, payload: { environment: "production" } }))
      const both = yield* Effect.fork(Effect.all([replace, replace], { concurrency: 2 }))
      const waiting = fleet.use(Effect.flatMap(SqlClient.SqlClient, (sql) =>
        sql<{ count: number }>`
          select count(*)::int as count from pg_locks
          where not granted and relation = 'run_fleets'::regclass
            and database = (select oid from pg_database where datname = current_database())`
      )).pipe(Effect.orDie)
      yield* waitUntil(waiting, ([row]) => row?.count === 2, "both replacements to wait for the fleet", fast)
      yield* Deferred.succeed(release, undefined)
      const outcomes = yield* Fiber.join(both)
      const started = outcomes.filter(Either.isRight)
      const refused = outcomes.filter(Either.isLeft).map((outcome) => outcome.left)
      expect(started).toHaveLength(1)
      expect(refused.map((error) => error._tag)).toEqual(["Conflict"])
      expect(refused[0]!.message).toMatch(/^fleet \S+ is already in the active run \S+ \(running\)$/)
      const plans = yield* fleet.client.plans.listPlans({ urlParams: {} })
      expect(plans.items).toHaveLength(1)
      const run = yield* waitForRun(fleet, started[0]!.right.id, settledRun)
      expect(run.planId).toBe(plans.items[0]!.id)
      // Logged once committed: the refused one's plan, rolled back, is in no log line.
      const messages = fleet.logs.lines.map((line) => String((JSON.parse(line) as { msg?: unknown }).msg))
      expect(messages.filter((message) => message.startsWith("Saved plan"))).toEqual([])
      expect(messages.filter((message) => message.startsWith("Started run"))).toEqual([
        `Started run ${run.id} replacing payments-api in production for admin@example.com: plan ${run.planId}, 1 step(s) in 1 fleet(s)`
      ])
    }))

  it.scopedLive("holds an approval gate reached while the run is paused: a resume then approves it, and says so", () =>
    Effect.gen(function* () {
      const fleet = yield* startFleet({ simulator: { durationMs: { create: 50, destroy: 30, check: 10 } } })
      yield* fleetOf(fleet, "payments-api", "production", "java", 1)
      yield* fleetOf(fleet, "billing", "production", "java", 1)
      const saved = yield* savePlan(fleet, retirePlan(`
  maxSurge: 1
  canary: { fleets: 1 }
  environmentGate: approval
  bakeTime: 2s`))
      expect(saved.plan.waves.map((wave) => wave.gate)).toEqual(["none", "approval"])
      const started = yield* fleet.client.runs.startRun({ path: { id: saved.id }, payload: {} })
      yield* waitForRun(fleet, started.id, (run) => run.counts.baking === 1)
      yield* fleet.client.runs.pauseRun({ path: { id: started.id } })
      // The canary's step ends while the run is paused by its operator.
      const gated = yield* waitForRun(fleet, started.id, (run) => run.currentWave === 1)
      expect([gated.state, gated.pauseReason, gated.reason]).toEqual(["paused", "approval", "wave 2 of 2 waits for approval (resume the run to approve)"])
      // Waiting for a person: no end to estimate.
      expect(gated.eta).toBeNull()
      expect(gated.counts.pending).toBe(1)
      const resumed = yield* fleet.client.runs.resumeRun({ path: { id: started.id } })
      expect(resumed.reason).toMatch(/^approved by /)
      const done = yield* waitForRun(fleet, started.id, settledRun)
      expect(done.state).toBe("succeeded")
    }))

  it.scopedLive("takes rollbackOnAbort only where the failure budget aborts (an on-demand replacement then aborts on its first failure), and runs no empty plan by hand", () =>
    Effect.gen(function* () {
      const fleet = yield* startFleet({ simulator: { durationMs: { create: 50, destroy: 30, check: 10 } } })
      yield* fleetOf(fleet, "payments-api", "production", "java", 1)
      yield* fleetOf(fleet, "payments-api", "staging", "java", 1)
      const pausing = yield* savePlan(fleet, retirePlan("  maxSurge: 1"))
      expect(pausing.plan.limits.failureBudget.action).toBe("pause")
      const refused = yield* Effect.flip(fleet.client.runs.startRun({ path: { id: pausing.id }, payload: { rollbackOnAbort: true } }))
      expect(refused._tag === "InvalidInput" && refused.issues.map((issue) => [issue.path.join("."), issue.message])).toEqual([[
        "rollbackOnAbort",
        "the plan's failure budget pauses the run (action: pause): it never aborts, so nothing would be rolled back; " +
          "give the plan failureBudget.action: abort to have it aborted and rolled back"
      ]])
      expect((yield* fleet.client.runs.listRuns({ urlParams: {} })).items).toEqual([])
      // A plan that moves nothing is not run by hand either.
      const empty = yield* savePlan(fleet, "name: nothing\nselect:\n  osVersions: [ubuntu-16.04]\n")
      expect(empty.plan.steps).toEqual([])
      const nothing = yield* Effect.flip(fleet.client.runs.startRun({ path: { id: empty.id }, payload: {} }))
      expect([nothing._tag, nothing.message]).toEqual(["Conflict", `plan ${empty.id} (nothing) moves no VM: there is nothing to run (its report says why)`])
      expect((yield* fleet.client.runs.listRuns({ urlParams: {} })).items).toEqual([])

      const started = yield* fleet.client.runs.replaceApplication({ path: { application: "payments-api" }, payload: { environment: "staging", rollbackOnAbort: true } })
      const run = yield* fleet.client.runs.getRun({ path: { id: started.id } })
      expect([run.failureAction, run.allowedFailures, run.rollbackOnAbort]).toEqual(["abort", 0, true])
      yield* waitForRun(fleet, started.id, settledRun)
    }))

  it.scopedLive("takes up a run started or cancelled at once, however long it gathers settled VMs", () =>
    Effect.gen(function* () {
      // Advances for settled VMs at least a minute apart; a look at the runs every minute at most.
      const fleet = yield* startFleet({ settings: { FLEET_EXECUTOR_BATCH: "1 minute", FLEET_EXECUTOR_INTERVAL: "1 minute" } })
      // These VMs settling has the executor gathering for a minute when the run starts.
      yield* fleetOf(fleet, "payments-api", "production", "java", 3)
      const saved = yield* savePlan(fleet, retirePlan("  maxSurge: 1\n  maxInFlight: 1"))
      const prompt = { ...fast, timeout: "15 seconds" } as const
      const started = yield* fleet.client.runs.startRun({ path: { id: saved.id }, payload: {} })
      yield* waitUntil(fleet.client.runs.getRun({ path: { id: started.id } }), (run) => run.counts.pending < 3, `run ${started.id} to start`, prompt)
      yield* fleet.client.runs.cancelRun({ path: { id: started.id } })
      const cancelled = yield* waitUntil(fleet.client.runs.getRun({ path: { id: started.id } }), (run) => run.counts.pending === 0, `run ${started.id} to cancel its pending steps`, prompt)
      expect(cancelled.counts.cancelled).toBeGreaterThan(0)
    }))

  it.scopedLive("estimates a run's end no sooner than the end of the bake under way; cancelled, the run holds its fleet until then", () =>
    Effect.gen(function* () {
      const fleet = yield* startFleet({ simulator: { durationMs: { create: 50, destroy: 30, check: 10 } } })
      yield* fleetOf(fleet, "payments-api", "production", "java", 1)
      const saved = yield* savePlan(fleet, retirePlan("  bakeTime: 10m"))
      const started = yield* fleet.client.runs.startRun({ path: { id: saved.id }, payload: {} })
      const baking = yield* waitForRun(fleet, started.id, (run) => run.counts.baking === 1)
      // No step has finished: there is no pace yet, but the bake says when the step can end at the soonest.
      expect(baking.eta).not.toBeNull()
      expect(baking.eta!.getTime()).toBeGreaterThan(Date.now() + 9 * 60_000)

      // Cancelled, it holds its fleet until that bake ends, and a refusal says so.
      const cancelling = yield* fleet.client.runs.cancelRun({ path: { id: started.id } })
      expect(cancelling.state).toBe("cancelling")
      const held = yield* Effect.flip(fleet.client.runs.replaceApplication({ path: { application: "payments-api" }, payload: { environment: "production" } }))
      expect(held.message).toBe(
        `fleet payments-api/production/java is still held by run ${started.id}, which is cancelling: ` +
          `it lets its fleets go once its steps under way have finished (fleet runs watch ${started.id})`
      )
    }))

  it.scopedLive("pauses when the failure budget is spent", () =>
    Effect.gen(function* () {
      const fleet = yield* startFleet({ simulator: { durationMs: { create: 100, destroy: 30, check: 10 } } })
      yield* fleetOf(fleet, "payments-api", "production", "java", 4)
      yield* fleet.simulator.configure({ executionFailureRate: 1 })
      const saved = yield* savePlan(fleet, retirePlan("  maxSurge: 1\n  failureBudget: { max: 0, action: pause }"))
      const started = yield* fleet.client.runs.startRun({ path: { id: saved.id }, payload: {} })
      const paused = yield* waitForRun(fleet, started.id, (run) => run.state === "paused")
      expect(paused.pauseReason).toBe("failure-budget")
      expect(paused.failures).toBe(1)
      expect(paused.recentFailures[0]!.reason).toMatch(/failed/)
      yield* fleet.client.runs.cancelRun({ path: { id: started.id } })
      yield* waitForRun(fleet, started.id, settledRun)

    }))

  it.scopedLive("aborts at the failure budget and rolls back: replacements removed, old VMs kept", () =>
    Effect.gen(function* () {
      // Without the readiness proc in proctor, every readiness check fails.
      const fleet = yield* startFleet({ simulator: { durationMs: { create: 100, destroy: 30, check: 10 } }, withoutProcs: ["check-vm-health"] })
      yield* fleetOf(fleet, "search-api", "production", "go", 3)
      const abort = yield* savePlan(fleet, retirePlan("  maxSurge: 3\n  failureBudget: { max: 0, action: abort }"))
      const started = yield* fleet.client.runs.startRun({ path: { id: abort.id }, payload: { rollbackOnAbort: true } })
      const aborted = yield* waitForRun(fleet, started.id, settledRun)
      expect(aborted.state).toBe("aborted")
      expect(aborted.failures).toBeGreaterThanOrEqual(1)
      expect(aborted.counts.rolled_back).toBe(3)
      const vms = yield* fleet.client.vms.listVms({ urlParams: { application: "search-api", limit: 100 } })
      const live = vms.items.filter((vm) => vm.state !== "decommissioned")
      expect(live.map((vm) => vm.osVersion)).toEqual(["ubuntu-20.04", "ubuntu-20.04", "ubuntu-20.04"])
      expect(vms.items.filter((vm) => vm.osVersion === "ubuntu-24.04" && vm.state === "decommissioned")).toHaveLength(3)
    }))

  it.scopedLive("rolling back, cancels the swaps of steps still creating: their old VMs stay", () =>
    Effect.gen(function* () {
      // No readiness proc and no bake: each replacement is written with its old VM's decommission, waiting.
      // Proctor lacks the python create proc, so the python step fails at once, while the go steps
      // are still creating; at a budget of 0 that aborts the run.
      const fleet = yield* startFleet({
        simulator: { durationMs: { create: 400, destroy: 30, check: 10 } },
        withoutReadinessProc: true,
        withoutProcs: ["create-vm-python"]
      })
      const go = yield* fleetOf(fleet, "search-api", "production", "go", 2)
      yield* fleet.use(insertVms([{
        id: randomUUID(), name: "ledger-prd-python-u2004-aaaaaa", application: "ledger", environment: "production", stack: "python",
        osVersion: "ubuntu-20.04", machineType: "e2-small", state: "ready"
      } as InventoryVm], { createdBy: "test", reason: "an old VM" }))
      const saved = yield* savePlan(fleet, retirePlan("  maxSurge: 2\n  maxFleetsInParallel: 2\n  failureBudget: { max: 0, action: abort }"))
      expect(saved.plan.totals.steps).toBe(3)
      const started = yield* fleet.client.runs.startRun({ path: { id: saved.id }, payload: { rollbackOnAbort: true } })
      const aborted = yield* waitForRun(fleet, started.id, settledRun)
      expect(aborted.state).toBe("aborted")
      expect(aborted.counts).toMatchObject({ failed: 1, rolled_back: 2 })
      expect(aborted.reason).toBe("aborted after 1 failed step(s)")

      // The go fleet's old VMs serve on; their replacements came up and went again.
      for (const vm of go) expect((yield* fleet.client.vms.getVm({ path: { id: VmId.make(vm.id) } })).state).toBe("ready")
      const sql = yield* fleet.use(SqlClient.SqlClient)
      const swaps = yield* fleet.use(sql<{ vmName: string; state: string }>`
        select v.name as vm_name, e.state from executions e join vms v on v.id = e.vm_id
        where e.after_vm_id is not null order by v.name`)
      expect(swaps).toEqual([
        { vmName: "ledger-prd-python-u2004-aaaaaa", state: "cancelled" },
        ...go.map((vm) => ({ vmName: vm.name, state: "cancelled" })).sort((a, b) => a.vmName.localeCompare(b.vmName))
      ])
    }))

  it.scopedLive("stops firing a schedule when a newer plan of its name has none", () =>
    Effect.gen(function* () {
      const fleet = yield* startFleet({ simulator: { durationMs: { create: 50, destroy: 20, check: 10 } } })
      yield* fleetOf(fleet, "payments-api", "production", "java", 1)
      yield* savePlan(fleet, nightly(everyMinute))
      yield* savePlan(fleet, nightly())
      yield* savedEarlier(fleet)
      yield* schedulerTick(fleet)
      expect((yield* fleet.client.runs.listRuns({ urlParams: {} })).items).toEqual([])
    }))

  it.scopedLive("does not run a fire from before the plan was saved: a plan saved inside an open window waits for the next", () =>
    Effect.gen(function* () {
      const fleet = yield* startFleet({ simulator: { durationMs: { create: 50, destroy: 20, check: 10 } } })
      yield* fleetOf(fleet, "payments-api", "production", "java", 1)
      yield* savePlan(fleet, nightly(everyMinute))
      const tick = schedulerTick(fleet)
      // Saved after this minute's fire, inside its window: nothing yet.
      yield* tick
      expect((yield* fleet.client.runs.listRuns({ urlParams: {} })).items).toEqual([])
      // The same plan, had it been saved before that fire: it runs.
      yield* savedEarlier(fleet)
      yield* tick
      expect((yield* fleet.client.runs.listRuns({ urlParams: {} })).items.map((run) => run.trigger)).toEqual(["schedule"])
    }))

  it.scopedLive("runs a scheduled plan once per fire, with its report stored", () =>
    Effect.gen(function* () {
      const fleet = yield* startFleet({ simulator: { durationMs: { create: 50, destroy: 20, check: 10 } } })
      yield* fleetOf(fleet, "payments-api", "production", "java", 2)
      const saved = yield* savePlan(fleet, nightly(everyMinute))
      yield* savedEarlier(fleet)
      yield* schedulerTick(fleet)
      yield* schedulerTick(fleet)
      const runs = (yield* fleet.client.runs.listRuns({ urlParams: {} })).items.filter((run) => run.planId === (saved.id as PlanId))
      expect(runs).toHaveLength(1)
      expect(runs[0]!.trigger).toBe("schedule")
      expect(runs[0]!.fireAt).not.toBeNull()
      expect(runs[0]!.windowEndsAt!.getTime() - runs[0]!.fireAt!.getTime()).toBe(3_600_000)
      const done = yield* waitForRun(fleet, runs[0]!.id, settledRun)
      expect(done.state).toBe("succeeded")
      const [report] = yield* fleet.use(Effect.flatMap(SqlClient.SqlClient, (sql) => sql<{ report: string }>`select report from runs where id = ${done.id}`))
      expect(report!.report).toContain("payments-api")

      // The plan the run executed, as recomputed when it fired, and the report stored with it.
      const executed = yield* fleet.client.runs.getRunPlan({ path: { id: done.id }, urlParams: {} })
      expect(executed.name).toBe("nightly")
      expect(executed.steps).toHaveLength(2)
      expect(executed.fleets.map((moving) => moving.application)).toEqual(["payments-api"])
      const fetchText = (path: string) =>
        Effect.promise(async () => {
          const response = await fetch(`${fleet.baseUrl}${path}`, { headers: { authorization: `Bearer ${fleet.token}` } })
          return { status: response.status, contentType: response.headers.get("content-type"), text: await response.text() }
        })
      const markdown = yield* fetchText(`/v1/runs/${done.id}/plan?format=markdown`)
      expect(markdown.status).toBe(200)
      expect(markdown.contentType).toContain("text/markdown")
      expect(markdown.text).toBe(report!.report)
      const html = yield* fetchText(`/v1/runs/${done.id}/plan?format=html`)
      expect(html.contentType).toContain("text/html")
      expect(html.text).toContain("payments-api")
      expect((yield* fetchText(`/v1/runs/${done.id}/plan?format=pdf`)).status).toBe(400)
      expect((yield* fetchText("/v1/runs/01a215d9-0000-7000-8000-000000000000/plan")).status).toBe(404)
    }))

  it.scopedLive("pauses a scheduled run when its window closes and resumes it in the next window", () =>
    Effect.gen(function* () {
      const fleet = yield* startFleet({ simulator: { durationMs: { create: 300, destroy: 20, check: 10 } } })
      yield* fleetOf(fleet, "payments-api", "production", "java", 4)
      yield* savePlan(fleet, nightly(`strategy:
  maxSurge: 1
  maxInFlight: 1
${everyMinute}`))
      const sql = (query: (sql: SqlClient.SqlClient) => Effect.Effect<unknown, unknown>) =>
        fleet.use(Effect.flatMap(SqlClient.SqlClient, query)).pipe(Effect.orDie)
      const tick = schedulerTick(fleet)
      yield* savedEarlier(fleet)
      yield* tick
      const [run] = (yield* fleet.client.runs.listRuns({ urlParams: {} })).items
      // The window closes (its end moved to the past, as time would).
      yield* sql((sql) => sql`update runs set window_ends_at = now() - interval '1 second' where id = ${run!.id}`)
      const paused = yield* waitForRun(fleet, run!.id, (view) => view.state === "paused")
      expect(paused.pauseReason).toBe("window")
      const startedWhilePaused = paused.steps - paused.counts.pending
      const quiet = yield* waitForRun(fleet, run!.id, (view) => view.counts.creating + view.counts.decommissioning === 0)
      expect(quiet.steps - quiet.counts.pending).toBe(startedWhilePaused)
      // The next fire: the run belongs to the previous one, so this fire resumes it rather than starting another.
      yield* sql((sql) => sql`update runs set fire_at = fire_at - interval '1 minute' where id = ${run!.id}`)
      yield* tick
      const resumed = yield* fleet.client.runs.getRun({ path: { id: run!.id } })
      expect(resumed.state).toBe("running")
      expect(resumed.windowEndsAt!.getTime()).toBeGreaterThan(Date.now())
      const done = yield* waitForRun(fleet, run!.id, settledRun)
      expect(done.state).toBe("succeeded")
      expect((yield* fleet.client.runs.listRuns({ urlParams: {} })).items).toHaveLength(1)
    }))
})
