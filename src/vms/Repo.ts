import { SqlClient, SqlError, SqlSchema } from "@effect/sql"
import { Data, Effect, Option, Schema } from "effect"
import {
  ExecutionKind,
  ExecutionRecordId,
  ExecutionState,
  RequestId,
  VmId,
  VmState
} from "./Domain.js"
import { likePattern } from "../auth/Authorization.js"
import type { ExecutionUpdate } from "./Following.js"
import type { WriteClaim } from "./Handoff.js"
import { vmDetailStatement } from "./Statements.js"

/** A VM name was taken between the check and the insert. */
export class NameTaken extends Data.TaggedError("NameTaken") {}

const isUniqueViolation = (error: unknown): boolean =>
  error instanceof SqlError.SqlError && (error.cause as { code?: unknown } | undefined)?.code === "23505"

const StringMap = Schema.Record({ key: Schema.String, value: Schema.String })
const Timestamp = Schema.DateFromSelf

export const RequestRow = Schema.Struct({
  id: RequestId,
  application: Schema.String,
  environment: Schema.String,
  stack: Schema.String,
  osVersion: Schema.String,
  machineType: Schema.String,
  count: Schema.Int,
  metadata: StringMap,
  requestedBy: Schema.String,
  createdAt: Timestamp
})
export type RequestRow = typeof RequestRow.Type

export const VmRow = Schema.Struct({
  id: VmId,
  requestId: Schema.NullOr(RequestId),
  name: Schema.String,
  application: Schema.String,
  environment: Schema.String,
  stack: Schema.String,
  osVersion: Schema.String,
  machineType: Schema.String,
  metadata: StringMap,
  state: VmState,
  reason: Schema.NullOr(Schema.String),
  attempt: Schema.Int,
  createdBy: Schema.String,
  createdAt: Timestamp,
  updatedAt: Timestamp,
  readyAt: Schema.NullOr(Timestamp),
  decommissionedAt: Schema.NullOr(Timestamp)
})
export type VmRow = typeof VmRow.Type

export const ExecutionRow = Schema.Struct({
  id: ExecutionRecordId,
  vmId: VmId,
  kind: ExecutionKind,
  proc: Schema.String,
  args: StringMap,
  emailId: Schema.String,
  state: ExecutionState,
  proctorId: Schema.NullOr(Schema.String),
  proctorStatus: Schema.NullOr(Schema.String),
  submissions: Schema.Int,
  polls: Schema.Int,
  dueAt: Schema.NullOr(Timestamp),
  deadlineAt: Schema.NullOr(Timestamp),
  reason: Schema.NullOr(Schema.String),
  createdAt: Timestamp,
  submittedAt: Schema.NullOr(Timestamp),
  finishedAt: Schema.NullOr(Timestamp)
})
export type ExecutionRow = typeof ExecutionRow.Type

/** An execution a controller has just claimed, with what it needs to act and to log. */
export const ClaimedExecution = Schema.Struct({
  ...ExecutionRow.fields,
  previousState: ExecutionState,
  wasDueAt: Timestamp,
  claimedAt: Timestamp,
  vmName: Schema.String,
  requestId: Schema.NullOr(RequestId),
  application: Schema.String
})
export type ClaimedExecution = typeof ClaimedExecution.Type

export const EventRow = Schema.Struct({
  vmId: Schema.NullOr(VmId),
  kind: Schema.String,
  at: Timestamp,
  fromState: Schema.NullOr(Schema.String),
  toState: Schema.NullOr(Schema.String),
  reason: Schema.String,
  actor: Schema.String
})
export type EventRow = typeof EventRow.Type

/** Timestamps inside JSON arrive as ISO text. */
const JsonTimestamp = Schema.Date

export const VmDetailRow = Schema.Struct({
  ...VmRow.fields,
  history: Schema.Array(Schema.Struct({ ...EventRow.fields, at: JsonTimestamp })),
  executions: Schema.Array(Schema.Struct({
    ...ExecutionRow.fields,
    dueAt: Schema.NullOr(JsonTimestamp),
    deadlineAt: Schema.NullOr(JsonTimestamp),
    createdAt: JsonTimestamp,
    submittedAt: Schema.NullOr(JsonTimestamp),
    finishedAt: Schema.NullOr(JsonTimestamp)
  }))
})
export type VmDetailRow = typeof VmDetailRow.Type

export interface NewVm {
  readonly id: VmId
  readonly name: string
  readonly application: string
  readonly environment: string
  readonly stack: string
  readonly osVersion: string
  readonly machineType: string
  readonly metadata: Record<string, string>
  readonly createdBy: string
}

/** A VM request as written: the request, its VMs (names decided) and one execution per VM. */
export interface NewRequest {
  readonly request: Omit<RequestRow, "createdAt">
  readonly vms: ReadonlyArray<NewVm>
  readonly executions: ReadonlyArray<NewExecution>
  /** Executions written with it that wait for a VM to move (see WaitingExecution). */
  readonly waiting?: ReadonlyArray<WaitingExecution>
}

export interface NewExecution {
  readonly id: ExecutionRecordId
  readonly vmId: VmId
  readonly kind: ExecutionKind
  readonly proc: string
  readonly args: Record<string, string>
  readonly emailId: string
}

/**
 * An execution written ahead that starts in the statement recording what it waits for:
 * - a decommission (a replacement's swap), `afterVmId` created ready: its VM, if ready then,
 *   moves to decommissioning with `reason` as the event (on behalf of `emailId`, for `runId`);
 * - a creation (a queued step's replacement), `afterExecutionId` (the decommission of the step
 *   ahead) succeeded: its VM, if still pending, is created as any other.
 * Either is then due at once, or claimed. Until then it is `waiting` and never due; cancelled, or
 * with its VM no longer in that state, it never starts. A creation held (written or set without
 * `afterExecutionId`) is started only by `startWaitingCreates`.
 */
export type WaitingExecution = NewExecution & {
  readonly reason: string
  readonly runId: string
} & (
  | { readonly kind: "decommission"; readonly afterVmId: VmId }
  | { readonly kind: "create"; readonly afterExecutionId: ExecutionRecordId | null }
)

/** What a waiting execution waits for, as the columns that say it. */
const waitingColumns = (execution: WaitingExecution) => ({
  after_vm_id: execution.kind === "decommission" ? execution.afterVmId : null,
  after_execution_id: execution.kind === "create" ? execution.afterExecutionId : null
})

export interface VmFilter {
  readonly application?: string | undefined
  readonly environment?: string | undefined
  readonly stack?: string | undefined
  readonly osVersion?: string | undefined
  readonly state?: VmState | undefined
  /** Only applications matching one of these globs (an application-limited API token's); all when absent. */
  readonly applicationGlobs?: ReadonlyArray<string> | undefined
}

/** The SQL condition for VmFilter.applicationGlobs, if any. */
const applicationGlobsClause = (sql: SqlClient.SqlClient, globs: ReadonlyArray<string> | undefined) =>
  globs === undefined ? [] : [sql.or(globs.map((glob) => sql`application like ${likePattern(glob)}`))]

/** The SQL conditions of a VM filter (to be joined with `and`): one definition for lists and counts. */
export const vmFilterClauses = (sql: SqlClient.SqlClient, filter: VmFilter) => [
  ...(filter.application === undefined ? [] : [sql`application = ${filter.application}`]),
  ...(filter.environment === undefined ? [] : [sql`environment = ${filter.environment}`]),
  ...(filter.stack === undefined ? [] : [sql`stack = ${filter.stack}`]),
  ...(filter.osVersion === undefined ? [] : [sql`os_version = ${filter.osVersion}`]),
  ...(filter.state === undefined ? [] : [sql`state = ${filter.state}`]),
  ...applicationGlobsClause(sql, filter.applicationGlobs)
]

/** A decision about a claimed execution, and the VM state it implies (none when the VM's state does not change). */
export interface Outcome {
  readonly execution: ClaimedExecution
  readonly token: string
  readonly update: ExecutionUpdate
  readonly vmState: VmState | undefined
  /**
   * Keep the claim (the controller follows the execution itself until `dueInMs`): the execution
   * stays with this claim token, due to others only this much after `dueInMs` (a lease), so that
   * if the controller dies, another takes it over then. Absent: the claim is given up and the
   * execution is due again after `dueInMs` to whichever controller claims it.
   */
  readonly keepClaimMs?: number
}

/**
 * What recording outcomes did: to each execution whose claim held (by id), its deadline as now
 * written; how many waiting executions what was recorded started (see WaitingExecution); and
 * those of them it started claimed (see WriteClaim), the others being due at once.
 */
export interface Recorded {
  readonly recorded: ReadonlyMap<string, { readonly deadlineAt: Date | null }>
  readonly waitingStarted: number
  readonly waitingClaimed: ReadonlyArray<ClaimedExecution>
}

/** A new execution's columns, as the statements that insert executions take them (JSON). */
const executionColumns = (execution: NewExecution) => ({
  id: execution.id,
  vm_id: execution.vmId,
  kind: execution.kind,
  proc: execution.proc,
  args: execution.args,
  email_id: execution.emailId
})

/** A waiting execution started claimed, as `recordOutcomes` returns it. */
interface ClaimedWaiting extends NewExecution {
  readonly name: string
  readonly requestId: RequestId | null
  readonly application: string
}

/** The event's reason when a VM's creation is submitted (the same words as `claimDue`'s). */
const submittingReason = (proc: string) => `submitting to proctor (${proc})`

/** An execution as a write that claimed it leaves it: what `claimDue` would have returned for it. */
const claimedAtWrite = (
  execution: NewExecution,
  vm: { readonly name: string; readonly requestId: RequestId | null; readonly application: string },
  claim: WriteClaim,
  now: Date
): ClaimedExecution => ({
  ...execution,
  state: "submitting",
  proctorId: null,
  proctorStatus: null,
  submissions: 1,
  polls: 0,
  dueAt: new Date(now.getTime() + claim.leaseMs),
  deadlineAt: null,
  reason: null,
  createdAt: now,
  submittedAt: null,
  finishedAt: null,
  previousState: "pending",
  wasDueAt: now,
  claimedAt: now,
  vmName: vm.name,
  requestId: vm.requestId,
  application: vm.application
})

/**
 * What starting executions did: the ids of those started (a VM not in one of the expected states
 * gets none), and those of them written claimed (see WriteClaim; never a creation).
 */
export interface StartedExecutions {
  readonly started: ReadonlyArray<ExecutionRecordId>
  readonly claimed: ReadonlyArray<ClaimedExecution>
}

/** A change of a VM's state caused by something other than one of its executions (a retry, a decommission). */
export interface VmChange {
  readonly vmId: VmId
  readonly from: ReadonlyArray<VmState>
  readonly to: VmState
  readonly reason: string
  readonly actor: string
  readonly runId?: string | undefined
}

/** The SQL behind VMs, requests, executions and their events. Database failures are defects here. */
export class VmRepo extends Effect.Service<VmRepo>()("fleet/VmRepo", {
  effect: Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient

    /**
     * Writes VM requests with their VMs, executions and events, a few statements for the lot (the
     * executor writes a run's replacements this way, many at a time).
     */
    /**
     * Writes requests with their VMs (pending), their executions (due now) and the events saying
     * so, in one statement: atomic on its own, one round trip whatever the batch's size. A name
     * taken in the meantime fails the whole statement (the unique index), and nothing is written.
     */
    const insertRequests = (batch: ReadonlyArray<NewRequest>, runId: string | null, claim: WriteClaim | undefined) => {
      const now = new Date()
      const claimed = claim === undefined
        ? []
        : batch.flatMap(({ executions, request, vms }) => executions.map((execution) => ({ execution, request, vms })))
          .slice(0, claim.slots)
          .map(({ execution, request, vms }) =>
            claimedAtWrite(execution, { ...vms.find((vm) => vm.id === execution.vmId)!, requestId: request.id }, claim, now)
          )
      const claimedVms = new Set<string>(claimed.map((execution) => execution.vmId))
      const requests = batch.map(({ request }) => ({
        id: request.id,
        application: request.application,
        environment: request.environment,
        stack: request.stack,
        os_version: request.osVersion,
        machine_type: request.machineType,
        count: request.count,
        metadata: request.metadata,
        requested_by: request.requestedBy
      }))
      const vms = batch.flatMap(({ request, vms }) => vms.map((vm) => ({
        id: vm.id,
        request_id: request.id,
        name: vm.name,
        application: vm.application,
        environment: vm.environment,
        stack: vm.stack,
        os_version: vm.osVersion,
        machine_type: vm.machineType,
        metadata: vm.metadata,
        created_by: vm.createdBy,
        state: claimedVms.has(vm.id) ? "submitting" : "pending"
      })))
      const executions = batch.flatMap(({ executions }) => executions.map((execution) => ({
        ...executionColumns(execution),
        claimed_by: claimedVms.has(execution.vmId) ? claim!.token : null
      })))
      const waiting = batch.flatMap(({ waiting }) => (waiting ?? []).map((execution) => ({
        ...executionColumns(execution),
        ...waitingColumns(execution),
        reason: execution.reason,
        run_id: execution.runId
      })))
      const events: Array<{
        readonly actor: string
        readonly kind: string
        readonly application: string
        readonly request_id: string | null
        readonly vm_id: string | null
        readonly execution_id: string | null
        readonly from_state: string | null
        readonly to_state: string | null
        readonly reason: string
      }> = [
        ...batch.flatMap(({ request, vms }) => [
          {
            actor: request.requestedBy, kind: "request.accepted", application: request.application, request_id: request.id, vm_id: null,
            execution_id: null, from_state: null, to_state: null, reason: `${request.count} VM(s) requested`
          },
          ...vms.map((vm) => ({
            actor: request.requestedBy, kind: "vm.state", application: vm.application, request_id: request.id, vm_id: vm.id,
            execution_id: null, from_state: null, to_state: "pending", reason: `accepted as ${vm.name}`
          }))
        ]),
        ...claimed.map((execution) => ({
          actor: "fleet", kind: "vm.state", application: execution.application, request_id: execution.requestId, vm_id: execution.vmId,
          execution_id: execution.id, from_state: "pending", to_state: "submitting", reason: submittingReason(execution.proc)
        }))
      ]
      return sql`
        with requests as (
          insert into vm_requests (id, application, environment, stack, os_version, machine_type, count, metadata, requested_by)
          select * from jsonb_to_recordset(${JSON.stringify(requests)}::jsonb) as t(
            id uuid, application text, environment text, stack text, os_version text, machine_type text, count int, metadata jsonb, requested_by text)
          returning id
        ), new_vms as (
          insert into vms (id, request_id, name, application, environment, stack, os_version, machine_type, metadata, created_by, state)
          select * from jsonb_to_recordset(${JSON.stringify(vms)}::jsonb) as t(
            id uuid, request_id uuid, name text, application text, environment text, stack text, os_version text, machine_type text, metadata jsonb,
            created_by text, state text)
          returning id
        ), new_executions as (
          insert into executions (id, vm_id, kind, proc, args, email_id, state, claimed_by, submissions, due_at)
          select id, vm_id, kind, proc, args, email_id, ${claimColumns(claim)}
          from jsonb_to_recordset(${JSON.stringify(executions)}::jsonb) as t(
            id uuid, vm_id uuid, kind text, proc text, args jsonb, email_id text, claimed_by uuid)
          returning id
        ), waiting_executions as (
          insert into executions (id, vm_id, kind, proc, args, email_id, state, due_at, after_vm_id, after_execution_id, reason, run_id)
          select id, vm_id, kind, proc, args, email_id, 'waiting', null, after_vm_id, after_execution_id, reason, run_id
          from jsonb_to_recordset(${JSON.stringify(waiting)}::jsonb) as t(
            id uuid, vm_id uuid, kind text, proc text, args jsonb, email_id text, after_vm_id uuid, after_execution_id uuid, reason text, run_id uuid)
          returning id
        )
        insert into events (actor, kind, application, request_id, vm_id, execution_id, from_state, to_state, reason, run_id)
        select *, ${runId}::uuid from jsonb_to_recordset(${JSON.stringify(events)}::jsonb) as t(
          actor text, kind text, application text, request_id uuid, vm_id uuid, execution_id uuid, from_state text, to_state text, reason text)`.pipe(
        Effect.as(claimed)
      )
    }

    /**
     * The state, claim, submissions and due time of executions being inserted, from their
     * `claimed_by` column: claimed ones as `claimDue` leaves them, the others pending and due now.
     */
    const claimColumns = (claim: WriteClaim | undefined) => sql`
      case when claimed_by is null then 'pending' else 'submitting' end,
      claimed_by,
      case when claimed_by is null then 0 else 1 end,
      now() + case when claimed_by is null then 0 else ${claim?.leaseMs ?? 0} end * interval '1 millisecond'`

    const findRequest = SqlSchema.findOne({
      Request: RequestId,
      Result: RequestRow,
      execute: (id) => sql`select * from vm_requests where id = ${id}`
    })

    const vmsOfRequest = SqlSchema.findAll({
      Request: RequestId,
      Result: VmRow,
      execute: (id) => sql`select * from vms where request_id = ${id} order by id`
    })

    const eventsOfRequest = SqlSchema.findAll({
      Request: RequestId,
      Result: EventRow,
      execute: (id) =>
        sql`select vm_id, kind, at, from_state, to_state, reason, actor from events
            where request_id = ${id} and vm_id is not null order by id`
    })

    const findVm = SqlSchema.findOne({
      Request: VmId,
      Result: VmRow,
      execute: (id) => sql`select * from vms where id = ${id}`
    })

    /** A VM with its history and its executions, in one round trip. */
    const findVmDetail = SqlSchema.findOne({
      Request: VmId,
      Result: VmDetailRow,
      execute: (id) => sql.unsafe(vmDetailStatement, [id])
    })

    const listVms = (filter: VmFilter, after: Option.Option<VmId>, limit: number) =>
      SqlSchema.findAll({
        Request: Schema.Void,
        Result: VmRow,
        execute: () => {
          const clauses = [
            ...vmFilterClauses(sql, filter),
            ...(Option.isSome(after) ? [sql`id < ${after.value}`] : [])
          ]
          return sql`select * from vms ${clauses.length > 0 ? sql`where ${sql.and(clauses)}` : sql``}
                     order by id desc limit ${limit}`
        }
      })(undefined)

    /**
     * Claims up to `limit` due executions for this controller: each is pushed out by the lease
     * (so it becomes due again if this controller dies), a pending one becomes submitting — the
     * intent to submit, committed before the POST — and its VM follows, with an event.
     */
    const claimDue = (token: string, limit: number, leaseMs: number) =>
      SqlSchema.findAll({
        Request: Schema.Void,
        Result: ClaimedExecution,
        execute: () =>
          sql`
            with due as (
              select id, state as previous_state, due_at as was_due_at
              from executions
              where due_at <= now()
              order by due_at
              limit ${limit}
              for update skip locked
            ), claimed as (
              update executions e set
                claimed_by = ${token},
                due_at = now() + ${leaseMs} * interval '1 millisecond',
                state = case when e.state = 'pending' then 'submitting' else e.state end,
                submissions = e.submissions + case when e.state in ('pending', 'submitting') then 1 else 0 end,
                updated_at = now()
              from due
              where e.id = due.id
              returning e.*, due.previous_state, due.was_due_at
            ), moved as (
              update vms v set state = 'submitting', updated_at = now()
              from claimed c
              where v.id = c.vm_id and c.kind = 'create' and c.previous_state = 'pending' and v.state = 'pending'
              returning v.id, v.request_id, v.application, c.id as execution_id, c.proc
            ), logged as (
              insert into events (actor, kind, application, request_id, vm_id, execution_id, from_state, to_state, reason)
              select 'fleet', 'vm.state', application, request_id, id, execution_id, 'pending', 'submitting', 'submitting to proctor (' || proc || ')'
              from moved
            )
            select c.*, now() as claimed_at, v.name as vm_name, v.request_id, v.application
            from claimed c join vms v on v.id = c.vm_id`
      })(undefined)


    /**
     * Applies decisions about executions this controller holds (each by its claim token), and the
     * VM states they imply, with an event for each VM whose state changes; in one statement,
     * whatever their number. The ids recorded: an execution whose claim was lost (the lease
     * expired and another controller took it over) is left alone. At most one outcome per VM.
     * A VM created ready starts the swaps waiting for it (see WaitingExecution), in the same statement.
     */
    const recordOutcomes = (outcomes: ReadonlyArray<Outcome>, claim: WriteClaim | undefined): Effect.Effect<Recorded, SqlError.SqlError> => {
      if (outcomes.length === 0) return Effect.succeed({ recorded: new Map(), waitingStarted: 0, waitingClaimed: [] })
      const now = new Date()
      return sql<{ id: string; deadlineAt: Date | null; startedWaiting: number; claimedWaiting: ReadonlyArray<ClaimedWaiting> }>`
            with input as (
              select * from jsonb_to_recordset(${
                JSON.stringify(outcomes.map(({ execution, keepClaimMs, token, update, vmState }) => ({
                  id: execution.id,
                  token,
                  kind: execution.kind,
                  state: update.state,
                  proctor_id: update.proctorId ?? null,
                  proctor_status: update.proctorStatus ?? null,
                  polls: update.polls,
                  due_in_ms: update.dueInMs,
                  keep_claim_ms: keepClaimMs ?? null,
                  deadline_in_ms: update.deadlineInMs,
                  reason: update.reason,
                  vm_state: vmState ?? null
                })))
              }::jsonb) as t(id uuid, token uuid, kind text, state text, proctor_id text, proctor_status text, polls int,
                             due_in_ms float8, keep_claim_ms float8, deadline_in_ms float8, reason text, vm_state text)
            ), e as (
              update executions x set
                state = i.state,
                proctor_id = coalesce(i.proctor_id, x.proctor_id),
                proctor_status = coalesce(i.proctor_status, x.proctor_status),
                polls = i.polls,
                due_at = case when i.due_in_ms is null then null
                              else now() + (i.due_in_ms + coalesce(i.keep_claim_ms, 0)) * interval '1 millisecond' end,
                deadline_at = coalesce(x.deadline_at, now() + i.deadline_in_ms * interval '1 millisecond'),
                submitted_at = case when i.state = 'running' then coalesce(x.submitted_at, now()) else x.submitted_at end,
                finished_at = case when i.due_in_ms is null then now() else null end,
                reason = i.reason,
                claimed_by = case when i.keep_claim_ms is null or i.due_in_ms is null then null else x.claimed_by end,
                updated_at = now()
              from input i
              -- The ids again, as an array: the planner takes the recordset for a hundred rows and
              -- would scan every execution to join it; the array leads it to the primary key.
              where x.id = any(${outcomes.map(({ execution }) => execution.id)}::uuid[]) and x.id = i.id and x.claimed_by = i.token
              returning x.id, x.vm_id, x.deadline_at, i.kind, i.state, i.vm_state, i.reason
            ), before as (
              select v.id, v.state, v.request_id, v.application, e.id as execution_id, e.kind, e.vm_state, e.reason
              from vms v join e on v.id = e.vm_id
              where e.vm_state is not null and v.state <> e.vm_state
            ), moved as (
              update vms set
                state = b.vm_state,
                reason = b.reason,
                updated_at = now(),
                ready_at = case when b.vm_state = 'ready' and b.kind = 'create' then now() else vms.ready_at end,
                decommissioned_at = case when b.vm_state = 'decommissioned' then now() else vms.decommissioned_at end
              from before b where vms.id = b.id
              returning vms.id, b.state as from_state, b.request_id, b.application, b.execution_id, b.kind, b.vm_state, b.reason
            ), logged as (
              insert into events (actor, kind, application, request_id, vm_id, execution_id, from_state, to_state, reason)
              select 'fleet', 'vm.state', application, request_id, id, execution_id, from_state, vm_state, reason
              from moved
            ), waiting as (
              -- Executions waiting for what happened just now, locked first: one cancelled or held
              -- meanwhile is seen so here, and cannot be cancelled once this starts it. A swap
              -- waits for its replacement to be created ready; a queued step's creation for the
              -- decommission of the step ahead of it to succeed.
              select w.id, w.vm_id, w.kind, w.proc, w.email_id, w.reason, w.run_id
              from executions w
              where w.state = 'waiting'
                and ((w.kind = 'decommission' and w.after_vm_id in (select id from moved where kind = 'create' and vm_state = 'ready'))
                  or (w.kind = 'create' and w.after_execution_id in (select id from e where kind = 'decommission' and state = 'succeeded')))
              -- In id order, as holdWaitingCreates locks them: two statements never wait for each other.
              order by w.id
              for update of w
            ), ranked as (
              -- The first as many as the claim has slots for are claimed; the others are due at once.
              select w.*, row_number() over (order by w.id) <= ${claim?.slots ?? 0} as claimed
              from waiting w
            ), vm_started as (
              -- A swap's VM must still be ready, a creation's still pending (never started otherwise).
              update vms v set
                state = case when r.kind = 'decommission' then 'decommissioning' when r.claimed then 'submitting' else v.state end,
                reason = case when r.kind = 'decommission' then r.reason else v.reason end,
                updated_at = now()
              from ranked r
              where v.id = r.vm_id and v.state = case when r.kind = 'decommission' then 'ready' else 'pending' end
              returning v.id, v.name, v.request_id, v.application, r.id as execution_id, r.kind, r.proc, r.claimed, r.email_id, r.reason, r.run_id
            ), waiting_started as (
              update executions x set
                state = case when s.claimed then 'submitting' else 'pending' end,
                claimed_by = case when s.claimed then ${claim?.token ?? null}::uuid end,
                submissions = case when s.claimed then 1 else 0 end,
                due_at = now() + case when s.claimed then ${claim?.leaseMs ?? 0} else 0 end * interval '1 millisecond',
                reason = null,
                updated_at = now()
              from vm_started s
              where x.id = s.execution_id
              returning x.id, x.vm_id, x.kind, x.proc, x.args, x.email_id, x.claimed_by, s.name, s.request_id, s.application
            ), waiting_logged as (
              -- A creation started unclaimed is logged as submitting by the claim that takes it.
              insert into events (actor, kind, application, request_id, vm_id, execution_id, run_id, from_state, to_state, reason)
              select case when kind = 'decommission' then email_id else 'fleet' end, 'vm.state', application, request_id, id, execution_id, run_id,
                     case when kind = 'decommission' then 'ready' else 'pending' end,
                     case when kind = 'decommission' then 'decommissioning' else 'submitting' end,
                     case when kind = 'decommission' then reason else 'submitting to proctor (' || proc || ')' end
              from vm_started where kind = 'decommission' or claimed
            )
            select id, deadline_at, (select count(*)::int from waiting_started) as started_waiting,
                   (select coalesce(jsonb_agg(jsonb_build_object(
                     'id', id, 'vmId', vm_id, 'kind', kind, 'proc', proc, 'args', args, 'emailId', email_id,
                     'name', name, 'requestId', request_id, 'application', application
                   )), '[]') from waiting_started where claimed_by is not null) as claimed_waiting
            from e`.pipe(
        Effect.map((rows) => ({
          recorded: new Map(rows.map((row) => [row.id, { deadlineAt: row.deadlineAt }])),
          waitingStarted: rows[0]?.startedWaiting ?? 0,
          waitingClaimed: claim === undefined ? [] : (rows[0]?.claimedWaiting ?? []).map(({ application, name, requestId, ...execution }) =>
            claimedAtWrite(execution, { name, requestId, application }, claim, now))
        }))
      )
    }

    /**
     * Starts new executions, each for a VM whose state is one of its `change.from` (a retry of a
     * failed creation, a decommission, a readiness check), moving the VM to `change.to` with an
     * event; in one statement, whatever their number. A VM not in one of the expected states
     * (someone else changed it first) gets none. At most one item per VM.
     */
    const startExecutions = (
      items: ReadonlyArray<{ readonly execution: NewExecution; readonly change: VmChange }>,
      claim: WriteClaim | undefined
    ): Effect.Effect<StartedExecutions, SqlError.SqlError> => {
      if (items.length === 0) return Effect.succeed({ started: [], claimed: [] })
      // A creation is left to claimDue, which moves its VM on to submitting as it claims it.
      const claimedIds = new Set<string>(
        claim === undefined ? [] : items.filter(({ execution }) => execution.kind !== "create").slice(0, claim.slots).map(({ execution }) => execution.id)
      )
      const now = new Date()
      return sql<{ id: ExecutionRecordId; name: string; requestId: RequestId | null; application: string }>`
            with input as (
              select * from jsonb_to_recordset(${
                JSON.stringify(items.map(({ change, execution }) => ({
                  ...executionColumns(execution),
                  claimed_by: claimedIds.has(execution.id) ? claim!.token : null,
                  from_states: change.from,
                  to_state: change.to,
                  reason: change.reason,
                  actor: change.actor,
                  run_id: change.runId ?? null
                })))
              }::jsonb) as t(id uuid, vm_id uuid, kind text, proc text, args jsonb, email_id text, claimed_by uuid,
                             from_states text[], to_state text, reason text, actor text, run_id uuid)
            ), before as (
              select v.id, v.state, v.request_id, v.application, i.id as execution_id
              from vms v join input i on i.vm_id = v.id
              where v.state = any(i.from_states)
              for update of v
            ), moved as (
              -- A readiness check leaves the VM as it is (ready, with its reason): the check is its execution's.
              update vms set state = i.to_state, reason = case when i.kind = 'check' then vms.reason else i.reason end, updated_at = now(),
                attempt = vms.attempt + case when i.kind = 'create' then 1 else 0 end
              from before b join input i on i.id = b.execution_id
              where vms.id = b.id
              returning vms.id, vms.name, b.state as from_state, b.request_id, b.application, b.execution_id
            ), started as (
              insert into executions (id, vm_id, kind, proc, args, email_id, state, claimed_by, submissions, due_at)
              select i.id, i.vm_id, i.kind, i.proc, i.args, i.email_id, ${claimColumns(claim)}
              from moved m join input i on i.id = m.execution_id
            ), logged as (
              insert into events (actor, kind, application, request_id, vm_id, execution_id, run_id, from_state, to_state, reason)
              select i.actor, case when i.kind = 'check' then 'vm.check' else 'vm.state' end, m.application, m.request_id, m.id,
                m.execution_id, i.run_id, m.from_state, i.to_state, i.reason
              from moved m join input i on i.id = m.execution_id
            )
            select execution_id as id, name, request_id, application from moved`.pipe(
        Effect.map((rows) => {
          const byId = new Map(rows.map((row) => [row.id as string, row]))
          return {
            started: rows.map((row) => row.id),
            claimed: claim === undefined ? [] : items.flatMap(({ execution }) => {
              const vm = byId.get(execution.id)
              return vm !== undefined && claimedIds.has(execution.id) ? [claimedAtWrite(execution, vm, claim, now)] : []
            })
          }
        })
      )
    }

    return {
      /** Fails with NameTaken when another controller took one of the names in the meantime. */
      insertRequest: (
        request: Omit<RequestRow, "createdAt">,
        vms: ReadonlyArray<NewVm>,
        executions: ReadonlyArray<NewExecution>,
        runId: string | null = null,
        claim?: WriteClaim
      ) =>
        insertRequests([{ request, vms, executions }], runId, claim).pipe(
          Effect.catchAll((error) => isUniqueViolation(error) ? Effect.fail(new NameTaken()) : Effect.die(error))
        ),
      /**
       * Many requests in one statement; fails with NameTaken (and writes none) when one of the names
       * was taken meanwhile. The executions written claimed (the first `claim.slots`), as claimed.
       */
      insertRequests: (batch: ReadonlyArray<NewRequest>, runId: string | null = null, claim?: WriteClaim) =>
        insertRequests(batch, runId, claim).pipe(
          Effect.catchAll((error) => isUniqueViolation(error) ? Effect.fail(new NameTaken()) : Effect.die(error))
        ),
      findRequest: (id: RequestId) => Effect.orDie(findRequest(id)),
      vmsOfRequest: (id: RequestId) => Effect.orDie(vmsOfRequest(id)),
      eventsOfRequest: (id: RequestId) => Effect.orDie(eventsOfRequest(id)),
      findVm: (id: VmId) => Effect.orDie(findVm(id)),
      findVmDetail: (id: VmId) => Effect.orDie(findVmDetail(id)),
      listVms: (filter: VmFilter, after: Option.Option<VmId>, limit: number) => Effect.orDie(listVms(filter, after, limit)),
      claimDue: (token: string, limit: number, leaseMs: number) => Effect.orDie(claimDue(token, limit, leaseMs)),
      /** Records outcomes (see recordOutcomes); the waiting executions they start are claimed under `claim`, as far as its slots go. */
      recordOutcomes: (outcomes: ReadonlyArray<Outcome>, claim?: WriteClaim) => Effect.orDie(recordOutcomes(outcomes, claim)),
      /** Gives up a claim kept between two looks (the controller is stopping): the execution is due at once, to anyone. */
      releaseClaim: (id: ExecutionRecordId, token: string) =>
        sql`update executions set claimed_by = null, due_at = now(), updated_at = now()
            where id = ${id} and claimed_by = ${token} and finished_at is null`.pipe(Effect.asVoid, Effect.orDie),
      /**
       * Starts a new execution for a VM whose state is one of `change.from` (a retry of a failed
       * creation, a decommission), moving the VM to `change.to` with an event. None started when
       * the VM is not in one of those states (someone else changed it first).
       */
      startExecution: (execution: NewExecution, change: VmChange, claim?: WriteClaim) =>
        Effect.orDie(startExecutions([{ execution, change }], claim)),
      startExecutions: (items: ReadonlyArray<{ readonly execution: NewExecution; readonly change: VmChange }>, claim?: WriteClaim) =>
        Effect.orDie(startExecutions(items, claim)),
      /**
       * Cancels the swaps still waiting for these VMs, so that none of them starts; those already
       * started (the VM was recorded ready first) are left alone. The number cancelled.
       */
      cancelWaiting: (afterVmIds: ReadonlyArray<VmId>, reason: string) =>
        afterVmIds.length === 0
          ? Effect.succeed(0)
          : sql<{ id: string }>`
              update executions set state = 'cancelled', reason = ${reason}, finished_at = now(), updated_at = now()
              where after_vm_id = any(${afterVmIds}::uuid[]) and kind = 'decommission' and state = 'waiting' returning id`.pipe(
            Effect.map((rows) => rows.length),
            Effect.orDie
          ),
      /**
       * Holds the waiting creations of these VMs: they no longer start when what they wait for
       * happens, only through `startWaitingCreates`. The VMs whose creation is held now.
       */
      holdWaitingCreates: (vmIds: ReadonlyArray<VmId>) =>
        vmIds.length === 0
          ? Effect.succeed<ReadonlyArray<VmId>>([])
          : sql<{ vmId: VmId }>`
              update executions set after_execution_id = null, updated_at = now()
              where id in (
                -- Locked in id order, as recordOutcomes locks waiting executions.
                select id from executions where vm_id = any(${vmIds}::uuid[]) and kind = 'create' and state = 'waiting' order by id for update
              ) and state = 'waiting'
              returning vm_id`.pipe(
            Effect.map((rows) => rows.map((row) => row.vmId)),
            Effect.orDie
          ),
      /**
       * Makes held creations wait again, each for `afterExecutionId` to succeed (a held queued
       * step queued anew). The VMs whose creation waits so now.
       */
      attachWaitingCreates: (items: ReadonlyArray<{ readonly vmId: VmId; readonly afterExecutionId: ExecutionRecordId }>) =>
        items.length === 0
          ? Effect.succeed<ReadonlyArray<VmId>>([])
          : sql<{ vmId: VmId }>`
              update executions x set after_execution_id = i.after_execution_id, updated_at = now()
              from jsonb_to_recordset(${JSON.stringify(items.map((item) => ({ vm_id: item.vmId, after_execution_id: item.afterExecutionId })))}::jsonb)
                as i(vm_id uuid, after_execution_id uuid)
              where x.vm_id = i.vm_id and x.kind = 'create' and x.state = 'waiting' and x.after_execution_id is null
              returning x.vm_id`.pipe(
            Effect.map((rows) => rows.map((row) => row.vmId)),
            Effect.orDie
          ),
      /**
       * Starts the waiting creations of these VMs now (due at once, to whichever reconciler
       * claims them); one that started meanwhile, or whose VM is no longer pending, is left alone.
       * The VMs whose creation started here.
       */
      startWaitingCreates: (vmIds: ReadonlyArray<VmId>) =>
        vmIds.length === 0
          ? Effect.succeed<ReadonlyArray<VmId>>([])
          : sql<{ vmId: VmId }>`
              update executions x set state = 'pending', due_at = now(), reason = null, updated_at = now()
              from vms v
              where x.vm_id = any(${vmIds}::uuid[]) and x.kind = 'create' and x.state = 'waiting'
                and v.id = x.vm_id and v.state = 'pending'
              returning x.vm_id`.pipe(
            Effect.map((rows) => rows.map((row) => row.vmId)),
            Effect.orDie
          ),
      /**
       * Cancels the waiting creations of these VMs, and the swaps waiting for them: such a VM was
       * never created, and now never will be; it is recorded failed with `reason` (an event on
       * behalf of `actor`, for `runId`). One whose creation started meanwhile is left alone. The
       * VMs cancelled.
       */
      cancelWaitingCreates: (vmIds: ReadonlyArray<VmId>, reason: string, actor: string, runId: string) =>
        vmIds.length === 0
          ? Effect.succeed<ReadonlyArray<VmId>>([])
          : sql<{ id: VmId }>`
              with cancelled as (
                update executions set state = 'cancelled', reason = ${reason}, finished_at = now(), updated_at = now()
                where vm_id = any(${vmIds}::uuid[]) and kind = 'create' and state = 'waiting' returning vm_id
              ), swaps as (
                update executions set state = 'cancelled', reason = ${reason}, finished_at = now(), updated_at = now()
                where after_vm_id in (select vm_id from cancelled) and kind = 'decommission' and state = 'waiting'
              ), failed as (
                update vms set state = 'failed', reason = ${reason}, updated_at = now()
                where id in (select vm_id from cancelled) and state = 'pending'
                returning id, request_id, application
              ), logged as (
                insert into events (actor, kind, application, request_id, vm_id, run_id, from_state, to_state, reason)
                select ${actor}, 'vm.state', application, request_id, id, ${runId}::uuid, 'pending', 'failed', ${reason} from failed
              )
              select id from failed`.pipe(
            Effect.map((rows) => rows.map((row) => row.id)),
            Effect.orDie
          )
    } as const
  })
}) {}
