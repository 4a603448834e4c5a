/**
 * `npm run bench:plan`: the planner on 100,000 VMs in 10,000 fleets (generated; every other fleet
 * on a deprecated version), in a fresh PostgreSQL database of its own.
 *
 * This process creates the database (on DATABASE_URL, else TEST_DATABASE_URL, else
 * postgres://postgres@127.0.0.1:5432/postgres), migrates it and inserts the VMs; then a second
 * process, which has done nothing else, measures: the end-to-end dry run (the inventory and the
 * policies read from the database, the recycle plan decoded, the plan built) and the planner core
 * alone (the plan built from an inventory already in memory). A third process does nothing but one
 * dry run, as `fleet plan --dry-run` does: its time is the cold end-to-end figure, and its peak RSS
 * is the memory figure. The database is dropped at the end.
 *
 * Options (environment): BENCH_FLEETS (10000), BENCH_VMS_PER_FLEET (10), BENCH_RUNS (5).
 * Targets on a 2-core machine: core ≤ 1 s, end to end ≤ 3 s, peak RSS ≤ 500 MB.
 */
import { join } from "node:path"
import { NodeContext } from "@effect/platform-node"
import { SqlClient } from "@effect/sql"
import { Effect, Layer, Logger, LogLevel, Redacted } from "effect"
import { spawn } from "node:child_process"
import { cpus, loadavg } from "node:os"
import { readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { Catalog } from "../src/catalog/Catalog.js"
import { layerFromUrl } from "../src/db/Database.js"
import { insertVms } from "../src/demo/Seed.js"
import { generateBenchmarkInventory } from "../src/demo/Synthetic.js"
import { InventoryRepo } from "../src/inventory/Repo.js"
import { Deprecations } from "../src/planner/Deprecations.js"
import { buildPlan } from "../src/planner/Planner.js"
import { PlanService } from "../src/planner/PlanService.js"
import { renderPlan } from "../src/planner/Report.js"
import { decodePlanSpec, plansDirectory } from "../src/planner/Spec.js"
import { median, scratchDatabase, serverUrl } from "./support.js"

const targets = { coreMs: 1_000, endToEndMs: 3_000, rssMb: 500 }
const specFile = join(plansDirectory, "retire-deprecated.yaml")
/** After 20.04's end of standard support: 16.04, 18.04 and 20.04 are deprecated, as the generator assumes. */
const now = new Date("2025-09-01T12:00:00Z")
const fleets = Number(process.env["BENCH_FLEETS"] ?? 10_000)
const perFleet = Number(process.env["BENCH_VMS_PER_FLEET"] ?? 10)
const runs = Math.max(1, Number(process.env["BENCH_RUNS"] ?? 5))

const ms = (value: number) => `${Math.round(value).toLocaleString("en-US")} ms`
const mb = (kilobytes: number) => kilobytes / 1024

const quiet = Logger.minimumLogLevel(LogLevel.Warning)

interface Measured {
  readonly vms: number
  readonly fleetsMoving: number
  readonly fleetsSkipped: number
  readonly steps: number
  readonly endToEndMs: ReadonlyArray<number>
  readonly readMs: ReadonlyArray<number>
  readonly coreMs: ReadonlyArray<number>
  readonly reportMs: number
  readonly rssMb: number
}

/** The second process: measures, prints one JSON line. */
const measure = (url: string) =>
  Effect.gen(function* () {
    const catalog = yield* Catalog
    const plans = yield* PlanService
    const inventory = yield* InventoryRepo
    const deprecations = yield* Deprecations
    const text = readFileSync(specFile, "utf8")

    // A warm-up run first: the first run in a fresh process is measured by itself (see coldRun).
    let plan = yield* plans.dryRun(text, specFile, now)
    const endToEndMs: Array<number> = []
    for (let run = 0; run < runs; run++) {
      const started = performance.now()
      plan = yield* plans.dryRun(text, specFile, now)
      endToEndMs.push(performance.now() - started)
    }
    const readMs: Array<number> = []
    for (let run = 0; run < runs; run++) {
      const started = performance.now()
      yield* inventory.snapshot
      readMs.push(performance.now() - started)
    }
    const snapshot = yield* inventory.snapshot
    const policies = yield* deprecations.current
    const spec = yield* decodePlanSpec(text, specFile, catalog)
    const coreMs: Array<number> = []
    for (let run = 0; run < runs; run++) {
      const started = performance.now()
      buildPlan({ inventory: snapshot, policies, spec, catalog, now })
      coreMs.push(performance.now() - started)
    }
    const reportStarted = performance.now()
    renderPlan(plan, "text")
    const reportMs = performance.now() - reportStarted
    const result: Measured = {
      vms: snapshot.vms.length,
      fleetsMoving: plan.totals.fleetsMoving,
      fleetsSkipped: plan.totals.fleetsSkipped,
      steps: plan.totals.steps,
      endToEndMs,
      readMs,
      coreMs,
      reportMs,
      rssMb: mb(process.resourceUsage().maxRSS)
    }
    process.stdout.write(`${JSON.stringify(result)}\n`)
  }).pipe(
    Effect.provide(PlanService.Default.pipe(
      Layer.provideMerge(InventoryRepo.Default),
      Layer.provideMerge(Deprecations.Default),
      Layer.provideMerge(Layer.mergeAll(layerFromUrl(Redacted.make(url), 2), Catalog.layer.pipe(Layer.provide(NodeContext.layer)), NodeContext.layer)),
      Layer.provide(quiet)
    )),
    Effect.provide(quiet)
  )

/** Times the first dry run in a process of its own: what `fleet plan --dry-run` costs from a cold start. */
const coldRun = (url: string) =>
  Effect.async<{ readonly ms: number; readonly rssMb: number }, Error>((resume) => {
    const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), "--cold", url], { stdio: ["ignore", "pipe", "inherit"] })
    let out = ""
    child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString("utf8")))
    child.on("close", (code) =>
      resume(code === 0 ? Effect.succeed(JSON.parse(out) as { ms: number; rssMb: number }) : Effect.fail(new Error(`the cold run exited with ${code}`))))
  })

const cold = (url: string) =>
  Effect.gen(function* () {
    const plans = yield* PlanService
    const text = readFileSync(specFile, "utf8")
    const started = performance.now()
    yield* plans.dryRun(text, specFile, now)
    process.stdout.write(`${JSON.stringify({ ms: performance.now() - started, rssMb: mb(process.resourceUsage().maxRSS) })}\n`)
  }).pipe(
    Effect.provide(PlanService.Default.pipe(
      Layer.provideMerge(Layer.mergeAll(layerFromUrl(Redacted.make(url), 2), Catalog.layer.pipe(Layer.provide(NodeContext.layer)), NodeContext.layer)),
      Layer.provide(quiet)
    )),
    Effect.provide(quiet)
  )

const runMeasure = (url: string) =>
  Effect.async<Measured, Error>((resume) => {
    const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), "--measure", url], { stdio: ["ignore", "pipe", "inherit"] })
    let out = ""
    child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString("utf8")))
    child.on("close", (code) =>
      resume(code === 0 ? Effect.succeed(JSON.parse(out) as Measured) : Effect.fail(new Error(`the measuring process exited with ${code}`))))
  })

const main = Effect.gen(function* () {
  const { name, url, sql } = yield* scratchDatabase.pipe(Logger.withMinimumLogLevel(LogLevel.Warning))
  console.log(`Planner benchmark: ${fleets.toLocaleString("en-US")} fleets × ${perFleet} VMs, half on deprecated versions; ${runs} runs each`)
  console.log(`  database ${name} on ${new URL(serverUrl).host} (dropped at the end)`)

  const setupStarted = performance.now()
  yield* Effect.gen(function* () {
    const catalog = yield* Catalog
    const vms = generateBenchmarkInventory(catalog, { fleets, vmsPerFleet: perFleet })
    yield* insertVms(vms, {
      createdBy: "bench-plan",
      reason: "benchmark data",
      batchSize: 10_000,
      events: false,
      progress: (written, total) => Effect.sync(() => process.stderr.write(`\r  inserting VMs: ${written.toLocaleString("en-US")} / ${total.toLocaleString("en-US")}`))
    }).pipe(sql.withTransaction)
    process.stderr.write("\n")
    yield* sql`analyze vms`
  }).pipe(
    Effect.provideService(SqlClient.SqlClient, sql),
    Effect.provide(Catalog.layer.pipe(Layer.provide(NodeContext.layer))),
    Effect.provide(quiet)
  )
  console.log(`  setup (generate, insert, analyze): ${ms(performance.now() - setupStarted)}`)

  const coldResult = yield* coldRun(url)
  const measured = yield* runMeasure(url)
  const core = median(measured.coreMs)
  const endToEnd = median(measured.endToEndMs)
  const rss = coldResult.rssMb
  const verdict = (ok: boolean) => (ok ? "ok" : "OVER TARGET")
  console.log("")
  console.log(`  inventory: ${measured.vms.toLocaleString("en-US")} live VMs; plan: ${measured.fleetsMoving.toLocaleString("en-US")} fleets move ` +
    `(${measured.steps.toLocaleString("en-US")} steps), ${measured.fleetsSkipped.toLocaleString("en-US")} skipped`)
  console.log(`  planner core (buildPlan, inventory in memory): median ${ms(core)}  [${measured.coreMs.map(ms).join(", ")}]  target ≤ ${ms(targets.coreMs)}: ${verdict(core <= targets.coreMs)}`)
  console.log(`  inventory read (one query):                   median ${ms(median(measured.readMs))}  [${measured.readMs.map(ms).join(", ")}]`)
  console.log(`  end-to-end dry run (database read included):  median ${ms(endToEnd)}  [${measured.endToEndMs.map(ms).join(", ")}]  target ≤ ${ms(targets.endToEndMs)}: ${verdict(endToEnd <= targets.endToEndMs)}`)
  console.log(`  end-to-end dry run, first in a fresh process:        ${ms(coldResult.ms)}  target ≤ ${ms(targets.endToEndMs)}: ${verdict(coldResult.ms <= targets.endToEndMs)}`)
  console.log(`  text report of that plan:                            ${ms(measured.reportMs)}`)
  console.log(`  peak RSS, a fresh process doing one dry run:         ${rss.toFixed(0)} MB  target ≤ ${targets.rssMb} MB: ${verdict(rss <= targets.rssMb)}`)
  console.log(`  peak RSS, the process that ran ${runs + 1} dry runs, ${runs} reads and ${runs} builds: ${measured.rssMb.toFixed(0)} MB (garbage the collector had not needed to reclaim yet)`)
  const load = loadavg()[0]!
  if (load > cpus().length) console.log(`  note: the load average was ${load.toFixed(1)} on ${cpus().length} CPUs while this ran; timings are inflated`)
  if (core > targets.coreMs || endToEnd > targets.endToEndMs || coldResult.ms > targets.endToEndMs || rss > targets.rssMb) process.exitCode = 1
})

const [mode, url] = process.argv.slice(2)
const program = mode === "--measure" && url !== undefined ? measure(url) : mode === "--cold" && url !== undefined ? cold(url) : Effect.scoped(main)
Effect.runPromise(program as Effect.Effect<void, unknown>).catch((error: unknown) => {
  console.error(error)
  process.exitCode = 1
})
