/**
 * Shared by the benchmarks (`bench/*.ts`): the PostgreSQL server and the scratch database each
 * one runs in, figures read from /proc, and the small statistics and formatting of their reports.
 */
import { NodeContext } from "@effect/platform-node"
import { SqlClient } from "@effect/sql"
import { Deferred, Effect, Exit, Redacted, type Scope } from "effect"
import { spawn } from "node:child_process"
import { randomBytes } from "node:crypto"
import { readFileSync } from "node:fs"
import { layerFromUrl } from "../src/db/Database.js"
import { migrate } from "../src/db/Migrations.js"
import { freePort, repoRoot, spawnController } from "../test/crash/ChildController.js"
import { sqlClient } from "../test/executor-crash/support.js"

export { scopedTempDirectory } from "../test/executor-crash/support.js"

// ---------------------------------------------------------------------------------------------
// PostgreSQL

/** The server the benchmarks run on, as the tests find theirs: DATABASE_URL, else TEST_DATABASE_URL, else the local default. */
export const serverUrl = process.env["DATABASE_URL"] ?? process.env["TEST_DATABASE_URL"] ?? "postgres://postgres@127.0.0.1:5432/postgres"

/** `url` pointed at another database on the same server (same host, user and options). */
const urlWithDatabase = (url: string, database: string): string => {
  const parsed = new URL(url)
  parsed.pathname = `/${database}`
  return parsed.toString()
}

/** Runs one statement on the server's default database, on a connection of its own: for what cannot run inside the database it affects (create, drop). */
const runOnServer = (statement: string): Effect.Effect<void> =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    yield* sql.unsafe(statement)
  }).pipe(Effect.provide(layerFromUrl(Redacted.make(serverUrl), 1)), Effect.scoped, Effect.orDie)

export interface ScratchDatabase {
  /** `fleet_bench_<10 hex digits>`. */
  readonly name: string
  readonly url: string
  /** A client on it (2 connections) for as long as the scope lasts. */
  readonly sql: SqlClient.SqlClient
}

/**
 * A database of the benchmark's own on `serverUrl`, so that a run neither sees nor disturbs
 * anyone's data: created with a random name, migrated, and dropped (its connections forced off)
 * when the scope closes. Migrations log at Info: wrap the call in
 * `Logger.withMinimumLogLevel(LogLevel.Warning)` to keep them out of the report.
 */
export const scratchDatabase: Effect.Effect<ScratchDatabase, never, Scope.Scope> = Effect.gen(function* () {
  const name = `fleet_bench_${randomBytes(5).toString("hex")}`
  yield* Effect.acquireRelease(runOnServer(`create database ${name}`), () => runOnServer(`drop database if exists ${name} with (force)`))
  const url = urlWithDatabase(serverUrl, name)
  const sql = yield* sqlClient(url, 2)
  yield* migrate.pipe(Effect.provideService(SqlClient.SqlClient, sql), Effect.provide(NodeContext.layer), Effect.orDie)
  return { name, url, sql }
})

/** CPU seconds used so far by each backend serving `database` (by pid): PostgreSQL's share of a run, read before and after it. */
export const backendCpuSeconds = (sql: SqlClient.SqlClient, database: string): Effect.Effect<ReadonlyMap<number, number>> =>
  sql<{ pid: number }>`select pid from pg_stat_activity where datname = ${database}`.pipe(
    Effect.map((rows) =>
      new Map(rows.map((row) => {
        try {
          return [row.pid, processCpuSeconds(row.pid)] as const
        } catch {
          // The backend ended between the query and the read.
          return [row.pid, 0] as const
        }
      }))
    ),
    Effect.orDie
  )

/** CPU seconds the backends used between two `backendCpuSeconds` readings (a backend that started in between counts from zero). */
export const backendCpuSecondsBetween = (before: ReadonlyMap<number, number>, after: ReadonlyMap<number, number>): number => {
  let seconds = 0
  for (const [backend, now] of after) seconds += now - (before.get(backend) ?? 0)
  return seconds
}

/** Transactions committed in `database` so far (pg_stat_database): read before and after a run, how many it took. */
export const committedTransactions = (sql: SqlClient.SqlClient, database: string): Effect.Effect<number> =>
  sql<{ commits: number }>`select xact_commit::float8 as commits from pg_stat_database where datname = ${database}`.pipe(
    Effect.map((rows) => rows[0]?.commits ?? 0),
    Effect.orDie
  )

// ---------------------------------------------------------------------------------------------
// The controller process

/**
 * The real `fleet serve` in a child process, so that its CPU time and memory (read from
 * /proc/<pid>) are its own: the production bundle, as the Docker image runs it, with its node
 * flags (`npm run build`
 * first: the npm scripts do), in production mode without a rate limit, on `databaseUrl` and the
 * simulator at `proctorUrl`. `settings` (LOG_LEVEL, FLEET_*, ...) come on top and may override
 * the mode and the rate limit. Its logs go to `logFile`, as in production (to a file or a log
 * collector): through a pipe to this busy process, pino's synchronous writes would wait for this
 * process to read them.
 */
export const spawnBundledController = (options: {
  readonly settings: Record<string, string>
  readonly databaseUrl: string
  readonly proctorUrl: string
  readonly logFile: string
  readonly nodeArgs: ReadonlyArray<string>
}) =>
  spawnController({
    entry: "bundle",
    env: {
      FLEET_MODE: "production",
      FLEET_RATE_LIMIT: "0",
      ...options.settings,
      DATABASE_URL: options.databaseUrl,
      PROCTOR_URL: options.proctorUrl
    },
    stdoutFile: options.logFile,
    // The Docker image's node flags first (see its CMD); the caller's can override them.
    nodeArgs: [...productionNodeFlags, ...options.nodeArgs]
  })

/** The node flags the Docker image runs the controller with (Dockerfile, docker-compose.yml). */
export const productionNodeFlags: ReadonlyArray<string> = ["--heap-growing-percent=50"]

/** The FLEET_* and DATABASE_POOL_SIZE variables of this process: passed on to the controller, so that any setting can be tried without editing a benchmark. */
export const controllerSettingsFromEnv = (): Record<string, string> =>
  Object.fromEntries(
    Object.entries(process.env).filter((entry): entry is [string, string] => /^(FLEET_|DATABASE_POOL_SIZE$)/.test(entry[0]) && entry[1] !== undefined)
  )

/** Node flags that write a V8 CPU profile into `directory` (BENCH_CPU_PROF), or none when it is not set. */
export const cpuProfileNodeArgs = (directory: string | undefined): Array<string> =>
  directory === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${directory}`]


// ---------------------------------------------------------------------------------------------
// /proc: what a process, or the machine, used

/** Clock ticks per second of /proc's CPU times (getconf CLK_TCK; 100 on Linux). */
export const clockTicksPerSecond = 100

/** User + system CPU seconds of a process, from /proc/<pid>/stat (fields 14 and 15): its own, not its parent's or children's. */
export const processCpuSeconds = (pid: number): number => statCpuSeconds(`/proc/${pid}/stat`)

/** The CPU seconds (user + system) of a process's main thread alone: JavaScript and the event loop, without GC, compiler and libuv threads. */
export const mainThreadCpuSeconds = (pid: number): number => statCpuSeconds(`/proc/${pid}/task/${pid}/stat`)

const statCpuSeconds = (path: string): number => {
  const stat = readFileSync(path, "utf8")
  // The command name, in parentheses, may hold spaces: count the fields after it.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  return (Number(fields[11]) + Number(fields[12])) / clockTicksPerSecond
}

/** A memory line of /proc/<pid>/status in MB (VmHWM: the peak resident set; VmRSS: now); NaN when it is missing. */
export const processMemoryMb = (pid: number, key: "VmHWM" | "VmRSS"): number => {
  const match = new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"))
  return match ? Number(match[1]) / 1024 : Number.NaN
}

/** Busy and total clock ticks of the whole machine so far, from /proc/stat: how busy it was between two readings, whoever used it. */
export const machineCpuTicks = (): { busy: number; total: number } => {
  const cpu = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number)
  const idle = (cpu[3] ?? 0) + (cpu[4] ?? 0)
  const sum = cpu.reduce((a, b) => a + b, 0)
  return { busy: sum - idle, total: sum }
}

/**
 * A server in a child process of node, started from the repository root with the node
 * arguments and environment `command` gives for a free port; ready when its output shows
 * `listening on <url>` (in any case); killed when the scope closes, `stop` ends it sooner (SIGTERM)
 * and waits until it has exited, so that the next server measured does not share the CPU with it
 * and a CPU profile (BENCH_CPU_PROF) is written.
 */
export const spawnServerProcess = (
  what: string,
  command: (port: number) => { readonly args: ReadonlyArray<string>; readonly env?: Record<string, string | undefined> }
) =>
  Effect.gen(function* () {
    const port = yield* freePort
    const listening = yield* Deferred.make<string, string>()
    const exited = yield* Deferred.make<void>()
    const child = yield* Effect.acquireRelease(
      Effect.sync(() => {
        const { args, env = process.env } = command(port)
        const child = spawn(process.execPath, [...args], { cwd: repoRoot, env, stdio: ["ignore", "pipe", "inherit"] })
        child.stdout!.setEncoding("utf8")
        child.stdout!.on("data", (chunk: string) => {
          const match = /listening on (http:\/\/\S+)/i.exec(chunk)
          if (match) Deferred.unsafeDone(listening, Exit.succeed(match[1]!))
        })
        child.once("exit", (code) => {
          Deferred.unsafeDone(listening, Exit.fail(`${what} exited (${code})`))
          Deferred.unsafeDone(exited, Exit.void)
        })
        return child
      }),
      (child) => Effect.sync(() => child.kill("SIGKILL"))
    )
    const url = yield* Deferred.await(listening).pipe(Effect.timeout("60 seconds"), Effect.orDie)
    const stop = Effect.sync(() => child.kill("SIGTERM")).pipe(
      Effect.zipRight(Deferred.await(exited).pipe(Effect.timeout("30 seconds"), Effect.orDie))
    )
    return { url, pid: child.pid!, stop }
  })

/**
 * The proctor simulator in a process of its own (`fleet proctor-sim` from the bundle), so that
 * its work neither shares an event loop with the load generator nor counts as this process's CPU.
 */
export const spawnSimulatorProcess = (durationMs: { readonly create: number; readonly destroy: number; readonly check: number }) =>
  spawnServerProcess("the simulator", (port) => ({
    args: [
      "dist/fleet.mjs", "proctor-sim", "--port", String(port), "--latency", "0",
      "--create-ms", String(durationMs.create), "--destroy-ms", String(durationMs.destroy), "--check-ms", String(durationMs.check)
    ]
  }))

// ---------------------------------------------------------------------------------------------
// Statistics and formatting

/** The nearest-rank p-th percentile (0–100) of `values`; NaN when there are none. */
export const percentile = (values: ReadonlyArray<number>, p: number): number => {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!
}

/** The median of `values` (the upper one of an even count), as `percentile(values, 50)`. */
export const median = (values: ReadonlyArray<number>): number => percentile(values, 50)

/** The arithmetic mean of `values`; NaN when there are none. */
export const mean = (values: ReadonlyArray<number>): number =>
  values.length === 0 ? Number.NaN : values.reduce((a, b) => a + b, 0) / values.length

/** A figure with a fixed number of decimals (2 unless told), as the reports print them. */
export const fixed = (value: number, digits = 2): string => value.toFixed(digits)

/** What a report says of a target: "met", or "MISSED" in capitals so that it stands out. */
export const verdict = (ok: boolean): string => (ok ? "met" : "MISSED")
