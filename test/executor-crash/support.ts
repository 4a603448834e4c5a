/**
 * Shared by the executor's process-level tests (crash, several controllers, proctor faults) and
 * `bench/recycle.ts`: old fleets, plans and runs over the HTTP API, and the invariants a run must
 * keep, checked against the proctor simulator's ledger.
 */
import { NodeContext } from "@effect/platform-node"
import { type Interval, peakOverlap } from "../support/Intervals.js"
import { SqlClient } from "@effect/sql"
import { Context, Effect, Layer, Redacted } from "effect"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as YAML from "yaml"
import { Catalog, defaultCatalogPath } from "../../src/catalog/Catalog.js"
import { layerFromUrl } from "../../src/db/Database.js"
import { ProctorSimulator, type SimulatorOptions } from "../../src/proctor/Simulator.js"
import type { SimulatorLedger } from "../../src/proctor/SimulatorModel.js"

// ---------------------------------------------------------------------------------------------
// The pieces around a controller process

/** A temporary directory (named `<prefix>XXXXXX`), removed when the scope closes. */
export const scopedTempDirectory = (prefix: string) =>
  Effect.acquireRelease(
    Effect.sync(() => mkdtempSync(join(tmpdir(), prefix))),
    (directory) => Effect.sync(() => rmSync(directory, { recursive: true, force: true }))
  )

/**
 * The shipped catalog without its (optional) readiness proc, written into `directory`; its path,
 * for FLEET_CATALOG. With it and no bake time, a step's old VM is decommissioned by the swap
 * written with its replacement, started when the replacement is recorded ready.
 */
export const catalogWithoutReadiness = (directory: string): string => {
  const spec = YAML.parse(readFileSync(defaultCatalogPath, "utf8")) as { procs: Record<string, unknown> }
  delete spec.procs["readiness"]
  const path = join(directory, "catalog.yaml")
  writeFileSync(path, YAML.stringify(spec))
  return path
}

/** Settings for a controller under test: fast polls, short leases (a killed controller's claims expire fast). */
export const controllerSettings = (overrides: Record<string, string> = {}): Record<string, string> => ({
  FLEET_MODE: "production",
  FLEET_POLL_INITIAL: "100 millis",
  FLEET_POLL_MAX: "300 millis",
  FLEET_RECONCILE_INTERVAL: "100 millis",
  FLEET_EXECUTOR_INTERVAL: "200 millis",
  FLEET_LEASE: "1500 millis",
  FLEET_EXECUTION_DEADLINE: "60 seconds",
  FLEET_SUBMIT_BACKOFF: "20 millis",
  FLEET_SUBMIT_BACKOFF_MAX: "100 millis",
  FLEET_RESUBMIT_DELAY: "200 millis",
  PROCTOR_TIMEOUT: "1 second",
  DATABASE_POOL_SIZE: "5",
  FLEET_RATE_LIMIT: "0",
  LOG_LEVEL: "info",
  ...overrides
})

/** The proctor simulator in this process, with the catalog's procs. */
export const startSimulator = (options: Partial<SimulatorOptions> = {}) =>
  Effect.gen(function* () {
    const catalog = yield* Effect.provide(Catalog, Catalog.layer.pipe(Layer.provide(NodeContext.layer)))
    return yield* ProctorSimulator.start({ procs: ProctorSimulator.procsFromCatalog(catalog), ...options })
  }).pipe(Effect.orDie)

/** A SqlClient on `url` for as long as the scope lasts. */
export const sqlClient = (url: string, connections = 2) =>
  Layer.build(layerFromUrl(Redacted.make(url), connections)).pipe(
    Effect.map((context) => Context.get(context, SqlClient.SqlClient)),
    Effect.orDie
  )

// ---------------------------------------------------------------------------------------------
// HTTP

export interface Answer {
  readonly status: number
  readonly body: unknown
}

/** A request to the fleet API with a bearer token; JSON bodies are sent as JSON, strings as `contentType`. */
export const call = (
  url: string,
  token: string,
  init: { readonly method?: string; readonly body?: unknown; readonly contentType?: string } = {}
): Effect.Effect<Answer> =>
  Effect.promise(async () => {
    const headers: Record<string, string> = { authorization: `Bearer ${token}` }
    let body: string | undefined
    if (typeof init.body === "string") {
      body = init.body
      headers["content-type"] = init.contentType ?? "application/yaml"
    } else if (init.body !== undefined) {
      body = JSON.stringify(init.body)
      headers["content-type"] = "application/json"
    }
    const response = await fetch(url, { method: init.method ?? (body === undefined ? "GET" : "POST"), headers, ...(body === undefined ? {} : { body }) })
    const text = await response.text()
    let parsed: unknown = text
    try {
      parsed = text === "" ? undefined : JSON.parse(text)
    } catch {
      // a text answer
    }
    return { status: response.status, body: parsed }
  })

const expectStatus = (answer: Answer, status: number, what: string) =>
  answer.status === status
    ? Effect.succeed(answer.body as Record<string, unknown>)
    : Effect.dieMessage(`${what}: expected ${status}, got ${answer.status}: ${JSON.stringify(answer.body)}`)

export interface OldFleet {
  readonly application: string
  readonly environment: string
  readonly stack: string
  readonly count: number
}

/** `fleets` fleets of `perFleet` VMs, spread over stacks and environments that have a 24.04 proc. */
export const fleetsOf = (
  prefix: string,
  fleets: number,
  perFleet: number,
  environments: ReadonlyArray<string> = ["staging", "production"]
): ReadonlyArray<OldFleet> => {
  const stacks = ["java", "go", "python", "node"]
  return Array.from({ length: fleets }, (_, index) => ({
    application: `${prefix}-${String(index).padStart(2, "0")}`,
    environment: environments[index % environments.length]!,
    stack: stacks[index % stacks.length]!,
    count: perFleet
  }))
}

/** Requests the old fleets through the API (in requests of at most 50 VMs); the names accepted. */
export const requestFleets = (baseUrl: string, token: string, fleets: ReadonlyArray<OldFleet>, osVersion = "ubuntu-20.04") =>
  Effect.forEach(fleets.flatMap((fleet) => {
    const parts: Array<OldFleet> = []
    for (let left = fleet.count; left > 0; left -= 50) parts.push({ ...fleet, count: Math.min(50, left) })
    return parts
  }), (part) =>
    Effect.gen(function* () {
      const answer = yield* call(`${baseUrl}/v1/vm-requests`, token, {
        body: { ...part, osVersion, machineType: "e2-small", metadata: { test: "executor-crash" } }
      })
      const body = yield* expectStatus(answer, 202, "POST /v1/vm-requests")
      return (body["vms"] as ReadonlyArray<{ readonly name: string }>).map((vm) => vm.name)
    }), { concurrency: 4 }).pipe(Effect.map((names) => names.flat()))

/** Saves a recycle plan over HTTP; its id and step count. */
export const savePlan = (baseUrl: string, token: string, yaml: string) =>
  Effect.gen(function* () {
    const body = yield* expectStatus(yield* call(`${baseUrl}/v1/plans`, token, { body: yaml, contentType: "application/yaml" }), 201, "POST /v1/plans")
    return { id: body["id"] as string, steps: body["steps"] as number, fleetsSkipped: body["fleetsSkipped"] as number }
  })

/** Starts a run of a saved plan over HTTP; its id. */
export const startRun = (baseUrl: string, token: string, planId: string, options: { readonly rollbackOnAbort?: boolean } = {}) =>
  Effect.gen(function* () {
    const body = yield* expectStatus(yield* call(`${baseUrl}/v1/plans/${planId}/runs`, token, { body: options }), 202, "POST /v1/plans/{id}/runs")
    return { id: body["id"] as string, steps: body["steps"] as number }
  })

/** A recycle plan moving ubuntu-20.04 to 24.04 with the given strategy lines (YAML, indented by two). */
export const recyclePlan = (name: string, strategy: ReadonlyArray<string>, select: ReadonlyArray<string> = []) =>
  [
    `name: ${name}`,
    "select:",
    "  osVersions: [ubuntu-20.04]",
    ...select.map((line) => `  ${line}`),
    "target: ubuntu-24.04",
    "strategy:",
    ...strategy.map((line) => `  ${line}`),
    ""
  ].join("\n")

/**
 * The strategy of the SIGKILL and multi-controller runs: surge and unavailability that bind,
 * staging before production, no bake, no failure allowed.
 */
export const bindingStrategy = (limits: { readonly maxFleetsInParallel: number; readonly maxInFlight: number }): ReadonlyArray<string> => [
  "maxSurge: 20%",
  "maxUnavailable: 10%",
  `maxFleetsInParallel: ${limits.maxFleetsInParallel}`,
  `maxInFlight: ${limits.maxInFlight}`,
  "environmentOrder: [staging, production]",
  "bakeTime: 0s",
  "failureBudget: { max: 0, action: pause }"
]

// ---------------------------------------------------------------------------------------------
// Waiting on the database (a condition, polled: the controllers are other processes)

/** Polls `probe` every `everyMs` until `done` holds; dies after `timeoutMs` with `what` and the last value. */
export const waitFor = <A, E, R>(
  probe: Effect.Effect<A, E, R>,
  done: (value: A) => boolean,
  what: string,
  options: { readonly timeoutMs?: number; readonly everyMs?: number } = {}
): Effect.Effect<A, E, R> =>
  Effect.gen(function* () {
    const deadline = Date.now() + (options.timeoutMs ?? 60_000)
    for (;;) {
      const value = yield* probe
      if (done(value)) return value
      if (Date.now() > deadline) return yield* Effect.dieMessage(`timed out waiting for ${what}; last: ${JSON.stringify(value)}`)
      yield* Effect.sleep(options.everyMs ?? 20)
    }
  })

/** Until `count` VMs are ready: the old fleets, requested over HTTP, created by the controllers. */
export const untilReady = (sql: SqlClient.SqlClient, count: number) =>
  waitFor(
    sql<{ ready: number }>`select count(*)::int as ready from vms where state = 'ready'`.pipe(Effect.map((rows) => rows[0]!.ready), Effect.orDie),
    (ready) => ready === count,
    "the old fleets to be ready"
  )

export interface RunRow {
  readonly state: string
  readonly pauseReason: string | null
  readonly reason: string | null
  readonly failures: number
  readonly allowedFailures: number
  readonly createdAt: Date
  readonly finishedAt: Date | null
}

export const readRun = (sql: SqlClient.SqlClient, runId: string) =>
  sql<RunRow>`select state, pause_reason, reason, failures, allowed_failures, created_at, finished_at from runs where id = ${runId}`.pipe(
    Effect.map((rows) => rows[0]!),
    Effect.orDie
  )

export const finishedRunStates: ReadonlyArray<string> = ["succeeded", "failed", "cancelled", "aborted"]

export interface StepRecord {
  readonly index: number
  readonly fleet: string
  readonly fleetConcurrency: number
  readonly oldVmName: string
  readonly newVmName: string | null
  readonly state: string
  readonly reason: string | null
}

export const readSteps = (sql: SqlClient.SqlClient, runId: string) =>
  sql<StepRecord>`
    select index, fleet, fleet_concurrency, old_vm_name, new_vm_name, state, reason
    from steps where run_id = ${runId} order by index`.pipe(Effect.orDie)

/** Steps per state, and executions claimed by a controller and not finished: what a kill cuts. */
export const snapshot = (sql: SqlClient.SqlClient, runId: string) =>
  Effect.gen(function* () {
    const states = yield* sql<{ state: string; count: number }>`
      select state, count(*)::int as count from steps where run_id = ${runId} group by state`
    const claimed = yield* sql<{ kind: string; state: string; count: number }>`
      select kind, state, count(*)::int as count from executions
      where claimed_by is not null and finished_at is null group by kind, state`
    const steps = Object.fromEntries(states.map((row) => [row.state, row.count])) as Record<string, number>
    const underWay = (steps["creating"] ?? 0) + (steps["checking"] ?? 0) + (steps["decommissioning"] ?? 0)
    return { steps, underWay, claimed: claimed.reduce((sum, row) => sum + row.count, 0), claimedDetail: claimed }
  }).pipe(Effect.orDie)

// ---------------------------------------------------------------------------------------------
// A seeded random source (mulberry32), so a failing draw of kill moments can be replayed

export { mulberry32 as seededRandom } from "../../src/common/Random.js"

// ---------------------------------------------------------------------------------------------
// The invariants, from the ledger

export interface LedgerCheckInput {
  readonly ledger: SimulatorLedger
  /** Every step of the run. */
  readonly steps: ReadonlyArray<StepRecord>
  /** The simulator's clock when the run was started: the run's executions are submitted from then on. */
  readonly runStartedAt: number
  /** When it ended: nothing else happens in between, so every execution and VM of that time must be the run's. */
  readonly runFinishedAt?: number
  readonly maxInFlight: number
  readonly maxFleetsInParallel: number
  /** Old VMs the plan skipped (or left out): none of them may be touched. */
  readonly untouched?: ReadonlyArray<string>
  /**
   * When fleet stopped following an execution proctor never finished (a stuck one: the deadline
   * passed), by VM name and proc kind; its work counts until then.
   */
  readonly gaveUpAt?: (vmName: string, kind: string) => number | undefined
}

export interface LedgerReport {
  readonly violations: ReadonlyArray<string>
  readonly peakInFlight: number
  readonly peakFleets: number
  /** The highest share of a fleet's concurrency used at one instant. */
  readonly peakFleetUse: ReadonlyArray<{ readonly fleet: string; readonly peak: number; readonly limit: number }>
  readonly executions: number
  /** VM names with more than one execution of one kind (resubmissions after a lost answer or a kill). */
  readonly resubmitted: number
}

/**
 * Checks a run against the ledger: every finished (`done`) step replaced its old VM exactly once,
 * after its replacement existed; no VM name was created twice; VMs outside the run were not
 * touched; and the limits held at every instant. Work is counted per VM name and kind of proc (a
 * step's create, check or decommission), from its first submission to the last finish of any
 * execution of it: after a kill or a lost answer, fleet submits the same work again under the
 * same name, and the ledger then holds two executions of one piece of work.
 */
export const checkLedger = (input: LedgerCheckInput): LedgerReport => {
  const { ledger, steps } = input
  const violations: Array<string> = []
  const never = Number.MAX_SAFE_INTEGER

  // No VM name created twice, ever.
  const createdCount = new Map<string, number>()
  for (const vm of ledger.vms) createdCount.set(vm.name, (createdCount.get(vm.name) ?? 0) + 1)
  for (const [name, count] of createdCount) if (count > 1) violations.push(`${name} was created ${count} times`)
  const vmByName = new Map(ledger.vms.map((vm) => [vm.name, vm]))

  const oldNames = new Set(steps.map((step) => step.oldVmName))
  const newNames = new Set(steps.flatMap((step) => (step.newVmName === null ? [] : [step.newVmName])))
  const during = (at: number) => at >= input.runStartedAt && at <= (input.runFinishedAt ?? Number.MAX_SAFE_INTEGER)

  // The run's work, per VM name and kind.
  const runExecutions = ledger.executions.filter((execution) =>
    execution.submittedAt >= input.runStartedAt && execution.vmName !== null && (oldNames.has(execution.vmName) || newNames.has(execution.vmName))
  )
  const work = new Map<string, { name: string; kind: string; first: number; last: number; count: number }>()
  for (const execution of runExecutions) {
    const key = `${execution.kind} ${execution.vmName}`
    const end = execution.finishedAt ?? input.gaveUpAt?.(execution.vmName!, execution.kind) ?? never
    const known = work.get(key)
    if (known === undefined) work.set(key, { name: execution.vmName!, kind: execution.kind, first: execution.submittedAt, last: end, count: 1 })
    else {
      known.first = Math.min(known.first, execution.submittedAt)
      known.last = Math.max(known.last, end)
      known.count++
    }
  }
  const workOf = (kind: string, name: string | null) => (name === null ? undefined : work.get(`${kind} ${name}`))

  for (const step of steps) {
    const old = vmByName.get(step.oldVmName)
    const replacement = step.newVmName === null ? undefined : vmByName.get(step.newVmName)
    const label = `step ${step.index} (${step.oldVmName} → ${step.newVmName ?? "none"}, ${step.state})`
    const destroys = runExecutions.filter((execution) => execution.kind === "destroy" && execution.vmName === step.oldVmName)
    const destroyedOld = destroys.filter((execution) => execution.effect === "destroyed").length
    if (step.state === "done") {
      if (replacement === undefined) violations.push(`${label}: its replacement was never created`)
      else if (replacement.destroyedAt !== null) violations.push(`${label}: its replacement was destroyed`)
      if (old === undefined) violations.push(`${label}: the old VM is not in the ledger`)
      else if (old.destroyedAt === null) violations.push(`${label}: the old VM was not destroyed`)
      if (old !== undefined && destroyedOld !== 1) violations.push(`${label}: the old VM was destroyed ${destroyedOld} times`)
    } else if (step.state === "pending" || step.state === "cancelled" || (step.state === "failed" && step.newVmName === null)) {
      if (replacement !== undefined) violations.push(`${label}: a replacement was created for a step that never started`)
      if (destroys.length > 0) violations.push(`${label}: the old VM of a step that never started was decommissioned`)
    }
    // Never a decommission of the old VM before its replacement existed.
    for (const destroy of destroys) {
      if (replacement === undefined || destroy.submittedAt < replacement.createdAt) {
        violations.push(`${label}: the old VM's decommission was submitted at ${destroy.submittedAt}, ` +
          (replacement === undefined ? "and no replacement exists" : `before its replacement was created at ${replacement.createdAt}`))
      }
    }
  }
  // Exactly one replacement per started step, none for anything else, and nothing else touched.
  for (const vm of ledger.vms) {
    if (during(vm.createdAt) && !newNames.has(vm.name)) violations.push(`${vm.name} was created during the run but is no step's replacement`)
  }
  for (const execution of ledger.executions) {
    const name = execution.vmName
    if (!during(execution.submittedAt) || name === null || newNames.has(name)) continue
    if (execution.kind === "create") violations.push(`a create of ${name} was submitted during the run, which is no step's replacement`)
    if (execution.kind === "destroy" && !oldNames.has(name)) violations.push(`${name}, outside the run, was decommissioned during it`)
  }
  for (const name of input.untouched ?? []) {
    if (ledger.executions.some((execution) => execution.vmName === name && during(execution.submittedAt))) violations.push(`${name}, which the run skips, was touched`)
  }

  // maxInFlight: every piece of work from its first submission to its last finish.
  const intervals = [...work.values()].map((entry) => ({ from: entry.first, to: entry.last }))
  const peakInFlight = peakOverlap(intervals)
  if (peakInFlight > input.maxInFlight) violations.push(`${peakInFlight} executions were in flight at once; maxInFlight is ${input.maxInFlight}`)

  // Per fleet: a step is under way from its replacement's first create submission to the end of
  // its last piece of work going forward (its old VM's decommission, or the last thing it did);
  // removing its replacement again (a rollback) is a second stretch, which may come after the step
  // had failed and left its fleet's budget.
  const stepWindows = new Map<string, Array<Interval>>()
  const windowOf = (pieces: ReadonlyArray<{ readonly first: number; readonly last: number } | undefined>) => {
    const present = pieces.filter((piece): piece is NonNullable<typeof piece> => piece !== undefined)
    return present.length === 0 ? [] : [{ from: Math.min(...present.map((piece) => piece.first)), to: Math.max(...present.map((piece) => piece.last)) }]
  }
  for (const step of steps) {
    const windows = [
      ...windowOf([workOf("create", step.newVmName), workOf("check", step.newVmName), workOf("destroy", step.oldVmName)]),
      ...windowOf([workOf("destroy", step.newVmName)])
    ]
    if (windows.length === 0) continue
    const list = stepWindows.get(step.fleet) ?? []
    list.push(...windows)
    stepWindows.set(step.fleet, list)
  }
  const limits = new Map(steps.map((step) => [step.fleet, step.fleetConcurrency]))
  const peakFleetUse = [...stepWindows.entries()].map(([fleet, windows]) => ({ fleet, peak: peakOverlap(windows), limit: limits.get(fleet)! }))
  for (const use of peakFleetUse) {
    if (use.peak > use.limit) violations.push(`fleet ${use.fleet} had ${use.peak} steps under way at once; its concurrency is ${use.limit}`)
  }
  const fleetWindows = [...stepWindows.values()].map((windows) => ({
    from: Math.min(...windows.map((window) => window.from)),
    to: Math.max(...windows.map((window) => window.to))
  }))
  const peakFleets = peakOverlap(fleetWindows)
  if (peakFleets > input.maxFleetsInParallel) violations.push(`${peakFleets} fleets were under way at once; maxFleetsInParallel is ${input.maxFleetsInParallel}`)

  // Capacity: a fleet never has fewer live VMs than before the run (surge only), nor more than its size plus its concurrency.
  const sizes = new Map<string, number>()
  for (const step of steps) sizes.set(step.fleet, (sizes.get(step.fleet) ?? 0) + 1)
  const fleetOf = new Map<string, string>()
  for (const step of steps) {
    fleetOf.set(step.oldVmName, step.fleet)
    if (step.newVmName !== null) fleetOf.set(step.newVmName, step.fleet)
  }
  const failedFleets = new Set(steps.filter((step) => step.state === "failed").map((step) => step.fleet))
  const liveEdges = new Map<string, Array<readonly [number, number]>>()
  for (const vm of ledger.vms) {
    const fleet = fleetOf.get(vm.name)
    if (fleet === undefined) continue
    const edges = liveEdges.get(fleet) ?? []
    edges.push([vm.createdAt, 1])
    if (vm.destroyedAt !== null) edges.push([vm.destroyedAt, -1])
    liveEdges.set(fleet, edges)
  }
  for (const [fleet, edges] of liveEdges) {
    // Creations before removals at one instant: a removal at the instant of a creation is after it.
    edges.sort((a, b) => a[0] - b[0] || b[1] - a[1])
    let live = 0
    let low = Number.MAX_SAFE_INTEGER
    let high = 0
    for (const [at, delta] of edges) {
      live += delta
      if (at >= input.runStartedAt) low = Math.min(low, live)
      high = Math.max(high, live)
    }
    const size = sizes.get(fleet)!
    if (low < size) violations.push(`fleet ${fleet} went down to ${low} live VMs; it had ${size} and may lose none`)
    // A failed step's replacement, when it came up, stays (neither swapped in nor removed) outside the fleet's budget.
    if (!failedFleets.has(fleet) && high > size + limits.get(fleet)!) {
      violations.push(`fleet ${fleet} had ${high} live VMs at once, more than ${size} + ${limits.get(fleet)}`)
    }
  }

  return {
    violations,
    peakInFlight,
    peakFleets,
    peakFleetUse,
    executions: runExecutions.length,
    resubmitted: [...work.values()].filter((entry) => entry.count > 1).length
  }
}

/**
 * When fleet stopped following each VM's executions of each kind (the database's last
 * `finished_at`), in the ledger's terms: for `LedgerCheckInput.gaveUpAt`.
 */
export const followedUntil = (sql: SqlClient.SqlClient) =>
  sql<{ name: string; kind: string; finishedMs: number | null }>`
    select v.name, e.kind, (extract(epoch from max(e.finished_at)) * 1000)::float8 as finished_ms
    from executions e join vms v on v.id = e.vm_id group by v.name, e.kind`.pipe(
    Effect.map((rows) => {
      const byKey = new Map(rows.map((row) => [`${row.kind === "decommission" ? "destroy" : row.kind} ${row.name}`, row.finishedMs ?? undefined]))
      return (vmName: string, kind: string) => byKey.get(`${kind} ${vmName}`)
    }),
    Effect.orDie
  )
