/**
 * `npm run bench:http`: fleet's HTTP API against a minimal baseline, on a real PostgreSQL.
 *
 * Two endpoints, with authentication on (an admin API token): `GET /v1/vms/{id}` and
 * `POST /v1/vm-requests` (count 1; the proctor simulator, in a process of its own, answers with zero
 * latency and finishes executions at once). First fleet — the real `fleet serve`, in a child
 * process, reconciler included — then the baseline (bench/http-baseline.ts: `node:http` + `pg`,
 * the same SQL, the same pool size), each measured from this process: a saturating pass with
 * autocannon (requests/s, p50, p99); a pass at 200 requests/s evenly paced, one request every 5 ms
 * through undici (p50, p99: the target's figure); and autocannon's own fixed rate, which sends
 * each second's 200 requests at once (p50, p99; see `paced`).
 * A POST pass starts once fleet has created every VM the passes before it accepted (its
 * reconciler lags behind a saturating pass; the baseline creates nothing): how long that took
 * after the saturating pass is printed.
 *
 * The database: DATABASE_URL, else TEST_DATABASE_URL, else postgres://postgres@127.0.0.1:5432/postgres;
 * a database of its own is created there and dropped afterwards.
 *
 * Knobs (environment): BENCH_DURATION (seconds per pass, 10), BENCH_CONNECTIONS (saturating pass,
 * 32; also the paced pass's most), BENCH_RATE (fixed-rate passes, 200), DATABASE_POOL_SIZE (both servers, 10), BENCH_LOG_LEVEL
 * (fleet's, Info: its default), BENCH_CPU_PROF=<dir> (a V8 CPU profile of fleet and of each comparison server), BENCH_NODE_ARGS (flags
 * for fleet's node, e.g. "--trace-gc"), BENCH_OUTPUT=<file> (fleet's output, copied there at the end),
 * BENCH_FLOOR=1 (also measure the floors of fleet's stack: bench/http-floor.ts, the same endpoints on
 * Effect's HttpApi with fleet's schemas and database layer and nothing else; and
 * bench/http-floor-router.ts, on Effect's HttpRouter with no schema), BENCH_STRICT=1 (exit 1 when a
 * target is missed). Any FLEET_* variable set here is passed to fleet: e.g.
 * FLEET_RECONCILER_CONCURRENCY=0 measures the API alone, without the reconciler following the VMs
 * the POSTs create (the VMs stay pending).
 */
import { NodeRuntime } from "@effect/platform-node"
import autocannon from "autocannon"
import { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import { writeFileSync } from "node:fs"
import { cpus, loadavg } from "node:os"
import { join } from "node:path"
import { Pool } from "undici"
import { terminalVmStates } from "../src/vms/StateMachine.js"
import { adminToken, httpJson } from "../test/crash/ChildController.js"
import {
  controllerSettingsFromEnv,
  cpuProfileNodeArgs,
  percentile,
  processCpuSeconds,
  scopedTempDirectory,
  scratchDatabase,
  serverUrl,
  spawnBundledController,
  spawnServerProcess,
  spawnSimulatorProcess,
  verdict
} from "./support.js"

const env = process.env
const duration = Number(env["BENCH_DURATION"] ?? 10)
const connections = Number(env["BENCH_CONNECTIONS"] ?? 32)
const rate = Number(env["BENCH_RATE"] ?? 200)
const poolSize = env["DATABASE_POOL_SIZE"] ?? "10"
const logLevel = env["BENCH_LOG_LEVEL"] ?? "Info"
const strict = env["BENCH_STRICT"] === "1"
const cpuProfileDir = env["BENCH_CPU_PROF"]
const nodeArgs = (env["BENCH_NODE_ARGS"] ?? "").split(" ").filter((arg) => arg !== "")
const outputFile = env["BENCH_OUTPUT"]
const withFloor = env["BENCH_FLOOR"] === "1"
const targets = { throughputRatio: 0.6, p99AtRateMs: 50 }
const passedOn = controllerSettingsFromEnv()
/** Whether fleet follows the VMs its POSTs create (FLEET_RECONCILER_CONCURRENCY=0 measures the API alone). */
const reconciling = passedOn["FLEET_RECONCILER_CONCURRENCY"] !== "0"

interface Figures {
  readonly requestsPerSecond: number
  /** CPU time of the server process per answered request, in microseconds. */
  readonly cpuMicros: number
  readonly p50: number
  readonly p99: number
  readonly non2xx: number
  readonly errors: number
}

/** One autocannon pass against the server with this pid. */
const cannon = (pid: number, options: autocannon.Options) =>
  Effect.suspend(() => {
    const cpuBefore = processCpuSeconds(pid)
    return Effect.promise(() => autocannon({ ...options, duration: options.duration ?? duration })).pipe(
      Effect.map((result) => ({ result, cpu: processCpuSeconds(pid) - cpuBefore }))
    )
  }).pipe(
    Effect.map(({ cpu, result }): Figures => ({
      requestsPerSecond: result.requests.average,
      cpuMicros: (cpu * 1e6) / Math.max(1, result["2xx"] + result.non2xx),
      p50: result.latency.p50,
      p99: result.latency.p99,
      non2xx: result.non2xx,
      errors: result.errors
    }))
  )

interface Target {
  readonly url: string
  readonly method?: "GET" | "POST"
  readonly headers: Record<string, string>
  readonly body?: string
}

/**
 * An open-loop pass at `rate` requests per second for `duration` seconds: one request every
 * 1000 / rate ms, each sent when it is due whether or not the ones before it have been answered
 * (over up to `connections` keep-alive connections). A request's latency counts from when it was
 * due, so a server that falls behind is charged for it. autocannon's `overallRate` is not this: it
 * gives each connection a quota per second and lets it send that quota as fast as it is answered,
 * so each second's requests all go at once (200 of them within about the first 100 ms), a
 * saturating burst once a second.
 */
const paced = (pid: number, target: Target) =>
  Effect.promise(async () => {
    const url = new URL(target.url)
    const pool = new Pool(url.origin, { connections })
    const total = Math.round(rate * duration)
    const intervalMs = 1000 / rate
    const latencies: Array<number> = []
    let non2xx = 0
    let errors = 0
    const cpuBefore = processCpuSeconds(pid)
    const start = performance.now()
    const answered: Array<Promise<void>> = []
    for (let index = 0; index < total; index++) {
      const due = start + index * intervalMs
      const wait = due - performance.now()
      if (wait >= 1) await new Promise((resolve) => setTimeout(resolve, wait))
      answered.push(
        pool.request({ path: url.pathname, method: target.method ?? "GET", headers: target.headers, body: target.body ?? null }).then(
          async (response) => {
            await response.body.text()
            if (response.statusCode < 200 || response.statusCode >= 300) non2xx++
            latencies.push(performance.now() - due)
          },
          () => {
            errors++
          }
        )
      )
    }
    await Promise.all(answered)
    const seconds = (performance.now() - start) / 1000
    const cpu = processCpuSeconds(pid) - cpuBefore
    await pool.close()
    return {
      requestsPerSecond: latencies.length / seconds,
      cpuMicros: (cpu * 1e6) / Math.max(1, latencies.length),
      p50: Math.round(percentile(latencies, 50)),
      p99: Math.round(percentile(latencies, 99)),
      non2xx,
      errors
    } satisfies Figures
  })

const createBody = JSON.stringify({
  application: "bench-http",
  environment: "staging",
  stack: "java",
  osVersion: "ubuntu-22.04",
  machineType: "e2-small",
  count: 1
})

/**
 * Until no VM that fleet accepted is still being created: a pass starts on a server that has
 * caught up with the last one, as the baseline (which creates nothing) always has. How long that
 * took, in seconds.
 */
const untilCaughtUp = (sql: SqlClient.SqlClient) =>
  Effect.gen(function* () {
    const started = Date.now()
    while (true) {
      const [row] = yield* sql<{ unsettled: number }>`
        select count(*)::int as unsettled from vms where state not in ${sql.in(terminalVmStates)}`.pipe(Effect.orDie)
      if ((row?.unsettled ?? 0) === 0) break
      yield* Effect.sleep("100 millis")
    }
    return (Date.now() - started) / 1000
  })

/** A server that creates no VMs (the baseline, or fleet without a reconciler) never lags behind. */
const nothingToCatchUp = Effect.succeed(0)

/**
 * The passes against one server, for each endpoint: saturating; at the fixed rate, evenly paced
 * (`paced`); and autocannon's `overallRate` at the same rate, a burst each second. Before each
 * measured POST pass the server catches up (see `untilCaughtUp`); the seconds it took after the
 * saturating POST pass are returned too.
 */
const measure = (pid: number, baseUrl: string, token: string, vmId: string, caughtUp: Effect.Effect<number>) =>
  Effect.gen(function* () {
    const headers = { authorization: `Bearer ${token}`, "content-type": "application/json" }
    const get = { url: `${baseUrl}/v1/vms/${vmId}`, headers }
    const post = { url: `${baseUrl}/v1/vm-requests`, method: "POST" as const, headers, body: createBody }
    // Warm-up (JIT, pool connections), not measured.
    yield* cannon(pid, { ...get, connections, duration: 2 })
    const getMax = yield* cannon(pid, { ...get, connections })
    const getRate = yield* paced(pid, get)
    const getBursts = yield* cannon(pid, { ...get, connections: 20, overallRate: rate })
    yield* cannon(pid, { ...post, connections, duration: 2 })
    yield* caughtUp
    const postMax = yield* cannon(pid, { ...post, connections })
    const catchUpSeconds = yield* caughtUp
    const postRate = yield* paced(pid, post)
    yield* caughtUp
    const postBursts = yield* cannon(pid, { ...post, connections: 20, overallRate: rate })
    return { getMax, getRate, getBursts, postMax, postRate, postBursts, catchUpSeconds }
  })

/** A comparison server (bench/http-baseline.ts, bench/http-floor.ts) in a child process, ready when it prints `Listening on <url>`. */
const spawnComparison = (what: string, file: string, databaseUrl: string) =>
  spawnServerProcess(what, (port) => ({
    args: [...cpuProfileNodeArgs(cpuProfileDir), "--import", "tsx", file],
    env: { ...process.env, DATABASE_URL: databaseUrl, PORT: String(port), DATABASE_POOL_SIZE: poolSize }
  }))

const program = Effect.gen(function* () {
  const { name: database, sql, url: databaseUrl } = yield* scratchDatabase
  const token = yield* adminToken(databaseUrl, "bench-admin")

  const simulator = yield* spawnSimulatorProcess({ create: 0, destroy: 0, check: 0 })

  const logDirectory = yield* scopedTempDirectory("fleet-bench-http-")
  const fleet = yield* spawnBundledController({
    settings: { LOG_LEVEL: logLevel, ...passedOn, DATABASE_POOL_SIZE: poolSize },
    databaseUrl,
    proctorUrl: simulator.url,
    logFile: join(logDirectory, "controller.log"),
    nodeArgs: [...nodeArgs, ...cpuProfileNodeArgs(cpuProfileDir)]
  })

  // One VM, ready, with its history and execution: what GET /v1/vms/{id} reads.
  const seeded = yield* httpJson(`${fleet.baseUrl}/v1/vm-requests`, { method: "POST", token, body: JSON.parse(createBody) })
  if (seeded.status !== 202) return yield* Effect.dieMessage(`seeding answered ${seeded.status}: ${JSON.stringify(seeded.body)}`)
  const vmId = (seeded.body as { vms: Array<{ id: string }> }).vms[0]!.id
  // Without a reconciler (FLEET_RECONCILER_CONCURRENCY=0) the VM stays pending: both servers read it as it is.
  for (let attempt = 0; reconciling; attempt++) {
    const vm = yield* httpJson(`${fleet.baseUrl}/v1/vms/${vmId}`, { token })
    if ((vm.body as { state?: string }).state === "ready") break
    if (attempt > 200) return yield* Effect.dieMessage("the seeded VM did not become ready")
    yield* Effect.sleep("50 millis")
  }

  const fleetFigures = yield* measure(fleet.pid, fleet.baseUrl, token, vmId, reconciling ? untilCaughtUp(sql) : nothingToCatchUp)
  yield* fleet.stop("SIGTERM").pipe(Effect.timeout("30 seconds"), Effect.ignore)
  if (outputFile !== undefined) writeFileSync(outputFile, fleet.output())

  const baseline = yield* spawnComparison("the baseline", "bench/http-baseline.ts", databaseUrl)
  const baselineFigures = yield* measure(baseline.pid, baseline.url, token, vmId, nothingToCatchUp)
  yield* baseline.stop

  const measureFloor = (file: string) =>
    Effect.gen(function* () {
      const floor = yield* spawnComparison("a floor", file, databaseUrl)
      const figures = yield* measure(floor.pid, floor.url, token, vmId, nothingToCatchUp)
      yield* floor.stop
      return figures
    })
  const floorFigures = withFloor ? yield* measureFloor("bench/http-floor.ts") : undefined
  const routerFigures = withFloor ? yield* measureFloor("bench/http-floor-router.ts") : undefined

  const row = (name: string, figures: Figures) =>
    `    ${name.padEnd(38)} ${figures.requestsPerSecond.toFixed(0).padStart(6)} req/s   p50 ${String(figures.p50).padStart(4)} ms   ` +
    `p99 ${String(figures.p99).padStart(4)} ms   server CPU ${figures.cpuMicros.toFixed(0).padStart(5)} µs/request` +
    (figures.non2xx + figures.errors > 0 ? `   (${figures.non2xx} non-2xx, ${figures.errors} errors)` : "")
  const ratio = (name: "getMax" | "postMax") => fleetFigures[name].requestsPerSecond / baselineFigures[name].requestsPerSecond
  const getRatio = ratio("getMax")
  const postRatio = ratio("postMax")
  const p99s = [fleetFigures.getRate.p99, fleetFigures.postRate.p99]
  const lines = [
    `fleet bench:http: PostgreSQL ${new URL(serverUrl).host}/${database}, pool ${poolSize} each, auth on (admin token), ` +
      `${cpus().length} cores; ${duration} s per pass;${Object.entries(passedOn).filter(([key]) => key !== "DATABASE_POOL_SIZE").map(([key, value]) => ` fleet with ${key}=${value};`).join("")} saturating passes with ${connections} connections, fixed-rate passes at ${rate} req/s`,
    `  GET /v1/vms/{id}`,
    row("fleet, saturating", fleetFigures.getMax),
    row("baseline (node:http + pg), saturating", baselineFigures.getMax),
    ...(floorFigures === undefined ? [] : [row("floor (Effect HttpApi), saturating", floorFigures.getMax)]),
    ...(routerFigures === undefined ? [] : [row("floor (Effect HttpRouter), saturating", routerFigures.getMax)]),
    row(`fleet, ${rate} req/s paced`, fleetFigures.getRate),
    row(`baseline, ${rate} req/s paced`, baselineFigures.getRate),
    row(`fleet, ${rate} req/s in bursts`, fleetFigures.getBursts),
    row(`baseline, ${rate} req/s in bursts`, baselineFigures.getBursts),
    `  POST /v1/vm-requests (count 1)`,
    row("fleet, saturating", fleetFigures.postMax),
    row("baseline (node:http + pg), saturating", baselineFigures.postMax),
    ...(floorFigures === undefined ? [] : [row("floor (Effect HttpApi), saturating", floorFigures.postMax)]),
    ...(routerFigures === undefined ? [] : [row("floor (Effect HttpRouter), saturating", routerFigures.postMax)]),
    ...(reconciling
      ? [`    (after the saturating pass fleet took ${fleetFigures.catchUpSeconds.toFixed(1)} s more to create the VMs it had accepted; the next pass started then)`]
      : []),
    row(`fleet, ${rate} req/s paced`, fleetFigures.postRate),
    row(`baseline, ${rate} req/s paced`, baselineFigures.postRate),
    row(`fleet, ${rate} req/s in bursts`, fleetFigures.postBursts),
    row(`baseline, ${rate} req/s in bursts`, baselineFigures.postBursts),
    `  throughput fleet / baseline: GET ${getRatio.toFixed(3)}, POST ${postRatio.toFixed(3)} ` +
      `(target >= ${targets.throughputRatio}: ${verdict(Math.min(getRatio, postRatio) >= targets.throughputRatio)})`,
    ...(floorFigures === undefined ? [] : [
      `  throughput floor / baseline: GET ${(floorFigures.getMax.requestsPerSecond / baselineFigures.getMax.requestsPerSecond).toFixed(3)}, ` +
      `POST ${(floorFigures.postMax.requestsPerSecond / baselineFigures.postMax.requestsPerSecond).toFixed(3)}; fleet / floor: ` +
      `GET ${(fleetFigures.getMax.requestsPerSecond / floorFigures.getMax.requestsPerSecond).toFixed(3)}, ` +
      `POST ${(fleetFigures.postMax.requestsPerSecond / floorFigures.postMax.requestsPerSecond).toFixed(3)}`
    ]),
    ...(routerFigures === undefined ? [] : [
      `  throughput HttpRouter floor / baseline: GET ${(routerFigures.getMax.requestsPerSecond / baselineFigures.getMax.requestsPerSecond).toFixed(3)}, ` +
      `POST ${(routerFigures.postMax.requestsPerSecond / baselineFigures.postMax.requestsPerSecond).toFixed(3)}`
    ]),
    `  fleet p99 at ${rate} req/s, paced: GET ${p99s[0]} ms, POST ${p99s[1]} ms (target <= ${targets.p99AtRateMs} ms: ${verdict(Math.max(...p99s) <= targets.p99AtRateMs)}); ` +
      `in autocannon's bursts (each second's ${rate} sent at once over 20 connections): GET ${fleetFigures.getBursts.p99} ms, POST ${fleetFigures.postBursts.p99} ms`,
    `  server CPU per request fleet / baseline: GET ${(fleetFigures.getMax.cpuMicros / baselineFigures.getMax.cpuMicros).toFixed(1)}x, ` +
      `POST ${(fleetFigures.postMax.cpuMicros / baselineFigures.postMax.cpuMicros).toFixed(1)}x` +
      `${reconciling ? " (fleet's includes its reconciler following the VMs the POSTs create)" : ""}; ` +
      `the simulator's process used ${processCpuSeconds(simulator.pid).toFixed(1)} CPU seconds in all; machine load average at the end ${loadavg()[0]!.toFixed(1)}`
  ]
  console.log(lines.join("\n"))
  const missed = Math.min(getRatio, postRatio) < targets.throughputRatio || Math.max(...p99s) > targets.p99AtRateMs
  if (strict && missed) return yield* Effect.fail(new Error("a target was missed"))
}).pipe(Effect.scoped)

NodeRuntime.runMain(program)
