/**
 * The SQL that fleet runs for the two endpoints `npm run bench:http` measures, as plain text for
 * its comparison servers (bench/http-baseline.ts and the floors): fleet's own statements (VmRepo's
 * `findVmDetail`, the very text, from src/vms/Statements.ts; a copy of its `insertRequests`, which
 * fleet builds from a template; the token lookup), with ids made as fleet makes them (UUIDv7,
 * time-ordered), so that a comparison differs from fleet in what serves the request, not in the
 * database work it asks for. Two differences remain, both of them work fleet does and the
 * comparisons do not: fleet writes each execution already claimed by its reconciler, with one more
 * event (pending → submitting), and it writes the audit events of concurrent POSTs in one
 * statement, where each comparison writes its own (`insertAuditEvent`).
 */
import { createHash, randomBytes } from "node:crypto"
import { uuidv7 } from "../src/common/Ids.js"
import { vmDetailStatement } from "../src/vms/Statements.js"
import { suffixFromBytes } from "../src/vms/Naming.js"

/** A VM with its history and executions, in one statement (fleet's own text); $1 the VM's id. */
export const readVm = vmDetailStatement

/** A request, its VMs, their create executions (pending) and events, in one statement; $1–$4 and $6 the rows as JSON, $5 the lease (ms) of claimed ones, $7 the run. */
export const insertRequest = `
  with requests as (
    insert into vm_requests (id, application, environment, stack, os_version, machine_type, count, metadata, requested_by)
    select * from jsonb_to_recordset($1::jsonb) as t(
      id uuid, application text, environment text, stack text, os_version text, machine_type text, count int, metadata jsonb, requested_by text)
    returning id
  ), new_vms as (
    insert into vms (id, request_id, name, application, environment, stack, os_version, machine_type, metadata, created_by, state)
    select * from jsonb_to_recordset($2::jsonb) as t(
      id uuid, request_id uuid, name text, application text, environment text, stack text, os_version text, machine_type text, metadata jsonb,
      created_by text, state text)
    returning id
  ), new_executions as (
    insert into executions (id, vm_id, kind, proc, args, email_id, state, claimed_by, submissions, due_at)
    select id, vm_id, kind, proc, args, email_id,
      case when claimed_by is null then 'pending' else 'submitting' end,
      claimed_by,
      case when claimed_by is null then 0 else 1 end,
      now() + case when claimed_by is null then 0 else $5 end * interval '1 millisecond'
    from jsonb_to_recordset($3::jsonb) as t(
      id uuid, vm_id uuid, kind text, proc text, args jsonb, email_id text, claimed_by uuid)
    returning id
  ), waiting_executions as (
    insert into executions (id, vm_id, kind, proc, args, email_id, state, due_at, after_vm_id, after_execution_id, reason, run_id)
    select id, vm_id, kind, proc, args, email_id, 'waiting', null, after_vm_id, after_execution_id, reason, run_id
    from jsonb_to_recordset($6::jsonb) as t(
      id uuid, vm_id uuid, kind text, proc text, args jsonb, email_id text, after_vm_id uuid, after_execution_id uuid, reason text, run_id uuid)
    returning id
  )
  insert into events (actor, kind, application, request_id, vm_id, execution_id, from_state, to_state, reason, run_id)
  select *, $7::uuid from jsonb_to_recordset($4::jsonb) as t(
    actor text, kind text, application text, request_id uuid, vm_id uuid, execution_id uuid, from_state text, to_state text, reason text)`

/** The audit event of a POST; $1 the actor, $2 the reason. */
export const insertAuditEvent = "insert into events (actor, kind, application, reason) values ($1, 'http.request', null, $2)"

/** The token lookup; $1 the token's SHA-256, hex. */
export const findToken = "select id, name, owner_email, scopes, applications from api_tokens where token_hash = $1 and revoked_at is null"

export interface RequestInput {
  readonly application: string
  readonly environment: string
  readonly stack: string
  readonly osVersion: string
  readonly machineType: string
  readonly count: number
}

/** A request of `count` VMs with fresh ids and names: its VMs, and the four parameters of `insertRequest`. */
export const requestRows = (input: RequestInput, actorEmail: string) => {
  const requestId = uuidv7()
  const vms = Array.from({ length: input.count }, () => ({
    id: uuidv7(),
    name: `${input.application}-stg-${input.stack}-u2204-${suffixFromBytes(randomBytes(6))}`
  }))
  const shape = {
    application: input.application, environment: input.environment, stack: input.stack, os_version: input.osVersion, machine_type: input.machineType,
    metadata: {}
  }
  const request = { id: requestId, ...shape, count: input.count, requested_by: actorEmail }
  const vmRows = vms.map((vm) => ({ id: vm.id, request_id: requestId, name: vm.name, ...shape, created_by: actorEmail, state: "pending" }))
  const executions = vms.map((vm) => ({
    id: uuidv7(), vm_id: vm.id, kind: "create", proc: "create-vm-java", email_id: actorEmail, claimed_by: null,
    args: {
      VM_NAME: vm.name, APPLICATION: input.application, ENVIRONMENT: input.environment, STACK: input.stack, OS_VERSION: input.osVersion,
      MACHINE_TYPE: input.machineType
    }
  }))
  const events = [
    {
      actor: actorEmail, kind: "request.accepted", application: input.application, request_id: requestId, vm_id: null, execution_id: null,
      from_state: null, to_state: null, reason: `${input.count} VM(s) requested`
    },
    ...vms.map((vm) => ({
      actor: actorEmail, kind: "vm.state", application: input.application, request_id: requestId, vm_id: vm.id, execution_id: null,
      from_state: null, to_state: "pending", reason: `accepted as ${vm.name}`
    }))
  ]
  return {
    requestId,
    vms,
    parameters: [JSON.stringify([request]), JSON.stringify(vmRows), JSON.stringify(executions), JSON.stringify(events), 0, "[]", null]
  }
}

/** True for PostgreSQL's unique violation: a name drawn was taken, and new ones are drawn (as fleet does). */
export const isNameTaken = (error: unknown): boolean =>
  (error as { code?: unknown } | undefined)?.code === "23505" ||
  (error as { cause?: { code?: unknown } } | undefined)?.cause?.code === "23505"

/** The audit event's reason for a POST answered 202, as fleet's audit middleware words it. */
export const auditReason = (tokenName: string) => `POST /v1/vm-requests → 202 (token ${tokenName})`

/** The SHA-256 of a token's secret, hex: what api_tokens stores and `findToken` looks up. */
export const tokenHash = (secret: string) => createHash("sha256").update(secret).digest("hex")

/** Like fleet (FLEET_TOKEN_CACHE_TTL's default): a token found active is trusted for 5 seconds. */
export class TrustedTokens<A> {
  private readonly checked = new Map<string, { readonly actor: A; readonly until: number }>()
  /** The actor of a token trusted now, by its hash. */
  find(hash: string): A | undefined {
    const cached = this.checked.get(hash)
    return cached !== undefined && cached.until > Date.now() ? cached.actor : undefined
  }
  remember(hash: string, actor: A): A {
    this.checked.set(hash, { actor, until: Date.now() + 5000 })
    return actor
  }
}
