import { Schema } from "effect"

/**
 * One line of the audit log: a state change (of a VM, a run, a step) or a mutating request
 * (a VM request accepted, a retry, a decommission, a token created or revoked), with who did
 * it (`actor`, the email of the token's owner, or `fleet` for the controllers), what (`kind`,
 * the states), when (`at`) and why (`reason`).
 */
export class AuditEvent extends Schema.Class<AuditEvent>("AuditEvent")({
  id: Schema.String,
  at: Schema.Date,
  actor: Schema.String,
  kind: Schema.String,
  application: Schema.NullOr(Schema.String),
  requestId: Schema.NullOr(Schema.String),
  vmId: Schema.NullOr(Schema.String),
  executionId: Schema.NullOr(Schema.String),
  runId: Schema.NullOr(Schema.String),
  fromState: Schema.NullOr(Schema.String),
  toState: Schema.NullOr(Schema.String),
  reason: Schema.String
}) {}

export class EventPage extends Schema.Class<EventPage>("EventPage")({
  items: Schema.Array(AuditEvent),
  /** Pass as `cursor` for the next (older) page; null on the last page. */
  nextCursor: Schema.NullOr(Schema.String)
}) {}
