import { SqlClient } from "@effect/sql"
import { Effect, Schema } from "effect"
import type { ApplicationName, EnvironmentName, MachineType, OsVersion, StackName } from "../catalog/Domain.js"
import { type InventorySnapshot, type InventoryVm, VmState } from "../planner/Domain.js"
import { type VmFilter, vmFilterClauses } from "../vms/Repo.js"
import { type Dimension, InventoryGroup } from "./Domain.js"

const isVmState = Schema.is(VmState)

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
        ...vmFilterClauses(sql, filter),
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

    /**
     * Every live (not decommissioned) VM, in the shape the planner reads: one query for the whole
     * inventory, not one per fleet. Rows come back as arrays (no per-row objects from the driver,
     * no name transformation), which keeps 100,000 VMs well under a second.
     */
    const snapshot = Effect.gen(function* () {
      const rows = yield* sql`
        select id::text, name, application, environment, stack, os_version, machine_type, state
        from vms where state <> 'decommissioned'`.values
      const vms = new Array<InventoryVm>(rows.length)
      for (let index = 0; index < rows.length; index++) {
        const row = rows[index]!
        const state = row[7]
        if (!isVmState(state)) return yield* Effect.dieMessage(`VM ${String(row[0])} has an unknown state ${String(state)}`)
        vms[index] = {
          id: row[0] as string,
          name: row[1] as string,
          application: row[2] as ApplicationName,
          environment: row[3] as EnvironmentName,
          stack: row[4] as StackName,
          osVersion: row[5] as OsVersion,
          machineType: row[6] as MachineType,
          state
        }
      }
      const result: InventorySnapshot = { vms }
      return result
    }).pipe(Effect.orDie, Effect.withSpan("InventoryRepo.snapshot"))

    return { counts, snapshot } as const
  })
}) {}
