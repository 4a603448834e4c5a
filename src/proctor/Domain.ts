import { Schema } from "effect"

/**
 * A proctor execution id. Proctor's ids are unsigned 64-bit integers, which a JS number cannot
 * hold exactly, so they stay decimal strings from the wire to the database.
 */
export const ExecutionId = Schema.String.pipe(
  Schema.pattern(/^(0|[1-9][0-9]{0,19})$/, { message: () => "expected a proctor execution id (an unsigned 64-bit integer in decimal)" }),
  Schema.filter((digits) => BigInt(digits) <= 18446744073709551615n || "expected an unsigned 64-bit integer"),
  Schema.brand("ExecutionId")
)
export type ExecutionId = typeof ExecutionId.Type

// ---------------------------------------------------------------------------------------------
// Execution states

export const inProgressStates = ["RECEIVED", "CREATED", "JOB_READY", "POD_READY"] as const
export const successState = "FINISHED" as const
export const failureStates = [
  "REQUIREMENT_NOT_MET",
  "CREATION_FAILED",
  "JOB_CREATION_FAILED",
  "POD_CREATION_FAILED",
  "POD_FAILED",
  "FETCH_POD_LOG_FAILED"
] as const

export type InProgressState = typeof inProgressStates[number]
export type FailureState = typeof failureStates[number]
export type KnownState = InProgressState | typeof successState | FailureState

export type StatusClass = "in_progress" | "succeeded" | "failed" | "unknown"

const inProgress: ReadonlySet<string> = new Set(inProgressStates)
const failed: ReadonlySet<string> = new Set(failureStates)

/**
 * What a proctor status means for a caller. `unknown` is a state proctor added after this list
 * was written: callers must treat it as in progress, but it is kept apart so they can log it once.
 */
export const classifyStatus = (status: string): StatusClass =>
  status === successState ? "succeeded" : inProgress.has(status) ? "in_progress" : failed.has(status) ? "failed" : "unknown"

/** True once the execution cannot change any more. */
export const isTerminalStatus = (status: string): boolean => {
  const kind = classifyStatus(status)
  return kind === "succeeded" || kind === "failed"
}

// ---------------------------------------------------------------------------------------------
// Schemas

/**
 * One proctor execution as fleet sees it, whatever the API generation. The wire modules
 * (see V2Wire.ts) decode proctor's snake_case JSON into this.
 *
 * `createdAt` / `updatedAt` are kept as proctor wrote them: the v2 service formats them with
 * Go's `time.Time.String()` ("2024-05-01 10:00:00.123 +0000 UTC"), not RFC 3339. See
 * `parseProctorTime`.
 */
export class Execution extends Schema.Class<Execution>("proctor/Execution")({
  id: ExecutionId,
  /** The proc that runs. */
  jobName: Schema.String,
  /** The Kubernetes job name proctor gave this run. */
  name: Schema.String,
  imageTag: Schema.String,
  createdAt: Schema.String,
  updatedAt: Schema.String,
  status: Schema.String
}) {
  get statusClass(): StatusClass {
    return classifyStatus(this.status)
  }
}

/** A secret or an arg a proc declares. */
export const ProcVariable = Schema.Struct({
  name: Schema.String,
  description: Schema.String
})
export type ProcVariable = typeof ProcVariable.Type

/** One proc proctor can run (an item of `GET /metadata`, decoded by the wire module). */
export class ProcMetadata extends Schema.Class<ProcMetadata>("proctor/ProcMetadata")({
  name: Schema.String,
  description: Schema.String,
  imageName: Schema.String,
  envVars: Schema.Struct({
    secrets: Schema.Array(ProcVariable),
    args: Schema.Array(ProcVariable)
  }),
  authorizedGroups: Schema.Array(Schema.String),
  author: Schema.String,
  contributors: Schema.String,
  organization: Schema.String
}) {
  /** The names of the args the proc declares. */
  get argNames(): ReadonlyArray<string> {
    return this.envVars.args.map((arg) => arg.name)
  }
}

// ---------------------------------------------------------------------------------------------
// Errors. None of them carries a header: the access token cannot end up in one.

/** Worth retrying: proctor (or the network to it) failed, or did not answer in time. */
export class ProctorTransientError extends Schema.TaggedError<ProctorTransientError>()("ProctorTransientError", {
  reason: Schema.String,
  status: Schema.optional(Schema.Number)
}) {
  override get message(): string {
    return this.status === undefined ? `proctor: ${this.reason}` : `proctor answered ${this.status}: ${this.reason}`
  }
}

/** Not worth retrying: the same request will fail the same way (unknown proc, rejected credentials, bad request). */
export class ProctorPermanentError extends Schema.TaggedError<ProctorPermanentError>()("ProctorPermanentError", {
  reason: Schema.String,
  status: Schema.Number
}) {
  override get message(): string {
    return `proctor answered ${this.status}: ${this.reason}`
  }
}

/** Proctor does not know this execution id. */
export class ExecutionNotFound extends Schema.TaggedError<ExecutionNotFound>()("ExecutionNotFound", {
  id: ExecutionId
}) {
  override get message(): string {
    return `proctor has no execution ${this.id}`
  }
}

export type ProctorError = ProctorTransientError | ProctorPermanentError | ExecutionNotFound

export const isTransient = (error: unknown): error is ProctorTransientError =>
  error instanceof ProctorTransientError

/** What proctor says, or the first part of it: enough to explain, not enough to flood a log. */
export const summarizeBody = (body: string, max = 500): string => {
  const trimmed = body.trim()
  if (trimmed === "") return "(empty body)"
  return trimmed.length > max ? `${trimmed.slice(0, max)}…` : trimmed
}

/**
 * Classifies a non-success answer of `POST /execution`.
 *
 * Proctor answers 500 for an unknown proc ("metadata not found"), for missing secrets and for
 * a refused Kubernetes job alike. Only the first is certain to fail again, so it is the one 5xx
 * that is permanent. 408 and 429 are the 4xx a retry can fix.
 */
export const classifySubmitFailure = (status: number, body: string): ProctorTransientError | ProctorPermanentError => {
  const reason = summarizeBody(body)
  if (status >= 500) {
    return /not found/i.test(body)
      ? new ProctorPermanentError({ reason, status })
      : new ProctorTransientError({ reason, status })
  }
  return classifyOtherFailure(status, body)
}

/** Classifies a non-success answer of any other call (a 404 on a status poll is handled before). */
export const classifyOtherFailure = (status: number, body: string): ProctorTransientError | ProctorPermanentError => {
  const reason = summarizeBody(body)
  if (status >= 500 || status === 408 || status === 429) return new ProctorTransientError({ reason, status })
  return new ProctorPermanentError({ reason: describeStatus(status, reason), status })
}

const describeStatus = (status: number, reason: string): string => {
  if (status === 401 && reason === "(empty body)") return "unauthorized: proctor wants both Email-Id and a valid Access-Token"
  if (status === 403 && reason === "(empty body)") return "forbidden: the user is not in the proc's authorized groups"
  return reason
}

// ---------------------------------------------------------------------------------------------
// Time

const goTime = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2})(\.\d+)? ([+-])(\d{2})(\d{2})(?: [A-Za-z0-9+-]+)?(?: m=[+-][0-9.]+)?$/

/**
 * Reads a proctor timestamp: Go's `time.Time.String()` form ("2024-05-01 10:00:00.123456 +0000 UTC")
 * or RFC 3339. Undefined when it is neither.
 */
export const parseProctorTime = (text: string): Date | undefined => {
  const go = goTime.exec(text.trim())
  const iso = go
    ? `${go[1]}T${go[2]}${go[3] ? go[3].slice(0, 4) : ""}${go[4]}${go[5]}:${go[6]}`
    : text.trim()
  if (!go && !/^\d{4}-\d{2}-\d{2}T/.test(iso)) return undefined
  const date = new Date(iso)
  return Number.isNaN(date.getTime()) ? undefined : date
}

/** Formats a moment the way proctor's v2 service does (Go's `time.Time.String()` in UTC). */
export const formatProctorTime = (epochMillis: number): string => {
  const iso = new Date(epochMillis).toISOString() // 2024-05-01T10:00:00.120Z
  const [date, rest] = iso.split("T") as [string, string]
  const [clock, fraction] = rest.slice(0, -1).split(".") as [string, string]
  const trimmed = fraction.replace(/0+$/, "")
  return `${date} ${clock}${trimmed === "" ? "" : `.${trimmed}`} +0000 UTC`
}
