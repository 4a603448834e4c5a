/**
 * The SQL behind deprecation policies and saved plans. Database failures are defects here; rows
 * that no longer decode (edited by hand, say) are defects too, with a message saying which.
 */
import { SqlClient } from "@effect/sql"
import { Effect, Option, Schema } from "effect"
import type { OsVersion } from "../catalog/Domain.js"
import { DeprecationPolicy } from "./Domain.js"
import type { PlanId, PolicyRow } from "./Records.js"

const PolicyColumns = Schema.Struct({
  osVersion: Schema.String,
  deprecatedFrom: Schema.String,
  endOfLife: Schema.String,
  replacement: Schema.NullOr(Schema.String),
  note: Schema.NullOr(Schema.String),
  link: Schema.NullOr(Schema.String),
  updatedBy: Schema.String,
  updatedAt: Schema.DateFromSelf
})

const decodePolicy = Schema.decodeUnknown(DeprecationPolicy)

const toPolicyRow = (row: typeof PolicyColumns.Type) =>
  decodePolicy({
    osVersion: row.osVersion,
    deprecatedFrom: row.deprecatedFrom,
    endOfLife: row.endOfLife,
    ...(row.replacement === null ? {} : { replacement: row.replacement }),
    ...(row.note === null ? {} : { note: row.note }),
    ...(row.link === null ? {} : { link: row.link })
  }).pipe(
    Effect.map((policy): PolicyRow => ({ osVersion: policy.osVersion as OsVersion, policy, updatedBy: row.updatedBy, updatedAt: row.updatedAt })),
    Effect.orDieWith((error) => new Error(`the deprecation policy row for ${row.osVersion} does not decode: ${error.message}`))
  )

export class PolicyRepo extends Effect.Service<PolicyRepo>()("fleet/PolicyRepo", {
  effect: Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient

    const select = sql`
      select os_version, deprecated_from::text as deprecated_from, end_of_life::text as end_of_life,
             replacement, note, link, updated_by, updated_at
      from deprecation_policies`

    /** Every policy, by OS version. */
    const all = Effect.gen(function* () {
      const rows = yield* sql`${select} order by os_version`
      const decoded = yield* Schema.decodeUnknown(Schema.Array(PolicyColumns))(rows)
      return yield* Effect.forEach(decoded, toPolicyRow)
    }).pipe(Effect.orDie)

    const values = (policy: DeprecationPolicy, by: string) => [
      policy.osVersion,
      policy.deprecatedFrom,
      policy.endOfLife,
      policy.replacement ?? null,
      policy.note ?? null,
      policy.link ?? null,
      by
    ] as const

    /** Inserts the policies whose OS version has no row yet; returns the OS versions inserted. Existing rows are left alone. */
    const seed = (policies: ReadonlyArray<DeprecationPolicy>, by: string) =>
      Effect.forEach(policies, (policy) => {
        const [os, from, end, replacement, note, link, actor] = values(policy, by)
        return sql<{ osVersion: string }>`
          insert into deprecation_policies (os_version, deprecated_from, end_of_life, replacement, note, link, updated_by)
          values (${os}, ${from}::date, ${end}::date, ${replacement}, ${note}, ${link}, ${actor})
          on conflict (os_version) do nothing
          returning os_version`
      }).pipe(
        Effect.map((results) => results.flat().map((row) => row.osVersion)),
        sql.withTransaction,
        Effect.orDie
      )

    /** Creates or replaces the policy of one OS version. */
    const upsert = (policy: DeprecationPolicy, by: string) =>
      Effect.gen(function* () {
        const [os, from, end, replacement, note, link, actor] = values(policy, by)
        yield* sql`
          insert into deprecation_policies (os_version, deprecated_from, end_of_life, replacement, note, link, updated_by, updated_at)
          values (${os}, ${from}::date, ${end}::date, ${replacement}, ${note}, ${link}, ${actor}, now())
          on conflict (os_version) do update set
            deprecated_from = excluded.deprecated_from, end_of_life = excluded.end_of_life,
            replacement = excluded.replacement, note = excluded.note, link = excluded.link,
            updated_by = excluded.updated_by, updated_at = excluded.updated_at`
        const rows = yield* sql`${select} where os_version = ${os}`
        const [row] = yield* Schema.decodeUnknown(Schema.Array(PolicyColumns))(rows)
        return yield* toPolicyRow(row!)
      }).pipe(Effect.orDie)

    /** Within a transaction: no other writer changes policies until it ends (so a check of the whole set stays true). */
    const lockForWrite = sql`lock table deprecation_policies in share row exclusive mode`.pipe(Effect.asVoid, Effect.orDie)

    return { all, seed, upsert, lockForWrite } as const
  })
}) {}

// ---------------------------------------------------------------------------------------------
// Saved plans
// ---------------------------------------------------------------------------------------------

export interface NewPlanRow {
  readonly id: PlanId
  readonly name: string
  readonly source: string | null
  readonly spec: unknown
  readonly specText: string
  readonly specHash: string
  readonly plan: unknown
  readonly planHash: string
  readonly inventoryDigest: string
  readonly fleetVms: ReadonlyArray<readonly [string, string, string, string]>
  readonly asOf: Date
  readonly fleetsMoving: number
  readonly vmsMoving: number
  readonly fleetsSkipped: number
  readonly steps: number
  readonly waves: number
  readonly estimatedSeconds: number
  readonly createdBy: string
}

export const PlanSummaryRow = Schema.Struct({
  id: Schema.String,
  name: Schema.String,
  source: Schema.NullOr(Schema.String),
  asOf: Schema.DateFromSelf,
  specHash: Schema.String,
  planHash: Schema.String,
  inventoryDigest: Schema.String,
  fleetsMoving: Schema.Number,
  vmsMoving: Schema.Number,
  fleetsSkipped: Schema.Number,
  steps: Schema.Number,
  waves: Schema.Number,
  estimatedSeconds: Schema.Number,
  createdBy: Schema.String,
  createdAt: Schema.DateFromSelf
})
export type PlanSummaryRow = typeof PlanSummaryRow.Type

export const PlanRow = Schema.Struct({
  ...PlanSummaryRow.fields,
  spec: Schema.Unknown,
  specText: Schema.String,
  plan: Schema.Unknown
})
export type PlanRow = typeof PlanRow.Type

const summaryColumns = (sql: SqlClient.SqlClient) => sql`
  id::text as id, name, source, as_of, spec_hash, plan_hash, inventory_digest, fleets_moving, vms_moving,
  fleets_skipped, steps, waves, estimated_seconds, created_by, created_at`

export class PlanRepo extends Effect.Service<PlanRepo>()("fleet/PlanRepo", {
  effect: Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient

    const insert = (row: NewPlanRow) =>
      sql`
        insert into plans (id, name, source, spec, spec_text, spec_hash, plan, plan_hash, inventory_digest, fleet_vms, as_of,
                           fleets_moving, vms_moving, fleets_skipped, steps, waves, estimated_seconds, created_by)
        values (${row.id}, ${row.name}, ${row.source}, ${JSON.stringify(row.spec)}::jsonb, ${row.specText}, ${row.specHash},
                ${JSON.stringify(row.plan)}::jsonb, ${row.planHash}, ${row.inventoryDigest}, ${JSON.stringify(row.fleetVms)}::jsonb,
                ${row.asOf}, ${row.fleetsMoving}, ${row.vmsMoving}, ${row.fleetsSkipped}, ${row.steps}, ${row.waves},
                ${row.estimatedSeconds}, ${row.createdBy})
        returning created_at`.pipe(
        Effect.flatMap((rows) => Schema.decodeUnknown(Schema.Array(Schema.Struct({ createdAt: Schema.DateFromSelf })))(rows)),
        Effect.map((rows) => rows[0]!.createdAt),
        Effect.orDie
      )

    const find = (id: PlanId) =>
      sql`select ${summaryColumns(sql)}, spec, spec_text, plan from plans where id = ${id}`.pipe(
        Effect.flatMap(Schema.decodeUnknown(Schema.Array(PlanRow))),
        Effect.map((rows) => Option.fromNullable(rows[0])),
        Effect.orDie
      )

    /** Newest first. */
    const list = (limit: number) =>
      sql`select ${summaryColumns(sql)} from plans order by created_at desc, id desc limit ${limit}`.pipe(
        Effect.flatMap(Schema.decodeUnknown(Schema.Array(PlanSummaryRow))),
        Effect.orDie
      )

    /** The rows the plan's inventory digest covers: [id, name, state, osVersion] of every VM of its fleets when it was made. */
    const fleetVms = (id: PlanId) =>
      sql<{ fleetVms: unknown }>`select fleet_vms from plans where id = ${id}`.pipe(
        Effect.flatMap((rows) =>
          Schema.decodeUnknown(Schema.Array(Schema.Tuple(Schema.String, Schema.String, Schema.String, Schema.String)))(rows[0]?.fleetVms ?? [])),
        Effect.orDie
      )

    return { insert, find, list, fleetVms } as const
  })
}) {}
