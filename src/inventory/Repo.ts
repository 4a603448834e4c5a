import { SqlClient } from "@effect/sql"
import { Effect, Schema } from "effect"
import type { VmFilter } from "../vms/Repo.js"
import { type Dimension, InventoryGroup } from "./Domain.js"

const columns: Record<Dimension, string> = {
  application: "application",
  environment: "environment",
  stack: "stack",
  osVersion: "os_version",
  state: "state"
}

/** Set-based reads of the whole inventory. */
export class InventoryRepo extends Effect.Service<InventoryRepo>()("fleet/InventoryRepo", {
  effect: Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient

    const where = (filter: VmFilter, includeDecommissioned: boolean) => {
      const clauses = [
        ...(filter.application === undefined ? [] : [sql`application = ${filter.application}`]),
        ...(filter.environment === undefined ? [] : [sql`environment = ${filter.environment}`]),
        ...(filter.stack === undefined ? [] : [sql`stack = ${filter.stack}`]),
        ...(filter.osVersion === undefined ? [] : [sql`os_version = ${filter.osVersion}`]),
        ...(filter.state === undefined ? [] : [sql`state = ${filter.state}`]),
        ...(includeDecommissioned || filter.state === "decommissioned" ? [] : [sql`state <> 'decommissioned'`])
      ]
      return clauses.length === 0 ? sql`` : sql`where ${sql.and(clauses)}`
    }

    /** VM counts grouped by the given dimensions, largest groups first. */
    const counts = (groupBy: ReadonlyArray<Dimension>, filter: VmFilter, includeDecommissioned: boolean) =>
      Effect.gen(function* () {
        const selected = groupBy.map((dimension) => sql.literal(columns[dimension]))
        const rows = yield* groupBy.length === 0
          ? sql<Record<string, unknown>>`select count(*)::int as count from vms ${where(filter, includeDecommissioned)}`
          : sql<Record<string, unknown>>`
              select ${sql.csv(selected)}, count(*)::int as count from vms ${where(filter, includeDecommissioned)}
              group by ${sql.csv(selected)} order by count desc, ${sql.csv(selected)}`
        return yield* Schema.decodeUnknown(Schema.Array(InventoryGroup))(rows)
      }).pipe(Effect.orDie)

    return { counts } as const
  })
}) {}
