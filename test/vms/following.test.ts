import { SqlClient } from "@effect/sql"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import { layerFromUrl } from "../../src/db/Database.js"
import { CreateVmRequest } from "../../src/vms/Domain.js"
import { waitFor } from "../executor-crash/support.js"
import { freshDatabase } from "../support/Database.js"
import { startFleet } from "../support/Fleet.js"

const oneVm = new CreateVmRequest({
  application: "billing",
  environment: "staging",
  stack: "go",
  osVersion: "ubuntu-24.04",
  machineType: "e2-small",
  count: 1
})

interface ExecutionClaim {
  readonly state: string
  readonly claimed: boolean
  /** Milliseconds from now until the execution is due to anyone (negative: due already). */
  readonly dueInMs: number | null
  readonly polls: number
}

const readExecution = (databaseUrl: string) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql<ExecutionClaim>`
      select state, claimed_by is not null as claimed, polls,
             (extract(epoch from (due_at - now())) * 1000)::float8 as due_in_ms
      from executions`
    expect(rows).toHaveLength(1)
    return rows[0]!
  }).pipe(Effect.provide(layerFromUrl(Redacted.make(databaseUrl), 1)), Effect.scoped, Effect.orDie)

const until = (databaseUrl: string, state: string) =>
  waitFor(readExecution(databaseUrl), (execution) => execution.state === state, `the execution to be ${state}`, { timeoutMs: 10_000 })

describe("following an execution", () => {
  it.scopedLive("keeps the claim between a submission and a poll due within the lease, and polls once, when the execution has ended", () =>
    Effect.gen(function* () {
      const fleet = yield* startFleet({
        simulator: { durationMs: { create: 300, destroy: 20, check: 10 } },
        // The first poll comes after the execution has ended; the lease (5 s) is far longer.
        settings: { FLEET_POLL_INITIAL: "500 millis", FLEET_POLL_MAX: "2 seconds" }
      })
      yield* fleet.client.vms.createRequest({ payload: oneVm })
      const running = yield* until(fleet.databaseUrl, "running")
      // Still claimed by this controller, and due to others only a lease after its next look.
      expect(running.claimed).toBe(true)
      expect(running.dueInMs).toBeGreaterThan(4_000)
      const finished = yield* until(fleet.databaseUrl, "succeeded")
      expect(finished.claimed).toBe(false)
      expect(finished.dueInMs).toBeNull()
      expect(finished.polls).toBe(1)
      const stats = yield* fleet.simulator.stats
      expect(stats.status.ok).toBe(1)
    }))

  it.scopedLive("gives a kept claim up when the controller stops, so that the next one need not wait out the lease", () =>
    Effect.gen(function* () {
      const { url: databaseUrl } = yield* freshDatabase
      yield* Effect.scoped(
        Effect.gen(function* () {
          const fleet = yield* startFleet({
            databaseUrl,
            simulator: { durationMs: { create: 10_000, destroy: 20, check: 10 } },
            settings: { FLEET_POLL_INITIAL: "2 seconds", FLEET_POLL_MAX: "2 seconds" }
          })
          yield* fleet.client.vms.createRequest({ payload: oneVm })
          const running = yield* until(fleet.databaseUrl, "running")
          expect(running.claimed).toBe(true)
        })
      )
      // The controller has stopped (its scope closed) while it waited for the next look.
      const released = yield* readExecution(databaseUrl)
      expect(released.state).toBe("running")
      expect(released.claimed).toBe(false)
      expect(released.dueInMs).toBeLessThanOrEqual(0)
    }))
})
