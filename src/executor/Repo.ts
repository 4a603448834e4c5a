import { SqlClient, SqlError, SqlSchema } from "@effect/sql"
import { Data, Effect, Option, Schema } from "effect"
import { ExecutionRecordId, VmId, VmState } from "../vms/Domain.js"
import { finishedStepStates, PauseReason, RunId, RunState, RunTrigger, StepId, StepState } from "./Domain.js"

const Timestamp = Schema.DateFromSelf

/** Every column of runs but the (large) plan and report. */
const runColumns = "id, plan_id, name, state, pause_reason, reason, trigger, current_wave, waves, gates, max_in_flight, " +
  "max_fleets_in_parallel, bake_seconds, allowed_failures, failure_action, failures, rollback_on_abort, fire_at, " +
  "window_ends_at, created_by, created_at, updated_at, finished_at"

export const RunRow = Schema.Struct({
  id: RunId,
  planId: Schema.String,
  name: Schema.String,
  state: RunState,
  pauseReason: Schema.NullOr(PauseReason),
  reason: Schema.NullOr(Schema.String),
  trigger: RunTrigger,
  currentWave: Schema.Int,
  waves: Schema.Int,
  gates: Schema.Array(Schema.Literal("none", "previous-complete", "approval")),
  maxInFlight: Schema.Int,
  maxFleetsInParallel: Schema.Int,
  bakeSeconds: Schema.Int,
  allowedFailures: Schema.Int,
  failureAction: Schema.Literal("pause", "abort"),
  failures: Schema.Int,
  rollbackOnAbort: Schema.Boolean,
  fireAt: Schema.NullOr(Timestamp),
  windowEndsAt: Schema.NullOr(Timestamp),
  createdBy: Schema.String,
  createdAt: Timestamp,
  updatedAt: Timestamp,
  finishedAt: Schema.NullOr(Timestamp)
})
export type RunRow = typeof RunRow.Type

export const StepRow = Schema.Struct({
  id: StepId,
  runId: RunId,
  index: Schema.Int,
  wave: Schema.Int,
  fleet: Schema.String,
  application: Schema.String,
  environment: Schema.String,
  stack: Schema.String,
  fleetConcurrency: Schema.Int,
  oldVmId: VmId,
  oldVmName: Schema.String,
  fromOs: Schema.String,
  targetOs: Schema.String,
  machineType: Schema.String,
  newVmId: Schema.NullOr(VmId),
  newVmName: Schema.NullOr(Schema.String),
  state: StepState,
  reason: Schema.NullOr(Schema.String),
  /** A queued step: the step whose finishing starts its creation (none when held). */
  afterStepId: Schema.NullOr(StepId),
  bakeUntil: Schema.NullOr(Timestamp),
  startedAt: Schema.NullOr(Timestamp),
  finishedAt: Schema.NullOr(Timestamp)
})
export type StepRow = typeof StepRow.Type

const stepColumns = "id, run_id, index, wave, fleet, application, environment, stack, fleet_concurrency, old_vm_id, old_vm_name, " +
  "from_os, target_os, machine_type, new_vm_id, new_vm_name, state, reason, after_step_id, bake_until, started_at, finished_at"

/** A pending step with what its replacement is requested with: the old VM's metadata. */
export const PendingStep = Schema.Struct({
  ...StepRow.fields,
  oldVmMetadata: Schema.Record({ key: Schema.String, value: Schema.String })
})
export type PendingStep = typeof PendingStep.Type

/** The run's steps counted by wave and state, and the fleets with a step started and one unfinished. */
export interface StepTally {
  readonly counts: ReadonlyArray<{ readonly wave: number; readonly state: StepState; readonly count: number }>
  readonly fleetsInProgress: ReadonlyArray<string>
}

/** A StepTally from the run's steps counted by wave, state and fleet. */
export const tallySteps = (rows: ReadonlyArray<{ readonly wave: number; readonly state: StepState; readonly fleet: string; readonly count: number }>): StepTally => {
  const counts = new Map<string, { wave: number; state: StepState; count: number }>()
  const started = new Set<string>()
  const unfinished = new Set<string>()
  for (const row of rows) {
    const key = `${row.wave} ${row.state}`
    const entry = counts.get(key)
    if (entry === undefined) counts.set(key, { wave: row.wave, state: row.state, count: row.count })
    else entry.count += row.count
    if (row.state !== "pending") started.add(row.fleet)
    if (!finishedStepStates.includes(row.state)) unfinished.add(row.fleet)
  }
  return { counts: [...counts.values()], fleetsInProgress: [...started].filter((fleet) => unfinished.has(fleet)) }
}

/** A started step with what the executor needs to move it on: the states of its VMs and of its readiness check. */
export const ActiveStep = Schema.Struct({
  ...StepRow.fields,
  newVmState: Schema.NullOr(VmState),
  newVmReason: Schema.NullOr(Schema.String),
  oldVmState: VmState,
  oldVmReason: Schema.NullOr(Schema.String),
  checkState: Schema.NullOr(Schema.String),
  checkReason: Schema.NullOr(Schema.String),
  baked: Schema.Boolean,
  swapStarted: Schema.Boolean,
  /** Queued, and its creation started as the step ahead finished. */
  createStarted: Schema.Boolean,
  /** Queued, and its creation still waits (for the step ahead, or held). */
  createWaiting: Schema.Boolean,
  /** Queued, creating or decommissioning: its old VM's decommission, waiting (a swap) or under way; what a step queued behind it waits for. */
  aheadExecutionId: Schema.NullOr(ExecutionRecordId)
})
export type ActiveStep = typeof ActiveStep.Type

export interface NewRun {
  readonly id: RunId
  readonly planId: string
  readonly name: string
  readonly trigger: RunTrigger
  readonly plan: unknown
  readonly report: string
  readonly waves: number
  readonly gates: ReadonlyArray<"none" | "previous-complete" | "approval">
  readonly maxInFlight: number
  readonly maxFleetsInParallel: number
  readonly bakeSeconds: number
  readonly allowedFailures: number
  readonly failureAction: "pause" | "abort"
  readonly rollbackOnAbort: boolean
  readonly fireAt: Date | null
  readonly windowEndsAt: Date | null
  readonly createdBy: string
}

export type NewStep = Omit<StepRow, "runId" | "newVmId" | "newVmName" | "state" | "reason" | "afterStepId" | "bakeUntil" | "startedAt" | "finishedAt">

/** One of the run's fleets is already in another active run. */
export class FleetBusy extends Data.TaggedError("FleetBusy")<{ readonly fleet: string; readonly runId: string; readonly runState: string }> {}

/** A run for this plan and fire time exists already (another controller started it). */
export class AlreadyFired extends Data.TaggedError("AlreadyFired") {}

const violation = (error: unknown): { code?: string; constraint?: string; detail?: string } =>
  error instanceof SqlError.SqlError ? (error.cause as { code?: string; constraint?: string; detail?: string }) ?? {} : {}

export interface StepChange {
  readonly id: StepId
  readonly state: StepState
  readonly reason: string
  readonly newVmId?: VmId
  readonly newVmName?: string
  /** A queued step: the step ahead of it (none: held). */
  readonly afterStepId?: StepId | null
  readonly bakeSeconds?: number
}

/** The SQL behind runs and steps. Database failures are defects here. */
export class RunRepo extends Effect.Service<RunRepo>()("fleet/RunRepo", {
  effect: Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient

    /** The first of these fleets that an active run holds, and that run with its state. */
    const busyFleet = (fleets: ReadonlyArray<string>) =>
      Effect.map(
        sql<{ fleet: string; runId: string; state: string }>`
          select f.fleet, f.run_id, r.state from run_fleets f join runs r on r.id = f.run_id
          where f.fleet = any(${fleets}::text[]) order by f.fleet limit 1`,
        (rows) => Option.fromNullable(rows[0])
      )

    const insertRun = (run: NewRun, steps: ReadonlyArray<NewStep>, fleets: ReadonlyArray<string>) =>
      sql.withTransaction(
        Effect.gen(function* () {
          yield* sql`insert into runs ${
            sql.insert({
              ...run,
              plan: JSON.stringify(run.plan),
              gates: JSON.stringify(run.gates),
              state: "running",
              fireAt: run.fireAt,
              windowEndsAt: run.windowEndsAt
            })
          }`
          for (let offset = 0; offset < steps.length; offset += 1000) {
            yield* sql`insert into steps ${
              sql.insert(steps.slice(offset, offset + 1000).map((step) => ({ ...step, runId: run.id, state: "pending" })))
            }`
          }
          for (const fleet of fleets) {
            const taken = yield* sql<{ runId: string }>`
              insert into run_fleets (fleet, run_id) values (${fleet}, ${run.id})
              on conflict (fleet) do nothing returning run_id`
            if (taken.length === 0) {
              const holder = yield* busyFleet([fleet])
              return yield* Effect.fail(new FleetBusy({
                fleet,
                runId: Option.match(holder, { onNone: () => "?", onSome: (busy) => busy.runId }),
                runState: Option.match(holder, { onNone: () => "running", onSome: (busy) => busy.state })
              }))
            }
          }
          yield* sql`insert into events ${
            sql.insert({
              actor: run.createdBy,
              kind: "run.state",
              runId: run.id,
              fromState: null,
              toState: "running",
              reason: `${run.trigger} run of plan ${run.name}: ${steps.length} step(s) in ${fleets.length} fleet(s)`
            })
          }`
        })
      ).pipe(
        Effect.catchIf(
          (error) => error instanceof SqlError.SqlError && violation(error).code === "23505" && (violation(error).constraint ?? "").includes("fire"),
          () => Effect.fail(new AlreadyFired())
        ),
        Effect.catchTag("SqlError", Effect.die)
      )

    /** Locks an active run for this transaction, unless another controller holds it. */
    const lockRun = SqlSchema.findOne({
      Request: RunId,
      Result: RunRow,
      execute: (id) =>
        sql`select ${sql.literal(runColumns)} from runs where id = ${id} and state in ('running', 'paused', 'cancelling', 'aborting') for update skip locked`
    })

    /** Locks a run for a control action (pause, resume, cancel), waiting for a controller that is advancing it. */
    const lockRunForControl = SqlSchema.findOne({
      Request: RunId,
      Result: RunRow,
      execute: (id) => sql`select ${sql.literal(runColumns)} from runs where id = ${id} for update`
    })

    const findRun = SqlSchema.findOne({
      Request: RunId,
      Result: RunRow,
      execute: (id) => sql`select ${sql.literal(runColumns)} from runs where id = ${id}`
    })

    const listRuns = SqlSchema.findAll({
      Request: Schema.Int,
      Result: RunRow,
      execute: (limit) => sql`select ${sql.literal(runColumns)} from runs order by id desc limit ${limit}`
    })

    const activeRunIds = sql<{ id: RunId }>`
      select id from runs where state in ('running', 'paused', 'cancelling', 'aborting') order by id`.pipe(
      Effect.map((rows) => rows.map((row) => row.id))
    )

    const activeSteps = SqlSchema.findAll({
      Request: RunId,
      Result: ActiveStep,
      execute: (runId) =>
        sql`
          select s.*,
                 nv.state as new_vm_state, nv.reason as new_vm_reason,
                 ov.state as old_vm_state, ov.reason as old_vm_reason,
                 ce.state as check_state, ce.reason as check_reason,
                 coalesce(s.bake_until <= now(), false) as baked,
                 coalesce(sw.state not in ('waiting', 'cancelled'), false) as swap_started,
                 coalesce(cr.state not in ('waiting', 'cancelled'), false) as create_started,
                 coalesce(cr.state = 'waiting', false) as create_waiting,
                 dx.id as ahead_execution_id
          from steps s
          join vms ov on ov.id = s.old_vm_id
          left join vms nv on nv.id = s.new_vm_id
          left join lateral (
            select e.state, e.reason from executions e
            where s.state = 'checking' and e.vm_id = s.new_vm_id and e.kind = 'check'
            order by e.created_at desc limit 1
          ) ce on true
          left join lateral (
            select e.state from executions e
            where s.state in ('creating', 'queued') and e.vm_id = s.old_vm_id and e.kind = 'decommission' and e.after_vm_id = s.new_vm_id
            order by e.created_at desc limit 1
          ) sw on true
          left join lateral (
            select e.state from executions e
            where s.state = 'queued' and e.vm_id = s.new_vm_id and e.kind = 'create'
            order by e.created_at desc limit 1
          ) cr on true
          left join lateral (
            select e.id from executions e
            where s.state in ('queued', 'creating', 'decommissioning') and e.vm_id = s.old_vm_id and e.kind = 'decommission'
              and e.state in ('waiting', 'pending', 'submitting', 'running')
            order by e.created_at desc limit 1
          ) dx on true
          where s.run_id = ${runId} and s.state in ('queued', 'creating', 'checking', 'baking', 'decommissioning', 'rolling_back')
          order by s.index`
    })

    /**
     * Failed steps whose replacement exists and is ready: what a rollback also removes. Once only:
     * a replacement fleet was asked to remove before (a rollback that failed) stays, with its reason.
     */
    const failedWithReadyReplacement = SqlSchema.findAll({
      Request: RunId,
      Result: StepRow,
      execute: (runId) =>
        sql`select s.* from steps s join vms nv on nv.id = s.new_vm_id
            where s.run_id = ${runId} and s.state = 'failed' and nv.state = 'ready'
              and not exists (select 1 from executions e where e.vm_id = s.new_vm_id and e.kind = 'decommission')
            order by s.index`
    })

    /**
     * The wave's pending steps that could start, in order: of each fleet only the first
     * `fleet_concurrency` (a fleet never runs more steps at once, and they start in index order),
     * so that one big fleet cannot hide the others behind it.
     */
    const pendingSteps = (runId: RunId, wave: number, limit: number) =>
      SqlSchema.findAll({
        Request: Schema.Void,
        Result: PendingStep,
        execute: () =>
          sql`
            select c.*, ov.metadata as old_vm_metadata from (
              select ${sql.literal(stepColumns)} from (
                select s.*, row_number() over (partition by s.fleet order by s.index) as rank
                from steps s where s.run_id = ${runId} and s.state = 'pending' and s.wave = ${wave}
              ) p
              where p.rank <= p.fleet_concurrency
              order by p.index limit ${limit}
            ) c join vms ov on ov.id = c.old_vm_id
            order by c.index`
      })(undefined)

    /** One pass over the run's steps for both the counts and the fleets in progress (see StepTally). */
    const stepTally = (runId: RunId) =>
      sql<{ wave: number; state: StepState; fleet: string; count: number }>`
        select wave, state, fleet, count(*)::int as count from steps where run_id = ${runId} group by wave, state, fleet`.pipe(
        Effect.map(tallySteps)
      )

    /** Applies the changes (the last one for a step wins) and logs each as an event, in one statement. */
    const changeSteps = (runId: RunId, changes: ReadonlyArray<StepChange>, actor: string) =>
      Effect.gen(function* () {
        if (changes.length === 0) return
        const last = [...new Map(changes.map((change) => [change.id as string, change])).values()]
        yield* sql`
          with changed as (
            update steps s set
              state = c.state,
              reason = c.reason,
              new_vm_id = coalesce(c.new_vm_id, s.new_vm_id),
              new_vm_name = coalesce(c.new_vm_name, s.new_vm_name),
              after_step_id = case when c.state = 'queued' then c.after_step_id else s.after_step_id end,
              bake_until = case when c.bake_seconds is null then s.bake_until else now() + c.bake_seconds * interval '1 second' end,
              started_at = case when c.state = 'creating' then now() else s.started_at end,
              finished_at = case when c.state in ('done', 'failed', 'cancelled', 'rolled_back') then now() else s.finished_at end,
              updated_at = now()
            from jsonb_to_recordset(${
              JSON.stringify(last.map((change) => ({
                id: change.id,
                state: change.state,
                reason: change.reason,
                new_vm_id: change.newVmId ?? null,
                new_vm_name: change.newVmName ?? null,
                after_step_id: change.afterStepId ?? null,
                bake_seconds: change.bakeSeconds ?? null
              })))
            }::jsonb) as c(id uuid, state text, reason text, new_vm_id uuid, new_vm_name text, after_step_id uuid, bake_seconds int)
            where s.id = c.id and s.run_id = ${runId}
          )
          insert into events (actor, kind, run_id, vm_id, from_state, to_state, reason)
          select ${actor}, 'step.state', ${runId}::uuid, e.vm_id, null, e.to_state, e.reason
          from rows from (jsonb_to_recordset(${
            JSON.stringify(changes.map((change) => ({ vm_id: change.newVmId ?? null, to_state: change.state, reason: change.reason })))
          }::jsonb) as (vm_id uuid, to_state text, reason text)) with ordinality as e(vm_id, to_state, reason, position)
          order by e.position`
      })

    /** The run's queued steps whose creation waits for a step ahead (not held). */
    const queuedSteps = SqlSchema.findAll({
      Request: RunId,
      Result: StepRow,
      execute: (runId) => sql`select * from steps where run_id = ${runId} and state = 'queued' and after_step_id is not null order by index`
    })

    const cancelPending = (runId: RunId, reason: string) =>
      sql<{ id: string }>`
        update steps set state = 'cancelled', reason = ${reason}, finished_at = now(), updated_at = now()
        where run_id = ${runId} and state = 'pending' returning id`.pipe(Effect.map((rows) => rows.length))

    const updateRun = (
      run: RunRow,
      change: {
        readonly state?: RunState
        readonly pauseReason?: PauseReason | null
        readonly reason?: string
        readonly currentWave?: number
        readonly failures?: number
        readonly windowEndsAt?: Date | null
        readonly allowedFailures?: number
      },
      actor: string
    ) =>
      Effect.gen(function* () {
        const state = change.state ?? run.state
        const finished = ["succeeded", "failed", "cancelled", "aborted"].includes(state)
        yield* sql`
          update runs set
            state = ${state},
            pause_reason = ${change.pauseReason === undefined ? run.pauseReason : change.pauseReason},
            reason = ${change.reason ?? run.reason},
            current_wave = ${change.currentWave ?? run.currentWave},
            failures = ${change.failures ?? run.failures},
            allowed_failures = ${change.allowedFailures ?? run.allowedFailures},
            window_ends_at = ${change.windowEndsAt === undefined ? run.windowEndsAt : change.windowEndsAt},
            finished_at = ${finished ? sql`now()` : sql`null`},
            updated_at = now()
          where id = ${run.id}`
        if (finished) yield* sql`delete from run_fleets where run_id = ${run.id}`
        if (state !== run.state || change.pauseReason !== undefined) {
          yield* sql`insert into events ${
            sql.insert({
              actor,
              kind: "run.state",
              runId: run.id,
              fromState: run.state,
              toState: state,
              reason: change.reason ?? `${run.state} → ${state}`
            })
          }`
        }
      })

    const stepCounts = (runId: RunId) =>
      sql<{ state: string; count: number; bakeUntil: Date | null }>`
        select state, count(*)::int as count, max(bake_until) as bake_until from steps where run_id = ${runId} group by state`

    const recentFailures = (runId: RunId, limit: number) =>
      SqlSchema.findAll({
        Request: Schema.Void,
        Result: StepRow,
        execute: () =>
          sql`select * from steps where run_id = ${runId} and state = 'failed' order by finished_at desc nulls last limit ${limit}`
      })(undefined)

    const listSteps = (runId: RunId, state: Option.Option<StepState>, afterIndex: number, limit: number) =>
      SqlSchema.findAll({
        Request: Schema.Void,
        Result: StepRow,
        execute: () =>
          sql`select * from steps where run_id = ${runId} and index > ${afterIndex}
              ${Option.isSome(state) ? sql`and state = ${state.value}` : sql``}
              order by index limit ${limit}`
      })(undefined)

    /** When the next bake of an active run ends, in milliseconds from now. */
    const nextBakeInMs = sql<{ waitMs: number | null }>`
      select (greatest(0, extract(epoch from (min(s.bake_until) - now()))) * 1000)::float8 as wait_ms
      from steps s join runs r on r.id = s.run_id
      where s.state = 'baking' and r.state in ('running', 'paused', 'cancelling', 'aborting') having count(s.bake_until) > 0`.pipe(
      Effect.map((rows) => Option.fromNullable(rows[0]?.waitMs ?? null))
    )

    /** The plan a run executes (for a scheduled run, as recomputed when it fired) and the report stored with it. */
    const runPlan = (id: RunId) =>
      sql<{ plan: unknown; report: string }>`select plan, report from runs where id = ${id}`.pipe(
        Effect.map((rows) => Option.fromNullable(rows[0]))
      )

    const runApplications = (id: RunId) =>
      sql<{ application: string }>`select distinct application from steps where run_id = ${id}`.pipe(
        Effect.map((rows) => rows.map((row) => row.application))
      )

    const die = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.orDie(effect)
    return {
      insertRun,
      lockRun: (id: RunId) => die(lockRun(id)),
      findRun: (id: RunId) => die(findRun(id)),
      lockRunForControl: (id: RunId) => die(lockRunForControl(id)),
      listRuns: (limit: number) => die(listRuns(limit)),
      activeRunIds: die(activeRunIds),
      activeSteps: (runId: RunId) => die(activeSteps(runId)),
      pendingSteps: (runId: RunId, wave: number, limit: number) => die(pendingSteps(runId, wave, limit)),
      failedWithReadyReplacement: (runId: RunId) => die(failedWithReadyReplacement(runId)),
      stepTally: (runId: RunId) => die(stepTally(runId)),
      changeSteps: (runId: RunId, changes: ReadonlyArray<StepChange>, actor: string) => die(changeSteps(runId, changes, actor)),
      cancelPending: (runId: RunId, reason: string) => die(cancelPending(runId, reason)),
      queuedSteps: (runId: RunId) => die(queuedSteps(runId)),
      updateRun: (run: RunRow, change: Parameters<typeof updateRun>[1], actor: string) => die(updateRun(run, change, actor)),
      stepCounts: (runId: RunId) => die(stepCounts(runId)),
      recentFailures: (runId: RunId, limit: number) => die(recentFailures(runId, limit)),
      listSteps: (runId: RunId, state: Option.Option<StepState>, afterIndex: number, limit: number) =>
        die(listSteps(runId, state, afterIndex, limit)),
      nextBakeInMs: die(nextBakeInMs),
      runApplications: (id: RunId) => die(runApplications(id)),
      busyFleet: (fleets: ReadonlyArray<string>) => fleets.length === 0 ? Effect.succeedNone : die(busyFleet(fleets)),
      runPlan: (id: RunId) => die(runPlan(id)),
      withTransaction: sql.withTransaction
    } as const
  })
}) {}
