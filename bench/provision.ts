/**
 * `npm run bench:provision`: how fast one controller provisions VMs.
 *
 * 1,000 VMs (100 requests of 10) against the proctor simulator (in this process, zero response
 * latency), on a real PostgreSQL: DATABASE_URL, else TEST_DATABASE_URL, else
 * postgres://postgres@127.0.0.1:5432/postgres. The benchmark creates a database of its own there
 * and drops it afterwards. The controller is the real `fleet serve`, in a child process, so that
 * its CPU time and memory are its own (read from /proc/<pid>), not the simulator's or this
 * driver's.
 *
 * Executions finish (BENCH_CREATE_MS, 50 ms) before the first status poll (FLEET_POLL_INITIAL,
 * 100 ms), so the best case is two proctor calls per VM: one submission, one poll.
 *
 * Knobs (environment): BENCH_REQUESTS (100), BENCH_VMS_PER_REQUEST (10), BENCH_POST_CONCURRENCY
 * (10), BENCH_CREATE_MS (50), BENCH_POLL_INITIAL ("100 millis"), BENCH_LOG_LEVEL (Info, the
 * controller's default), BENCH_CPU_PROF=<dir> (write a V8 CPU profile of the controller there),
 * BENCH_PG_SAMPLE=1 (sample pg_stat_activity during the run: which queries run, what they wait
 * on), BENCH_STRICT=1 (exit 1 when a target is missed). Any FLEET_* variable set here is passed
 * to the controller (e.g. FLEET_RECONCILER_CONCURRENCY, DATABASE_POOL_SIZE).
 */
import { NodeRuntime } from "@effect/platform-node"
import { Effect, Logger, LogLevel, Schema } from "effect"
import { cpus } from "node:os"
import { join } from "node:path"
import { VmRequestAccepted } from "../src/vms/Domain.js"
import { adminToken, httpJson } from "../test/crash/ChildController.js"
import { startSimulator } from "../test/executor-crash/support.js"
import {
  backendCpuSeconds,
  backendCpuSecondsBetween,
  clockTicksPerSecond,
  committedTransactions,
  controllerSettingsFromEnv,
  cpuProfileNodeArgs,
  fixed,
  machineCpuTicks,
  percentile,
  processCpuSeconds,
  processMemoryMb,
  scopedTempDirectory,
  scratchDatabase,
  serverUrl,
  spawnBundledController,
  verdict
} from "./support.js"

const env = process.env
const requests = Number(env["BENCH_REQUESTS"] ?? 100)
const perRequest = Number(env["BENCH_VMS_PER_REQUEST"] ?? 10)
const postConcurrency = Number(env["BENCH_POST_CONCURRENCY"] ?? 10)
const createMs = Number(env["BENCH_CREATE_MS"] ?? 50)
const pollInitial = env["BENCH_POLL_INITIAL"] ?? "100 millis"
const logLevel = env["BENCH_LOG_LEVEL"] ?? "Info"
const cpuProfileDir = env["BENCH_CPU_PROF"]
const sampleDatabase = env["BENCH_PG_SAMPLE"] === "1"
const strict = env["BENCH_STRICT"] === "1"
const total = requests * perRequest

const targets = { vmsPerSecond: 200, callsPerVm: 3, peakRssMb: 300 }

const program = Effect.gen(function* () {
  // A database of our own, migrated before the controller starts so that a token can be made in it.
  const { name: database, url: databaseUrl, sql } = yield* scratchDatabase.pipe(Logger.withMinimumLogLevel(LogLevel.Warning))
  const token = yield* adminToken(databaseUrl, "bench-admin")

  const simulator = yield* startSimulator({
    responseLatencyMs: 0,
    durationMs: { create: createMs, destroy: createMs, check: createMs }
  })

  const logDirectory = yield* scopedTempDirectory("fleet-bench-")
  const passThrough = controllerSettingsFromEnv()
  const controller = yield* spawnBundledController({
    settings: { FLEET_POLL_INITIAL: pollInitial, LOG_LEVEL: logLevel, ...passThrough },
    databaseUrl,
    proctorUrl: simulator.url,
    logFile: join(logDirectory, "controller.log"),
    nodeArgs: cpuProfileNodeArgs(cpuProfileDir)
  })
  const pid = controller.pid
  const statsBefore = yield* simulator.stats
  const cpuAtStart = processCpuSeconds(pid)
  const machineAtStart = machineCpuTicks()
  const selfAtStart = process.cpuUsage()
  // The PostgreSQL backends serving the benchmark's database: the controller's pool and ours.
  const postgresAtStart = yield* backendCpuSeconds(sql, database)
  const commitsAtStart = yield* committedTransactions(sql, database)

  // Optional: what the database is busy with, sampled every 10 ms while the run lasts.
  const samples = new Map<string, number>()
  let sampling = sampleDatabase
  const sampler = sampleDatabase
    ? yield* Effect.fork(Effect.gen(function* () {
      while (sampling) {
        const rows = yield* sql<{ what: string }>`
          select coalesce(wait_event_type || ':' || wait_event, 'CPU') || '  ' ||
                 regexp_replace(left(regexp_replace(query, '\\s+', ' ', 'g'), 90), '\\$\\d+', '?', 'g') as what
          from pg_stat_activity
          where datname = ${database} and state = 'active' and pid <> pg_backend_pid()`
        for (const row of rows) samples.set(row.what, (samples.get(row.what) ?? 0) + 1)
        yield* Effect.sleep("10 millis")
      }
    }).pipe(Effect.orDie))
    : undefined

  // 100 requests of 10, a few at a time, as API clients would send them.
  const startedAt = Date.now()
  const postLatencies: Array<number> = []
  yield* Effect.forEach(Array.from({ length: requests }, (_, index) => index), (index) =>
    Effect.gen(function* () {
      const sent = Date.now()
      const answer = yield* httpJson(`${controller.baseUrl}/v1/vm-requests`, {
        method: "POST",
        token,
        body: {
          application: `bench-${String(index).padStart(3, "0")}`,
          environment: "staging",
          stack: "java",
          osVersion: "ubuntu-22.04",
          machineType: "e2-small",
          count: perRequest
        }
      })
      postLatencies.push(Date.now() - sent)
      if (answer.status !== 202) return yield* Effect.dieMessage(`POST /v1/vm-requests answered ${answer.status}: ${JSON.stringify(answer.body)}`)
      yield* Schema.decodeUnknown(VmRequestAccepted)(answer.body).pipe(Effect.orDie)
    }), { concurrency: postConcurrency, discard: true })
  const acceptedAt = Date.now()

  // Until every VM is settled (ready, failed or timed out), read from the database.
  const deadline = Date.now() + 180_000
  let last = { settled: 0, ready: 0, lastReadyMs: 0 }
  while (true) {
    const [row] = yield* sql<{ settled: number; ready: number; lastReadyMs: number | null }>`
      select count(*) filter (where state in ('ready', 'failed', 'timed_out'))::int as settled,
             count(*) filter (where state = 'ready')::int as ready,
             (extract(epoch from max(ready_at)) * 1000)::float8 as last_ready_ms
      from vms`.pipe(Effect.orDie)
    last = { settled: row!.settled, ready: row!.ready, lastReadyMs: row!.lastReadyMs ?? 0 }
    if (last.settled >= total) break
    if (Date.now() > deadline) return yield* Effect.dieMessage(`only ${last.settled} of ${total} VMs settled within 180 s`)
    yield* Effect.sleep("20 millis")
  }
  const settledAt = Date.now()
  sampling = false
  const cpuAtEnd = processCpuSeconds(pid)
  const machineAtEnd = machineCpuTicks()
  const self = process.cpuUsage(selfAtStart)
  const postgresAtEnd = yield* backendCpuSeconds(sql, database)
  const commits = (yield* committedTransactions(sql, database)) - commitsAtStart
  const postgresSeconds = backendCpuSecondsBetween(postgresAtStart, postgresAtEnd)
  const peakRssMb = processMemoryMb(pid, "VmHWM")
  const rssNowMb = processMemoryMb(pid, "VmRSS")
  const stats = yield* simulator.stats

  const [perVm] = yield* sql<{ polls: number; submissions: number }>`
    select sum(polls)::int as polls, sum(submissions)::int as submissions from executions`.pipe(Effect.orDie)
  const latencies = yield* sql<{ ms: number }>`
    select (extract(epoch from (ready_at - created_at)) * 1000)::float8 as ms from vms where ready_at is not null`.pipe(Effect.orDie)

  // A clean stop (and, with BENCH_CPU_PROF, the profile written).
  const stopped = yield* controller.stop("SIGTERM").pipe(Effect.timeout("30 seconds"), Effect.option)
  if (sampler !== undefined) yield* sampler.await

  const lastReady = last.lastReadyMs > 0 ? last.lastReadyMs : settledAt
  const seconds = (lastReady - startedAt) / 1000
  const vmsPerSecond = total / seconds
  const calls = stats.calls - statsBefore.calls
  const callsPerVm = calls / total
  const submits = stats.submit.accepted + stats.submit.failed + stats.submit.lost - statsBefore.submit.accepted - statsBefore.submit.failed - statsBefore.submit.lost
  const statusCalls = stats.status.ok + stats.status.notFound - statsBefore.status.ok - statsBefore.status.notFound
  const machineBusy = (machineAtEnd.busy - machineAtStart.busy) / Math.max(1, machineAtEnd.total - machineAtStart.total)
  const machineBusySeconds = (machineAtEnd.busy - machineAtStart.busy) / clockTicksPerSecond
  const controllerSeconds = cpuAtEnd - cpuAtStart
  const selfSeconds = (self.user + self.system) / 1e6
  const oursSeconds = controllerSeconds + postgresSeconds + selfSeconds
  const cores = cpus().length

  const lines = [
    `fleet bench:provision: ${total} VMs (${requests} requests of ${perRequest}), proctor simulator in-process ` +
      `(0 ms latency, executions take ${createMs} ms; first poll after ${pollInitial}), PostgreSQL ${new URL(serverUrl).host}/${database}`,
    `  requests accepted in ${fixed((acceptedAt - startedAt) / 1000)} s (POST latency p50 ${percentile(postLatencies, 50)} ms, p95 ${percentile(postLatencies, 95)} ms)`,
    `  VMs settled: ${last.settled}/${total} (${last.ready} ready) in ${fixed(seconds)} s from the first request to the last VM ready`,
    `  VMs settled per second:   ${fixed(vmsPerSecond, 1)}   (target >= ${targets.vmsPerSecond}: ${verdict(vmsPerSecond >= targets.vmsPerSecond)})`,
    `  proctor calls per VM:     ${fixed(callsPerVm)}   (${submits} submissions, ${statusCalls} status polls; target <= ${targets.callsPerVm}: ${verdict(callsPerVm <= targets.callsPerVm)})`,
    `  controller CPU seconds:   ${fixed(cpuAtEnd - cpuAtStart)} during the run (${fixed(cpuAtEnd)} since its start, start-up included)`,
    `  controller peak RSS:      ${fixed(peakRssMb, 1)} MB (VmHWM; ${fixed(rssNowMb, 1)} MB at the end; target <= ${targets.peakRssMb}: ${verdict(peakRssMb <= targets.peakRssMb)})`,
    `  VM latency (accepted -> ready): p50 ${fixed(percentile(latencies.map((row) => row.ms), 50), 0)} ms, p95 ${fixed(percentile(latencies.map((row) => row.ms), 95), 0)} ms, max ${fixed(Math.max(...latencies.map((row) => row.ms)), 0)} ms`,
    `  database: ${perVm!.submissions} submissions and ${perVm!.polls} polls recorded; ${commits} transactions committed ` +
      `(${fixed(commits / total, 1)} per VM, this driver's progress queries included)`,
    `  CPU seconds during the run, elsewhere: PostgreSQL backends of this database ${fixed(postgresSeconds)}, ` +
      `this driver + simulator ${fixed(selfSeconds)}; whole machine busy ${fixed(machineBusy * 100, 0)}% of ${cores} cores ` +
      `(${fixed(machineBusySeconds, 1)} CPU-s, of which this benchmark's processes ${fixed(oursSeconds, 1)})`,
    `  CPU per VM: controller ${fixed((controllerSeconds / total) * 1000)} ms, PostgreSQL ${fixed((postgresSeconds / total) * 1000)} ms, ` +
      `simulator + driver ${fixed((selfSeconds / total) * 1000)} ms: at most ${fixed(cores / (oursSeconds / total), 0)} VMs/s on ${cores} idle cores, ` +
      `at most ${fixed(1 / (controllerSeconds / total), 0)} VMs/s for the controller's one thread`,
    `  controller stopped: ${stopped._tag === "Some" ? JSON.stringify(stopped.value) : "did not stop within 30 s"}${cpuProfileDir === undefined ? "" : `; CPU profile in ${cpuProfileDir}`}`
  ]
  if (sampleDatabase) {
    const totalSamples = [...samples.values()].reduce((a, b) => a + b, 0)
    lines.push(`  database activity (pg_stat_activity, ${totalSamples} active-backend samples every 10 ms):`)
    for (const [what, count] of [...samples.entries()].sort((a, b) => b[1] - a[1]).slice(0, 12)) {
      lines.push(`    ${String(count).padStart(6)}  ${what}`)
    }
  }
  console.log(lines.join("\n"))
  const missed = vmsPerSecond < targets.vmsPerSecond || callsPerVm > targets.callsPerVm || peakRssMb > targets.peakRssMb
  if (strict && missed) return yield* Effect.fail(new Error("a target was missed"))
}).pipe(Effect.scoped)

NodeRuntime.runMain(program)
