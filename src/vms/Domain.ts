import { Schema } from "effect"
import { Metadata } from "../catalog/Domain.js"

export const VmId = Schema.UUID.pipe(Schema.brand("VmId"))
export type VmId = typeof VmId.Type

export const RequestId = Schema.UUID.pipe(Schema.brand("RequestId"))
export type RequestId = typeof RequestId.Type

export const ExecutionRecordId = Schema.UUID.pipe(Schema.brand("ExecutionRecordId"))
export type ExecutionRecordId = typeof ExecutionRecordId.Type

/**
 * A VM's life. Creation: pending → submitting → provisioning → ready | failed | timed_out
 * (a failed or timed-out VM can be retried: back to pending, same name). Decommission:
 * ready → decommissioning → decommissioned (or back to ready if proctor could not do it).
 */
export const VmState = Schema.Literal(
  "pending",
  "submitting",
  "provisioning",
  "ready",
  "failed",
  "timed_out",
  "decommissioning",
  "decommissioned"
)
export type VmState = typeof VmState.Type

/** What a proctor execution does to its VM. */
export const ExecutionKind = Schema.Literal("create", "decommission", "check")
export type ExecutionKind = typeof ExecutionKind.Type

/**
 * A proctor execution as fleet tracks it: pending (written, not sent) → submitting (being sent;
 * after a crash, sent again with the same VM name) → running (proctor gave an id) → succeeded |
 * failed | timed_out. A replacement's swap is written ahead as waiting (for the replacement to be
 * ready; then pending) and may be cancelled before it starts.
 */
export const ExecutionState = Schema.Literal("waiting", "pending", "submitting", "running", "succeeded", "failed", "timed_out", "cancelled")
export type ExecutionState = typeof ExecutionState.Type

/** The overall state of a request, derived from its VMs. */
export const RequestState = Schema.Literal("in_progress", "ready", "failed", "partially_ready")
export type RequestState = typeof RequestState.Type

const Text = (max: number) =>
  Schema.String.pipe(
    Schema.maxLength(max, { message: () => `expected at most ${max} characters` }),
    Schema.pattern(/^[^\p{Cc}]*$/u, { message: () => "expected printable text without control characters" })
  )

/** The body of POST /v1/vm-requests. Values are checked against the catalog after this shape is decoded. */
export class CreateVmRequest extends Schema.Class<CreateVmRequest>("CreateVmRequest")({
  application: Text(100),
  environment: Text(100),
  stack: Text(100),
  osVersion: Text(100),
  machineType: Text(100),
  // At least 1: checked with the catalog's checks (VmRequests), so that one answer names every problem.
  count: Schema.Int.annotations({ jsonSchema: { type: "integer", minimum: 1 } }),
  metadata: Schema.optional(Metadata)
}) {}

export class VmSummary extends Schema.Class<VmSummary>("VmSummary")({
  id: VmId,
  name: Schema.String,
  uri: Schema.String
}) {}

export class VmRequestAccepted extends Schema.Class<VmRequestAccepted>("VmRequestAccepted")({
  id: RequestId,
  uri: Schema.String,
  vms: Schema.Array(VmSummary),
  /** What the requester should know although the request was accepted (an OS version that is deprecated); absent when nothing. */
  warnings: Schema.optionalWith(Schema.Array(Schema.String), { exact: true })
}) {}

export class VmEvent extends Schema.Class<VmEvent>("VmEvent")({
  at: Schema.Date,
  from: Schema.NullOr(Schema.String),
  to: Schema.NullOr(Schema.String),
  reason: Schema.String,
  actor: Schema.String
}) {}

export class ExecutionView extends Schema.Class<ExecutionView>("ExecutionView")({
  id: ExecutionRecordId,
  kind: ExecutionKind,
  proc: Schema.String,
  state: ExecutionState,
  proctorId: Schema.NullOr(Schema.String),
  proctorStatus: Schema.NullOr(Schema.String),
  submissions: Schema.Int,
  polls: Schema.Int,
  reason: Schema.NullOr(Schema.String),
  createdAt: Schema.Date,
  submittedAt: Schema.NullOr(Schema.Date),
  finishedAt: Schema.NullOr(Schema.Date),
  deadlineAt: Schema.NullOr(Schema.Date)
}) {}

export class Vm extends Schema.Class<Vm>("Vm")({
  id: VmId,
  uri: Schema.String,
  name: Schema.String,
  requestId: Schema.NullOr(RequestId),
  application: Schema.String,
  environment: Schema.String,
  stack: Schema.String,
  osVersion: Schema.String,
  machineType: Schema.String,
  metadata: Schema.Record({ key: Schema.String, value: Schema.String }),
  state: VmState,
  reason: Schema.NullOr(Schema.String),
  attempt: Schema.Int,
  createdBy: Schema.String,
  createdAt: Schema.Date,
  updatedAt: Schema.Date,
  readyAt: Schema.NullOr(Schema.Date),
  decommissionedAt: Schema.NullOr(Schema.Date)
}) {}

export class VmWithHistory extends Vm.extend<VmWithHistory>("VmWithHistory")({
  history: Schema.Array(VmEvent)
}) {}

export class VmDetail extends VmWithHistory.extend<VmDetail>("VmDetail")({
  executions: Schema.Array(ExecutionView)
}) {}

export class VmRequest extends Schema.Class<VmRequest>("VmRequest")({
  id: RequestId,
  uri: Schema.String,
  application: Schema.String,
  environment: Schema.String,
  stack: Schema.String,
  osVersion: Schema.String,
  machineType: Schema.String,
  count: Schema.Int,
  metadata: Schema.Record({ key: Schema.String, value: Schema.String }),
  requestedBy: Schema.String,
  createdAt: Schema.Date,
  state: RequestState,
  counts: Schema.Record({ key: VmState, value: Schema.Int }),
  vms: Schema.Array(VmWithHistory)
}) {}

export class VmPage extends Schema.Class<VmPage>("VmPage")({
  items: Schema.Array(Vm),
  nextCursor: Schema.NullOr(Schema.String)
}) {}

export const vmUri = (id: VmId): string => `/v1/vms/${id}`
export const requestUri = (id: RequestId): string => `/v1/vm-requests/${id}`
