import { SqlClient } from "@effect/sql"
import { Effect, type Metric } from "effect"
import { RunState, StepState } from "../executor/Domain.js"
import { VmState } from "../vms/Domain.js"
import { executionsInFlight, labelSet, runsByState, stepsByState, vmsByState } from "./Metrics.js"

/** A gauge by one label, counted from one table at scrape time. */
interface DatabaseGauge {
  readonly gauge: Metric.Metric.Gauge<number>
  readonly label: string
  /** Every value of the label, reported as 0 when no row has it. */
  readonly known: ReadonlyArray<string>
  readonly table: string
  /** A literal SQL expression giving the label's value, and an optional condition. */
  readonly column: string
  readonly where?: string
}

/**
 * Gauges read from the database at scrape time, so that they are the same whichever
 * controller is scraped: VMs by state, unfinished proctor executions by kind, runs and steps by
 * state. Every state of each state machine is reported, 0 when nothing is in it. One query per
 * scrape; a table that does not exist is left out.
 *
 * Another part of fleet adds a gauge of its own with one more entry here.
 */
const gauges: ReadonlyArray<DatabaseGauge> = [
  { gauge: vmsByState, label: "state", known: VmState.literals, table: "vms", column: "state" },
  {
    gauge: executionsInFlight,
    label: "kind",
    known: ["create", "decommission", "check"],
    table: "executions",
    column: "kind",
    where: "state in ('pending', 'submitting', 'running')"
  },
  { gauge: runsByState, label: "state", known: RunState.literals, table: "runs", column: "state" },
  { gauge: stepsByState, label: "state", known: StepState.literals, table: "steps", column: "state" }
]

export const collectDatabaseGauges = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const seen = new Map<Metric.Metric.Gauge<number>, Set<string>>()

  /** The gauges whose tables exist, asked until it has been answered once (a scrape then costs one query). */
  let known: ReadonlyArray<DatabaseGauge> | undefined
  const present = Effect.suspend(() =>
    known !== undefined
      ? Effect.succeed(known)
      : Effect.filter(gauges, (gauge) =>
        Effect.map(sql<{ exists: boolean }>`select to_regclass(${gauge.table}) is not null as exists`, ([row]) => row?.exists === true)
      ).pipe(Effect.tap((found) => Effect.sync(() => (known = found))))
  )

  return Effect.gen(function* () {
    const selected = yield* present
    if (selected.length === 0) return
    const rows = yield* sql.unsafe<{ gauge: number; value: string; count: number }>(
      selected.map((gauge, index) =>
        `select ${index} as gauge, ${gauge.column}::text as value, count(*)::int as count from ${gauge.table}` +
        `${gauge.where === undefined ? "" : ` where ${gauge.where}`} group by ${gauge.column}`
      ).join(" union all ")
    )
    selected.forEach((gauge, index) => {
      const values = seen.get(gauge.gauge) ?? new Set(gauge.known)
      seen.set(gauge.gauge, values)
      const counts = new Map(rows.filter((row) => row.gauge === index).map((row) => [row.value, row.count]))
      for (const value of counts.keys()) values.add(value)
      for (const value of values) gauge.gauge.unsafeUpdate(counts.get(value) ?? 0, labelSet([gauge.label, value]))
    })
  }).pipe(
    Effect.catchAllCause((cause) => Effect.logWarning("could not read the database gauges for /metrics", cause))
  )
})
