/**
 * `fleet demo seed`: writes a synthetic inventory (Synthetic.ts) into the database, so that the
 * example plans in plans/ have something to work on. Set-based: rows go in batches, one
 * statement per batch for the VMs and one for their events, all in one transaction.
 *
 * Demo VMs are ordinary rows of `vms` marked `created_by = 'demo-seed'`, with no VM request and no
 * proctor execution behind them. Ready and decommissioned VMs are written as they are; failed and
 * timed-out ones too, so that reports show skipped fleets. VMs the generator has still pending or
 * provisioning are written as timed_out: with no proctor execution behind them, they would never
 * settle, and their fleets could never be planned.
 *
 * Their ids are version 7 UUIDs like fleet's own, and each VM's created_at is the time its id
 * starts with (backdated: see Synthetic.ts), so that ordering by id is ordering by creation.
 */
import { SqlClient, SqlError } from "@effect/sql"
import { Effect, Schema } from "effect"
import type { CatalogData } from "../catalog/Catalog.js"
import { Conflict } from "../common/Errors.js"
import type { InventoryVm } from "../planner/Domain.js"
import { generateInventory } from "./Synthetic.js"
import { uuidv7Time } from "../common/Ids.js"

/** The `created_by` of every demo VM (and the actor of their events). */
export const demoActor = "demo-seed"

export interface SeedOptions {
  readonly apps: number
  readonly seed: number | string
  /** Remove the demo VMs there are first. Without it, seeding refuses when there are any. */
  readonly reset: boolean
  /** Run once seeding goes ahead (there are no demo VMs, or reset), before the inventory is generated. */
  readonly starting?: Effect.Effect<void>
  /** VMs per INSERT. */
  readonly batchSize?: number
  /** Called after each batch, with the VMs written so far and the total. */
  readonly progress?: (written: number, total: number) => Effect.Effect<void>
}

export interface SeedResult {
  readonly removed: number
  readonly vms: number
  readonly live: number
  readonly fleets: number
  readonly applications: number
  readonly byState: Readonly<Record<string, number>>
}

const stateOf = (vm: InventoryVm): { readonly state: string; readonly reason: string | null } => {
  switch (vm.state) {
    case "failed":
      return { state: "failed", reason: "demo data: proctor reported the creation failed" }
    case "timed_out":
      return { state: "timed_out", reason: "demo data: no final state from proctor within the deadline" }
    case "pending":
    case "submitting":
    case "provisioning":
    case "decommissioning":
      return { state: "timed_out", reason: `demo data: stuck while ${vm.state} (written as timed_out: no proctor execution follows demo VMs)` }
    default:
      return { state: vm.state, reason: null }
  }
}

const isViolation = (code: string) => (error: unknown): boolean =>
  error instanceof SqlError.SqlError && (error.cause as { code?: unknown } | undefined)?.code === code

const CountRow = Schema.Array(Schema.Struct({ count: Schema.Number }))

/** The created_at of a VM with this id: the time a version 7 UUID starts with, so that the two agree; null (the time of the insert) for other ids. */
const createdAtOf = (id: string): string | null => {
  const time = uuidv7Time(id)
  return time === undefined ? null : new Date(time).toISOString()
}

/**
 * Inserts VMs (ids and names as given) with one event each, in batches; the caller decides the
 * transaction. A VM whose id is a version 7 UUID is created at the time in its id (see createdAtOf).
 */
export const insertVms = (
  vms: ReadonlyArray<InventoryVm>,
  options: {
    readonly createdBy: string
    readonly reason: string
    readonly batchSize?: number
    readonly progress?: (written: number, total: number) => Effect.Effect<void>
    /** One `vm.state` event per VM (the default), so each VM's history says where it came from. */
    readonly events?: boolean
  }
) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const size = Math.max(1, options.batchSize ?? 5_000)
    for (let start = 0; start < vms.length; start += size) {
      const batch = vms.slice(start, start + size).map((vm) => {
        const { reason, state } = stateOf(vm)
        return {
          id: vm.id,
          name: vm.name,
          application: vm.application,
          environment: vm.environment,
          stack: vm.stack,
          os_version: vm.osVersion,
          machine_type: vm.machineType,
          state,
          reason,
          created_at: createdAtOf(vm.id)
        }
      })
      const rows = JSON.stringify(batch)
      yield* sql`
        insert into vms (id, request_id, name, application, environment, stack, os_version, machine_type, metadata, state, reason,
                         created_by, created_at, ready_at, decommissioned_at)
        select id, null, name, application, environment, stack, os_version, machine_type,
               jsonb_build_object('source', ${options.createdBy}::text), state, reason, ${options.createdBy}::text,
               coalesce(created_at, now()),
               case when state in ('ready', 'decommissioning', 'decommissioned') then now() end,
               case when state = 'decommissioned' then now() end
        from jsonb_to_recordset(${rows}::jsonb)
          as t(id uuid, name text, application text, environment text, stack text, os_version text, machine_type text,
               state text, reason text, created_at timestamptz)`
      if (options.events !== false) yield* sql`
        insert into events (actor, kind, application, vm_id, from_state, to_state, reason)
        select ${options.createdBy}::text, 'vm.state', application, id, null, state, coalesce(reason, ${options.reason}::text)
        from jsonb_to_recordset(${rows}::jsonb) as t(id uuid, application text, state text, reason text)`
      if (options.progress !== undefined) yield* options.progress(Math.min(start + size, vms.length), vms.length)
    }
  })

/** Demo VMs in the database. */
export const countDemoVms = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const rows = yield* sql`select count(*)::int as count from vms where created_by = ${demoActor}`
  return (yield* Schema.decodeUnknown(CountRow)(rows))[0]?.count ?? 0
}).pipe(Effect.orDie)

/** Removes every demo VM with its events and executions; a Conflict when other rows (a run's steps) still refer to them. */
export const removeDemoVms = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql`delete from events where vm_id in (select id from vms where created_by = ${demoActor})`
  yield* sql`delete from executions where vm_id in (select id from vms where created_by = ${demoActor})`
  const rows = yield* sql`with gone as (delete from vms where created_by = ${demoActor} returning 1) select count(*)::int as count from gone`
  return (yield* Schema.decodeUnknown(CountRow)(rows))[0]?.count ?? 0
}).pipe(
  Effect.catchIf(isViolation("23503"), () =>
    Effect.fail(new Conflict({
      message: "demo VMs are still referred to by other rows (the steps of a run, most likely), so they cannot be removed; " +
        "seed into a fresh database instead (another FLEET_DATA_DIR or DATABASE_URL)"
    }))),
  Effect.catchTag("SqlError", Effect.die),
  Effect.catchTag("ParseError", Effect.die)
)

/** Generates the demo inventory and writes it: see the module comment. */
export const seedDemo = (catalog: CatalogData, options: SeedOptions) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    return yield* Effect.gen(function* () {
      // One seeder at a time; a second one waits, then finds the first one's VMs.
      yield* sql`select pg_advisory_xact_lock(hashtext('fleet demo seed'))`
      const existing = yield* countDemoVms
      if (existing > 0 && !options.reset) {
        return yield* Effect.fail(new Conflict({
          message: `the database already has ${existing.toLocaleString("en-US")} demo VMs; run with --reset to replace them (or \`fleet demo clear\` to remove them)`
        }))
      }
      if (options.starting !== undefined) yield* options.starting
      const vms = generateInventory(options.seed, options.apps, catalog)
      const removed = existing > 0 ? yield* removeDemoVms : 0
      yield* insertVms(vms, {
        createdBy: demoActor,
        reason: `demo data (fleet demo seed --apps ${options.apps} --seed ${options.seed})`,
        ...(options.batchSize === undefined ? {} : { batchSize: options.batchSize }),
        ...(options.progress === undefined ? {} : { progress: options.progress })
      })
      return { removed, vms }
    }).pipe(
      sql.withTransaction,
      Effect.catchIf(isViolation("23505"), () =>
        Effect.fail(new Conflict({ message: "a demo VM's name or id is taken by a VM already in the database; try another --seed" }))),
      Effect.catchTag("SqlError", Effect.die),
      Effect.map(({ removed, vms }): SeedResult => {
        const live = vms.filter((vm) => vm.state !== "decommissioned")
        const byState: Record<string, number> = {}
        for (const vm of vms) {
          const { state } = stateOf(vm)
          byState[state] = (byState[state] ?? 0) + 1
        }
        return {
          removed,
          vms: vms.length,
          live: live.length,
          fleets: new Set(live.map((vm) => `${vm.application}/${vm.environment}/${vm.stack}`)).size,
          applications: new Set(vms.map((vm) => vm.application)).size,
          byState
        }
      })
    )
  })

/** Removes the demo VMs (and their events): `fleet demo clear`. */
export const clearDemo = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  return yield* removeDemoVms.pipe(sql.withTransaction, Effect.catchTag("SqlError", Effect.die))
})
