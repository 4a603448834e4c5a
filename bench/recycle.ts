/**
 * `npm run bench:recycle`: how close one controller runs a rolling replace to the limits it is given.
 *
 * 1,000 VM replacements (20 fleets of 50 on ubuntu-20.04, all in production, over the java, go,
 * python and node stacks) moved to ubuntu-24.04 with `maxInFlight: 50`, against the proctor
 * simulator in this process (response latency 0; a create takes 200 ms, a decommission 100 ms, a
 * readiness check BENCH_CHECK_MS), on a real PostgreSQL: DATABASE_URL, else TEST_DATABASE_URL,
 * else postgres://postgres@127.0.0.1:5432/postgres. The benchmark creates a database of its own
 * there and drops it afterwards. The controller is the real `fleet serve` in a child process, so
 * its CPU time and memory are its own (read from /proc/<pid>).
 *
 * Limits that must not bind: one environment (one wave, no gate), `maxSurge: 100%` (each fleet may
 * run all its 50 steps at once), `maxFleetsInParallel: 20` (every fleet), bake 0, no canary.
 * So only maxInFlight binds, and the ideal is what a scheduler with zero overhead would take:
 * every step holds one of the maxInFlight execution slots for the duration of each execution it
 * runs (the executor counts a step in `creating`, `checking` and `decommissioning` against
 * maxInFlight, and nothing in `baking`), so
 *
 *     ideal = max(N × (create + check + destroy) / maxInFlight, create + check + destroy)
 *
 * where `check` is the readiness check's duration, or 0 when the catalog has no readiness proc.
 * (The executor counts a step against maxInFlight from the moment it writes the step's execution,
 * before proctor hears of it, until it has seen the execution end: every handoff between proctor,
 * the reconciler and the executor is slot time, and is what the ratio measures. Rolling back also
 * counts, but no step rolls back here. With no readiness proc and bake 0, a step's decommission is
 * written with its replacement and started by the reconciler as it records the replacement ready,
 * and the next step is queued behind it, its create started as the reconciler records the old VM
 * decommissioned: their "written" time below is when they started, and a step's slot time runs
 * from its create's start to its decommission recorded.)
 * By default the benchmark uses the shipped catalog minus its readiness proc (FLEET_CATALOG, a
 * documented setting; the readiness proc is optional), so the executor runs create → decommission
 * and the ideal is 1000 × 0.3 s / 50 = 6 s. BENCH_READINESS=1 keeps the readiness proc (check
 * BENCH_CHECK_MS, 50 ms), and the ideal grows by N × check / maxInFlight.
 *
 * The controller polls a proc by its typical run time once it has seen a few of its executions
 * finish; before that, FLEET_POLL_INITIAL applies (1 s by default, 100 ms here, as for any
 * proctor whose executions take a fraction of a second).
 *
 * A controller runs for days, so the measured run comes after a warm-up run in the same controller
 * (BENCH_WARMUP replacements, as many as the measured run by default, in four staging fleets; 0
 * measures a controller fresh from its start): the measured run does not pay for the JIT compiling
 * the controller's code, for its connections being opened and its statements prepared, or for the
 * first executions of each proc being polled before the controller knows how long they take.
 *
 * The CPU floor line divides the CPU that the run took (the controller, its PostgreSQL backends,
 * the simulator with this driver) by the cores: no scheduler could finish faster on this machine
 * with this code, so a floor above the target says the target needs less CPU, not better overlap.
 *
 * The old VMs are written straight into the database (as `fleet demo seed` does): the simulator
 * finishes a decommission of a VM it does not know like any other.
 *
 * Knobs (environment): BENCH_STEPS (1000), BENCH_FLEETS (20), BENCH_MAX_IN_FLIGHT (50), BENCH_WARMUP (BENCH_STEPS),
 * BENCH_CREATE_MS (200), BENCH_DESTROY_MS (100), BENCH_READINESS (0), BENCH_CHECK_MS (50),
 * BENCH_LOG_LEVEL (Info), BENCH_NODE_ARGS (flags for the controller's node, after the Docker
 * image's, e.g. "--max-old-space-size=160"), BENCH_CPU_PROF=<dir>, BENCH_OUTPUT=<file> (the controller's
 * output, copied there at the end), BENCH_STRICT=1 (exit 1 when a target is missed).
 * Any FLEET_* or DATABASE_POOL_SIZE variable set here is passed to the controller.
 */
import { NodeRuntime } from "@effect/platform-node"
import { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import { randomUUID } from "node:crypto"
import { mkdtempSync, writeFileSync } from "node:fs"
import { availableParallelism, tmpdir } from "node:os"
import { join } from "node:path"
import { defaultCatalogPath } from "../src/catalog/Catalog.js"
import { insertVms } from "../src/demo/Seed.js"
import type { InventoryVm } from "../src/planner/Domain.js"
import { vmName } from "../src/vms/Naming.js"
import { adminToken } from "../test/crash/ChildController.js"
import { catalogWithoutReadiness, readRun, recyclePlan, savePlan, startRun, startSimulator, waitFor } from "../test/executor-crash/support.js"
import {
  backendCpuSeconds,
  backendCpuSecondsBetween,
  committedTransactions,
  controllerSettingsFromEnv,
  cpuProfileNodeArgs,
  fixed,
  machineCpuTicks,
  mainThreadCpuSeconds,
  mean,
  percentile,
  processCpuSeconds,
  processMemoryMb,
  productionNodeFlags,
  scratchDatabase,
  serverUrl,
  spawnBundledController,
  verdict
} from "./support.js"

const env = process.env
const steps = Number(env["BENCH_STEPS"] ?? 1000)
const fleets = Number(env["BENCH_FLEETS"] ?? 20)
const maxInFlight = Number(env["BENCH_MAX_IN_FLIGHT"] ?? 50)
const createMs = Number(env["BENCH_CREATE_MS"] ?? 200)
const destroyMs = Number(env["BENCH_DESTROY_MS"] ?? 100)
const readiness = env["BENCH_READINESS"] === "1"
const checkMs = readiness ? Number(env["BENCH_CHECK_MS"] ?? 50) : 0
const logLevel = env["BENCH_LOG_LEVEL"] ?? "Info"
const cpuProfileDir = env["BENCH_CPU_PROF"]
const strict = env["BENCH_STRICT"] === "1"
const outputFile = env["BENCH_OUTPUT"]
const warmup = Number(env["BENCH_WARMUP"] ?? steps)
const nodeArgs = (env["BENCH_NODE_ARGS"] ?? "").split(" ").filter((arg) => arg !== "")

const targets = { ratio: 1.15, peakRssMb: 300 }

/** The shipped catalog, without its readiness proc unless BENCH_READINESS=1; the path of the file used. */
const catalogFile = (directory: string): string => readiness ? defaultCatalogPath : catalogWithoutReadiness(directory)

const stacks = ["java", "go", "python", "node"] as const

const program = Effect.gen(function* () {
  const { name: database, url: databaseUrl, sql } = yield* scratchDatabase
  const token = yield* adminToken(databaseUrl, "bench-admin")

  // The old fleets, straight into the inventory: the measured run's in production, the warm-up's in staging.
  const oldFleets = (count: number, fleetCount: number, environment: "production" | "staging", prefix: string): Array<InventoryVm> => {
    const perFleet = Math.ceil(count / fleetCount)
    const vms: Array<InventoryVm> = []
    for (let fleet = 0; fleet < fleetCount; fleet++) {
      const application = `${prefix}-${String(fleet).padStart(2, "0")}`
      const stack = stacks[fleet % stacks.length]!
      for (let index = 0; index < perFleet && vms.length < count; index++) {
        vms.push({
          id: randomUUID(),
          name: vmName(
            { application, environmentShort: environment === "production" ? "prd" : "stg", stack, osShort: "u2004" },
            `${String(fleet).padStart(2, "0")}${String(index).padStart(4, "0")}`
          ),
          application,
          environment,
          stack,
          osVersion: "ubuntu-20.04",
          machineType: "e2-small",
          state: "ready"
        } as InventoryVm)
      }
    }
    return vms
  }
  const old = [...oldFleets(steps, fleets, "production", "bench"), ...oldFleets(warmup, stacks.length, "staging", "warmup")]
  yield* insertVms(old, { createdBy: "bench-seed", reason: "bench:recycle old fleet" }).pipe(
    Effect.provideService(SqlClient.SqlClient, sql),
    sql.withTransaction,
    Effect.orDie
  )

  const workDirectory = mkdtempSync(join(tmpdir(), "fleet-bench-recycle-"))
  const catalogPath = catalogFile(workDirectory)
  const simulator = yield* startSimulator({
    responseLatencyMs: 0,
    durationMs: { create: createMs, destroy: destroyMs, check: checkMs }
  })

  const passThrough = controllerSettingsFromEnv()
  // Settings beyond the defaults, all documented ones: the first status poll of a proc the
  // controller has not yet seen finish (after that it polls by the proc's typical run time).
  const settings = { FLEET_POLL_INITIAL: "100 millis", ...passThrough }
  const controller = yield* spawnBundledController({
    settings: { LOG_LEVEL: logLevel, FLEET_CATALOG: catalogPath, ...settings },
    databaseUrl,
    proctorUrl: simulator.url,
    logFile: join(workDirectory, "controller.log"),
    nodeArgs: [...nodeArgs, ...cpuProfileNodeArgs(cpuProfileDir)]
  })
  const pid = controller.pid

  const strategy = (environment: string) => [
    "maxSurge: 100%",
    "maxUnavailable: 0",
    `maxFleetsInParallel: ${fleets}`,
    `maxInFlight: ${maxInFlight}`,
    `environmentOrder: [${environment}]`,
    "bakeTime: 0s",
    "failureBudget: { max: 0, action: pause }"
  ]
  const runToTheEnd = (planId: string) =>
    Effect.gen(function* () {
      const run = yield* startRun(controller.baseUrl, token, planId)
      const finished = yield* waitFor(readRun(sql, run.id), (row) => row.finishedAt !== null || row.state === "paused", `run ${run.id} to finish`, {
        timeoutMs: 300_000,
        everyMs: 20
      })
      if (finished.state !== "succeeded") return yield* Effect.dieMessage(`run ${run.id} ended ${finished.state}, not succeeded`)
      return { run, finished }
    })

  // A controller runs for days: the measured run should not pay for its JIT compilation and first lookups.
  if (warmup > 0) {
    const warmupPlan = yield* savePlan(controller.baseUrl, token, recyclePlan("bench-warmup", strategy("staging"), ["environments: { include: [staging] }"]))
    yield* runToTheEnd(warmupPlan.id)
  }

  const plan = yield* savePlan(controller.baseUrl, token, recyclePlan("bench-recycle", strategy("production"), ["environments: { include: [production] }"]))
  if (plan.steps !== steps) return yield* Effect.dieMessage(`the plan has ${plan.steps} steps, expected ${steps}`)

  const commitsAtStart = yield* committedTransactions(sql, database)
  // The PostgreSQL backends serving the benchmark's database: the controller's pool and this process's.
  const postgresAtStart = yield* backendCpuSeconds(sql, database)
  const statsBefore = yield* simulator.stats
  const cpuAtStart = processCpuSeconds(pid)
  const mainThreadAtStart = mainThreadCpuSeconds(pid)
  const machineAtStart = machineCpuTicks()
  const ownAtStart = process.cpuUsage()
  const { finished, run } = yield* runToTheEnd(plan.id)
  const cpuAtEnd = processCpuSeconds(pid)
  const mainThread = mainThreadCpuSeconds(pid) - mainThreadAtStart
  const machineAtEnd = machineCpuTicks()
  const own = process.cpuUsage(ownAtStart)
  const postgresAtEnd = yield* backendCpuSeconds(sql, database)
  const postgresSeconds = backendCpuSecondsBetween(postgresAtStart, postgresAtEnd)
  const peakMb = processMemoryMb(pid, "VmHWM")
  const stats = yield* simulator.stats

  // Where the time went: each step's handoffs, from the database's times and the ledger's.
  const ledger = yield* simulator.ledger
  const proctorTimes = new Map<string, { submittedAt: number; finishedAt: number }>()
  for (const execution of ledger.executions) {
    const key = `${execution.kind === "destroy" ? "decommission" : execution.kind} ${execution.vmName}`
    if (!proctorTimes.has(key) && execution.finishedAt !== null) proctorTimes.set(key, { submittedAt: execution.submittedAt, finishedAt: execution.finishedAt })
  }
  const rows = yield* sql<{
    index: number
    kind: string
    vmName: string
    createdMs: number
    finishedMs: number
    stepFinishedMs: number
    polls: number
  }>`
    select s.index, e.kind, v.name as vm_name, e.polls,
           -- An execution written ahead (a swap, a queued step's create) counts from when it started.
           extract(epoch from coalesce(case when e.after_vm_id is not null or e.after_execution_id is not null or s.after_step_id is not null
                                            or exists (select 1 from events q where q.vm_id = e.vm_id and q.kind = 'step.state' and q.to_state = 'queued')
                                            then started.at end, e.created_at)) * 1000 as created_ms,
           extract(epoch from e.finished_at) * 1000 as finished_ms,
           extract(epoch from s.finished_at) * 1000 as step_finished_ms
    from steps s
    join executions e on e.vm_id = s.new_vm_id or (e.vm_id = s.old_vm_id and e.kind = 'decommission')
    join vms v on v.id = e.vm_id
    -- Events have no index by execution: one pass over them, not one per execution.
    left join (select execution_id, min(at) as at from events where execution_id is not null group by execution_id) started
      on started.execution_id = e.id
    where s.run_id = ${run.id}
    order by s.index, created_ms`.pipe(Effect.orDie)
  const phases = new Map<string, Array<number>>()
  const add = (name: string, value: number) => {
    const list = phases.get(name) ?? []
    list.push(value)
    phases.set(name, list)
  }
  // A step holds its slot from its create's start (written, or started behind the step ahead) to its last execution recorded.
  const slotOf = new Map<number, { from: number; to: number }>()
  let previousEnd: number | undefined
  let previousStep: number | undefined
  for (const row of rows) {
    const proctor = proctorTimes.get(`${row.kind} ${row.vmName}`)
    if (proctor === undefined) continue
    const created = Number(row.createdMs)
    const slot = slotOf.get(row.index)
    slotOf.set(row.index, { from: Math.min(slot?.from ?? created, created), to: Math.max(slot?.to ?? 0, Number(row.finishedMs)) })
    if (previousStep === row.index && previousEnd !== undefined) add(`previous execution recorded → ${row.kind} written/started`, created - previousEnd)
    add(`${row.kind}: written/started → submitted to proctor`, proctor.submittedAt - created)
    add(`${row.kind}: proctor ran`, proctor.finishedAt - proctor.submittedAt)
    add(`${row.kind}: proctor finished → recorded`, Number(row.finishedMs) - proctor.finishedAt)
    add(`${row.kind}: status polls`, row.polls)
    previousEnd = Number(row.finishedMs)
    previousStep = row.index
    if (row.kind === "decommission") add("executor: decommission recorded → step done", Number(row.stepFinishedMs) - previousEnd)
  }

  yield* controller.stop("SIGTERM").pipe(Effect.timeout("30 seconds"), Effect.option)
  // The statistics collector counts a backend's commits when it goes idle, at most a second late.
  yield* Effect.sleep("1100 millis")
  const commits = (yield* committedTransactions(sql, database)) - commitsAtStart
  if (outputFile !== undefined) writeFileSync(outputFile, controller.output())

  const makespan = (finished.finishedAt!.getTime() - finished.createdAt.getTime()) / 1000
  const perStep = (createMs + checkMs + destroyMs) / 1000
  const ideal = Math.max((steps * perStep) / maxInFlight, perStep)
  const ratio = makespan / ideal
  const submissions = stats.submit.accepted + stats.submit.lost - statsBefore.submit.accepted - statsBefore.submit.lost
  const polls = stats.status.ok + stats.status.notFound - statsBefore.status.ok - statsBefore.status.notFound
  const cpu = cpuAtEnd - cpuAtStart
  const stepSlots = [...slotOf.values()].map(({ from, to }) => to - from)
  const slotSeconds = stepSlots.reduce((a, b) => a + b, 0) / 1000
  const firstStart = Math.min(...[...slotOf.values()].map(({ from }) => from))
  const lastEnd = Math.max(...[...slotOf.values()].map(({ to }) => to))
  const ownSeconds = (own.user + own.system) / 1e6
  const oursSeconds = cpu + postgresSeconds + ownSeconds
  const cores = availableParallelism()

  const lines = [
    `fleet bench:recycle: ${steps} replacements in ${fleets} fleets (one wave), maxInFlight ${maxInFlight}, ` +
      `maxFleetsInParallel ${fleets}, maxSurge 100%, bake 0; proctor simulator in-process (latency 0; create ${createMs} ms, ` +
      `${readiness ? `readiness check ${checkMs} ms, ` : "no readiness proc, "}decommission ${destroyMs} ms); PostgreSQL ${new URL(serverUrl).host}/${database}; ` +
      (warmup > 0 ? `measured after a warm-up run of ${warmup} replacements in the same controller` : "the controller fresh from its start (no warm-up)"),
    `  controller: ${Object.entries(settings).map(([key, value]) => `${key}=${value}`).join(" ")}, node ${[...productionNodeFlags, ...nodeArgs].join(" ")}, ` +
      `LOG_LEVEL=${logLevel}, FLEET_CATALOG=${readiness ? "the shipped catalog" : "the shipped catalog without its readiness proc"}; other settings default`,
    `  ideal = max(N × (create + check + destroy) / maxInFlight, create + check + destroy)` +
      ` = max(${steps} × ${fixed(perStep, 3)} s / ${maxInFlight}, ${fixed(perStep, 3)} s) = ${fixed(ideal)} s`,
    `  makespan (run created → run finished): ${fixed(makespan)} s   ratio ${fixed(ratio, 3)}   (target <= ${targets.ratio}: ${verdict(ratio <= targets.ratio)})`,
    `  status polls per execution: ${fixed(polls / submissions)}   (${polls} polls, ${submissions} submissions)`,
    `  controller CPU seconds per step: ${fixed((cpu / steps) * 1000, 3)} ms   (${fixed(cpu)} s during the run)`,
    `  database: ${fixed(commits / steps, 1)} transactions committed per step (${commits}, this driver's progress queries included); ` +
      `its backends used ${fixed(postgresSeconds)} CPU seconds`,
    `  machine CPU busy ${fixed((100 * (machineAtEnd.busy - machineAtStart.busy)) / Math.max(1, machineAtEnd.total - machineAtStart.total), 0)}% ` +
      `of ${cores} cores during the run; this process (the simulator and the driver) used ${fixed(ownSeconds)} CPU seconds`,
    // What this machine allows this code: the CPU the run took, spread perfectly over the cores.
    `  CPU floor: this run's processes used ${fixed(oursSeconds, 1)} CPU-s, so on ${cores} idle cores no makespan below ${fixed(oursSeconds / cores)} s ` +
      `(ratio ${fixed(oursSeconds / cores / ideal, 2)}); ` +
      `the controller's main thread (JavaScript, the event loop) was busy ${fixed(mainThread)} s of them (ratio ${fixed(mainThread / ideal, 2)})`,
    `  controller peak RSS: ${fixed(peakMb, 1)} MB   (VmHWM; target <= ${targets.peakRssMb}: ${verdict(peakMb <= targets.peakRssMb)})`,
    `  slot use: steps held a maxInFlight slot ${fixed(slotSeconds, 1)} s in all, ${fixed((100 * slotSeconds) / (maxInFlight * makespan), 1)}% ` +
      `of ${maxInFlight} slots × the makespan; a step's slot time p50 ${fixed(percentile(stepSlots, 50), 0)} ms, p95 ${fixed(percentile(stepSlots, 95), 0)} ms ` +
      `(ideal ${fixed(perStep * 1000, 0)} ms)`,
    `  the run's edges: run created → first create started ${fixed(firstStart - finished.createdAt.getTime(), 0)} ms; ` +
      `last execution recorded → run finished ${fixed(finished.finishedAt!.getTime() - lastEnd, 0)} ms`,
    "  where a step's time goes (mean, p50, p95, ms):"
  ]
  for (const [name, values] of phases) {
    lines.push(`    ${name.padEnd(58)} ${fixed(mean(values), 1).padStart(7)} ${fixed(percentile(values, 50), 0).padStart(6)} ${fixed(percentile(values, 95), 0).padStart(6)}`)
  }
  console.log(lines.join("\n"))
  const missed = ratio > targets.ratio || peakMb > targets.peakRssMb
  if (strict && missed) return yield* Effect.fail(new Error("a target was missed"))
}).pipe(Effect.scoped)

NodeRuntime.runMain(program)
