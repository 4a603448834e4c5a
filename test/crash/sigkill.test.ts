import { NodeContext } from "@effect/platform-node"
import { SqlClient } from "@effect/sql"
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Layer, Redacted, Schema } from "effect"
import { Catalog } from "../../src/catalog/Catalog.js"
import { FleetClient, waitForRequest } from "../../src/client/Client.js"
import { layerFromUrl } from "../../src/db/Database.js"
import { ProctorSimulator } from "../../src/proctor/Simulator.js"
import { type RequestId, VmRequestAccepted } from "../../src/vms/Domain.js"
import { freshDatabase } from "../support/Database.js"
import { adminToken, type ControllerProcess, httpJson, spawnController } from "./ChildController.js"
import { startKillSwitchProxy, type Trip } from "./KillSwitchProxy.js"

/**
 * Crash safety, with a real controller process: it is SIGKILLed three times while proctor
 * executions are in flight, restarted each time, and a last controller finishes the work. The
 * simulator's ledger and the database must then agree exactly: every VM ready, created once.
 *
 * Each kill lands at the most dangerous moment there is, chosen by a proxy in front of the
 * simulator: proctor has accepted a submission (the VM will exist) and the controller dies
 * before it hears the answer. The restarted controller only knows it meant to submit, so it
 * must submit again with the same VM name (after the dead controller's 2-second lease), and
 * proctor's proc must treat the second run as the same VM.
 */

const requestsPerRound = 2
const vmsPerRequest = 10
const rounds = 3
/** Kill on this accepted submission of each round's controller (each round brings 20 new VMs). */
const killOnSubmission = 8

const controllerSettings = {
  FLEET_MODE: "production",
  FLEET_POLL_INITIAL: "100 millis",
  FLEET_POLL_MAX: "300 millis",
  FLEET_RECONCILE_INTERVAL: "100 millis",
  FLEET_LEASE: "2 seconds",
  FLEET_EXECUTION_DEADLINE: "60 seconds",
  FLEET_SUBMIT_BACKOFF: "20 millis",
  FLEET_SUBMIT_BACKOFF_MAX: "100 millis",
  FLEET_RESUBMIT_DELAY: "200 millis",
  PROCTOR_TIMEOUT: "3 seconds",
  DATABASE_POOL_SIZE: "4",
  FLEET_RATE_LIMIT: "0",
  LOG_LEVEL: "info"
}

const vmRequest = (round: number, index: number) => ({
  application: `crash-r${round}-${index}`,
  environment: "staging",
  stack: "java",
  osVersion: "ubuntu-22.04",
  machineType: "e2-small",
  count: vmsPerRequest,
  metadata: { test: "sigkill" }
})

interface Snapshot {
  readonly vmStates: Record<string, number>
  /** Executions a controller had claimed and not finished: its handlers were cut mid-exchange. */
  readonly claimed: ReadonlyArray<{ readonly name: string; readonly state: string }>
}

describe("crash safety of a real controller process", () => {
  it.scopedLive("SIGKILLed mid-flight three times: every VM ready, none lost, none created twice", () =>
    Effect.gen(function* () {
      const { url: databaseUrl } = yield* freshDatabase
      const sql = yield* Layer.build(layerFromUrl(Redacted.make(databaseUrl), 2)).pipe(
        Effect.map((context) => Context.get(context, SqlClient.SqlClient)),
        Effect.orDie
      )
      const catalog = yield* Effect.provide(Catalog, Catalog.layer.pipe(Layer.provide(NodeContext.layer))).pipe(Effect.orDie)
      // Executions take a few hundred ms, so kills find some submitted, some provisioning, some not yet sent.
      const simulator = yield* ProctorSimulator.start({
        procs: ProctorSimulator.procsFromCatalog(catalog),
        durationMs: { create: 400, destroy: 200, check: 50 }
      }).pipe(Effect.orDie)
      const proxy = yield* startKillSwitchProxy(simulator.url)
      const env = { ...controllerSettings, DATABASE_URL: databaseUrl, PROCTOR_URL: proxy.url }
      const token = yield* adminToken(databaseUrl)

      const snapshot: Effect.Effect<Snapshot> = Effect.gen(function* () {
        const states = yield* sql<{ state: string; count: number }>`select state, count(*)::int as count from vms group by state`
        const claimed = yield* sql<{ name: string; state: string }>`
          select v.name, e.state from executions e join vms v on v.id = e.vm_id
          where e.claimed_by is not null and e.finished_at is null order by v.name`
        return { vmStates: Object.fromEntries(states.map((row) => [row.state, row.count])), claimed }
      }).pipe(Effect.orDie)

      const requested: Array<{ readonly id: RequestId; readonly names: ReadonlyArray<string> }> = []
      const postRequests = (controller: ControllerProcess, round: number) =>
        Effect.forEach(Array.from({ length: requestsPerRound }, (_, index) => index), (index) =>
          Effect.gen(function* () {
            const answer = yield* httpJson(`${controller.baseUrl}/v1/vm-requests`, { method: "POST", body: vmRequest(round, index), token })
            expect(answer.status).toBe(202)
            const accepted = yield* Schema.decodeUnknown(VmRequestAccepted)(answer.body).pipe(Effect.orDie)
            requested.push({ id: accepted.id, names: accepted.vms.map((vm) => vm.name) })
          }), { discard: true })

      const timings: Array<string> = []
      const kills: Array<{ readonly trip: Trip; readonly snapshot: Snapshot }> = []
      for (let round = 0; round < rounds; round++) {
        // Submissions wait at the proxy until this round's requests are all accepted, so that the
        // kill cannot cut a VM request itself (its answer would be ambiguous to this test).
        yield* proxy.hold
        const spawnedAt = Date.now()
        const controller = yield* spawnController({ env })
        timings.push(`start ${Date.now() - spawnedAt} ms`)
        yield* postRequests(controller, round)
        const tripped = yield* proxy.armAfter(killOnSubmission, controller.killNow)
        yield* proxy.release
        const trip = yield* tripped.pipe(
          Effect.timeoutFail({ duration: "20 seconds", onTimeout: () => new Error(`round ${round}: the kill never tripped\n${controller.output()}`) }),
          Effect.orDie
        )
        timings.push(`kill ${Date.now() - spawnedAt} ms`)
        const exited = yield* controller.exited
        expect(exited.signal).toBe("SIGKILL")
        kills.push({ trip, snapshot: yield* snapshot })
      }

      // A last controller must finish everything the dead ones left behind.
      const lastSpawnedAt = Date.now()
      const last = yield* spawnController({ env })
      timings.push(`last start ${Date.now() - lastSpawnedAt} ms`)
      const client = yield* FleetClient.make({ baseUrl: last.baseUrl, token })
      const settled = yield* Effect.forEach(requested, (request) =>
        waitForRequest(client, request.id, { timeout: "30 seconds", initialDelay: "100 millis", maxDelay: "500 millis" }), {
        concurrency: "unbounded"
      }).pipe(Effect.orDie)
      timings.push(`settled ${Date.now() - lastSpawnedAt} ms`)

      const requestedNames = requested.flatMap((request) => request.names).sort()
      expect(requestedNames).toHaveLength(rounds * requestsPerRound * vmsPerRequest)
      expect(new Set(requestedNames).size).toBe(requestedNames.length)

      // Every requested VM ended ready.
      for (const request of settled) {
        expect(request.state).toBe("ready")
        expect(request.counts.ready).toBe(vmsPerRequest)
      }
      const vms = yield* sql<{ name: string; state: string; executions: number; submissions: number; states: Array<string> }>`
        select v.name, v.state,
               (select count(*) from executions e where e.vm_id = v.id)::int as executions,
               (select max(e.submissions) from executions e where e.vm_id = v.id)::int as submissions,
               (select array_agg(ev.to_state order by ev.id) from events ev where ev.vm_id = v.id and ev.kind = 'vm.state') as states
        from vms v order by v.name`.pipe(Effect.orDie)
      expect(vms.map((vm) => vm.name)).toEqual(requestedNames)
      expect(vms.filter((vm) => vm.state !== "ready")).toEqual([])

      // The ledger and the database name exactly the same VMs: none lost, none invented, each created once.
      const ledger = yield* simulator.ledger
      const ledgerNames = ledger.vms.map((vm) => vm.name).sort()
      expect(ledgerNames).toEqual(requestedNames)
      expect(ledger.vms.filter((vm) => vm.destroyedAt !== null)).toEqual([])
      const creations = new Map<string, number>()
      for (const execution of ledger.executions) {
        if (execution.effect === "created" && execution.vmName !== null) {
          creations.set(execution.vmName, (creations.get(execution.vmName) ?? 0) + 1)
        }
      }
      expect([...creations.entries()].filter(([, count]) => count !== 1)).toEqual([])
      expect(creations.size).toBe(requestedNames.length)

      // One execution row per VM, and each VM's history is the plain creation path: the crashes
      // neither skipped a state change nor recorded one twice.
      for (const vm of vms) {
        expect({ name: vm.name, executions: vm.executions }).toEqual({ name: vm.name, executions: 1 })
        expect({ name: vm.name, states: vm.states }).toEqual({ name: vm.name, states: ["pending", "submitting", "provisioning", "ready"] })
      }

      // The kills mattered. Each one cut a controller with executions claimed and unfinished
      // (submissions and polls in flight), and each left a VM that proctor was creating while the
      // database only knew the intent: it was submitted again, under the same name, and exists once.
      expect(kills).toHaveLength(rounds)
      const ledgerByName = new Map(ledger.vms.map((vm) => [vm.name, vm]))
      const vmByName = new Map(vms.map((vm) => [vm.name, vm]))
      for (const { snapshot: atKill, trip } of kills) {
        expect(atKill.claimed.length).toBeGreaterThan(0)
        expect(atKill.claimed).toContainEqual({ name: trip.vmName, state: "submitting" })
        expect(ledgerByName.get(trip.vmName)?.createSubmissions).toBeGreaterThanOrEqual(2)
        expect(vmByName.get(trip.vmName)?.submissions).toBeGreaterThanOrEqual(2)
        expect(ledger.executions.filter((execution) => execution.vmName === trip.vmName).length).toBeGreaterThanOrEqual(2)
      }
      const midFlight = kills.reduce(
        (sum, { snapshot: atKill }) => sum + (atKill.vmStates["submitting"] ?? 0) + (atKill.vmStates["provisioning"] ?? 0),
        0
      )
      expect(midFlight).toBeGreaterThan(0)
      yield* Effect.logInfo(
        `crash test: ${kills.length} kills; at each kill: ` +
          kills.map(({ snapshot: atKill, trip }) =>
            `${JSON.stringify(atKill.vmStates)} with ${atKill.claimed.length} claimed (tripped on ${trip.vmName})`
          ).join("; ") +
          `; ledger: ${ledger.vms.length} VMs, ${ledger.executions.length} executions, ` +
          `${ledger.vms.filter((vm) => vm.createSubmissions > 1).length} VMs submitted more than once; ${timings.join(", ")}`
      )
    }), 120_000)
})
