import type { ExecutionState } from "./Domain.js"

/**
 * How fleet follows a proctor execution, as pure decisions: given what proctor answered, the
 * execution's next state, when to look again, and why. The reconciler applies them.
 */

export interface FollowPolicy {
  /**
   * Delay before the first status poll; doubles each poll up to pollMaxMs. Once a controller has
   * seen a few executions of a proc finish, it polls that proc by its typical run time instead
   * (see `learnedPollDelayMs`).
   */
  readonly pollInitialMs: number
  readonly pollMaxMs: number
  /** Overall deadline from the first accepted submission: proctor can leave a failed job CREATED forever. */
  readonly deadlineMs: number
  /** How many times an execution may be (re)submitted before it counts as failed. */
  readonly maxSubmissions: number
  /** Delay before resubmitting when proctor stayed unavailable through a whole retry schedule. */
  readonly resubmitDelayMs: number
}

export type SubmitOutcome =
  | { readonly _tag: "Accepted"; readonly proctorId: string; readonly status: string }
  | { readonly _tag: "Rejected"; readonly reason: string }
  | { readonly _tag: "Unavailable"; readonly reason: string }

export type PollOutcome =
  | {
    readonly _tag: "Status"
    readonly status: string
    readonly phase: "in_progress" | "succeeded" | "failed" | "unknown"
    /** How long the execution ran by proctor's own clock (created → last update), when it has ended and says so. */
    readonly ranMs?: number
  }
  | { readonly _tag: "NotFound" }
  | { readonly _tag: "Unreachable"; readonly reason: string }

export interface ExecutionUpdate {
  readonly state: ExecutionState
  readonly proctorId?: string
  readonly proctorStatus?: string
  /** When to look at the execution again, from now; null when it is finished. */
  readonly dueInMs: number | null
  /** Starts the deadline clock, this far from now (only the first accepted submission does; later ones keep it). */
  readonly deadlineInMs: number | null
  readonly polls: number
  readonly reason: string
}

export interface FollowedExecution {
  readonly proctorId: string | null
  readonly submissions: number
  readonly polls: number
  readonly deadlineAt: Date | null
}

/** Exponential backoff between polls, capped, with ±10% jitter (jitter in [0, 1)) so polls spread out. */
export const pollDelayMs = (polls: number, policy: FollowPolicy, jitter: number): number => {
  const base = Math.min(policy.pollMaxMs, policy.pollInitialMs * 2 ** Math.min(polls, 30))
  return Math.round(base * (0.9 + 0.2 * jitter))
}

/** The shortest wait between two polls of an execution whose typical run time is known. */
export const minFollowUpMs = 10

/**
 * Polling when the proc's typical run time is known (learned from its executions that finished,
 * see `TypicalDurations`): the first poll when a typical execution has ended (plus up to 2%), so
 * that most executions need one poll and are seen ending at once; then a tenth of the typical
 * time, doubling, with ±10% jitter. Never longer than pollMaxMs, which so stays the longest an
 * early failure goes unseen.
 */
export const learnedPollDelayMs = (polls: number, typicalMs: number, policy: FollowPolicy, jitter: number): number => {
  if (polls === 0) return Math.round(Math.min(policy.pollMaxMs, typicalMs * (1 + 0.02 * jitter)))
  const base = Math.min(policy.pollMaxMs, Math.max(minFollowUpMs, (typicalMs / 10) * 2 ** Math.min(polls - 1, 30)))
  return Math.round(base * (0.9 + 0.2 * jitter))
}

/** The next poll's delay: learned from the proc's typical run time when there is one, else the configured backoff. */
const nextPollMs = (polls: number, policy: FollowPolicy, jitter: number, typicalMs: number | undefined): number =>
  typicalMs === undefined ? pollDelayMs(polls, policy, jitter) : learnedPollDelayMs(polls, typicalMs, policy, jitter)

/**
 * What one controller has seen of each proc's run time: the last `window` durations of its
 * successful executions, by proctor's own clock. The typical duration is their median, once there
 * are `minimum` of them. Until a proc has that many, the typical duration of the procs of its kind
 * (create, decommission, check) stands in for it: a run that reaches a new stack's create proc
 * (fleets come one after another) then polls its first executions when the other creates took to
 * finish, instead of by the configured backoff, which saw them end up to twice their run time late.
 */
export class TypicalDurations {
  private readonly recent = new Map<string, Array<number>>()
  constructor(private readonly window = 32, private readonly minimum = 3) {}

  record(proc: string, kind: string, durationMs: number): void {
    if (!Number.isFinite(durationMs) || durationMs < 0) return
    this.remember(`proc ${proc}`, durationMs)
    this.remember(`kind ${kind}`, durationMs)
  }

  typicalMs(proc: string, kind: string): number | undefined {
    return this.median(`proc ${proc}`) ?? this.median(`kind ${kind}`)
  }

  private remember(key: string, durationMs: number): void {
    const list = this.recent.get(key) ?? []
    list.push(durationMs)
    if (list.length > this.window) list.shift()
    this.recent.set(key, list)
  }

  private median(key: string): number | undefined {
    const list = this.recent.get(key)
    if (list === undefined || list.length < this.minimum) return undefined
    const sorted = [...list].sort((a, b) => a - b)
    return sorted[Math.floor((sorted.length - 1) / 2)]
  }
}

const formatDuration = (ms: number): string =>
  ms % 3_600_000 === 0 ? `${ms / 3_600_000}h` : ms % 60_000 === 0 ? `${ms / 60_000}m` : ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`

export const afterSubmit = (
  outcome: SubmitOutcome,
  execution: FollowedExecution,
  policy: FollowPolicy,
  jitter: number,
  typicalMs?: number
): ExecutionUpdate => {
  switch (outcome._tag) {
    case "Accepted":
      return {
        state: "running",
        proctorId: outcome.proctorId,
        proctorStatus: outcome.status,
        dueInMs: nextPollMs(0, policy, jitter, typicalMs),
        deadlineInMs: policy.deadlineMs,
        polls: 0,
        reason: `proctor accepted execution ${outcome.proctorId} (${outcome.status})`
      }
    case "Rejected":
      return { state: "failed", dueInMs: null, deadlineInMs: null, polls: execution.polls, reason: `proctor rejected the execution: ${outcome.reason}` }
    case "Unavailable":
      return execution.submissions >= policy.maxSubmissions
        ? {
          state: "failed",
          dueInMs: null,
          deadlineInMs: null,
          polls: execution.polls,
          reason: `proctor stayed unavailable through ${execution.submissions} submissions: ${outcome.reason}`
        }
        : {
          state: "submitting",
          dueInMs: policy.resubmitDelayMs,
          deadlineInMs: null,
          polls: execution.polls,
          reason: `proctor unavailable (${outcome.reason}); will submit again with the same VM name`
        }
  }
}

export const afterPoll = (
  outcome: PollOutcome,
  execution: FollowedExecution,
  now: Date,
  policy: FollowPolicy,
  jitter: number,
  typicalMs?: number
): ExecutionUpdate => {
  const polls = execution.polls + 1
  const id = execution.proctorId ?? "?"
  const overdue = execution.deadlineAt !== null && now.getTime() >= execution.deadlineAt.getTime()
  const keepFollowing = (status: string | undefined, note: string): ExecutionUpdate =>
    overdue
      ? {
        state: "timed_out",
        ...(status === undefined ? {} : { proctorStatus: status }),
        dueInMs: null,
        deadlineInMs: null,
        polls,
        reason: `no final state from proctor for execution ${id} within ${formatDuration(policy.deadlineMs)} (${note}); the VM's real state is unknown`
      }
      : {
        state: "running",
        ...(status === undefined ? {} : { proctorStatus: status }),
        dueInMs: nextPollMs(polls, policy, jitter, typicalMs),
        deadlineInMs: null,
        polls,
        reason: note
      }
  switch (outcome._tag) {
    case "Status":
      switch (outcome.phase) {
        case "succeeded":
          return { state: "succeeded", proctorStatus: outcome.status, dueInMs: null, deadlineInMs: null, polls, reason: `proctor execution ${id} ${outcome.status}` }
        case "failed":
          return { state: "failed", proctorStatus: outcome.status, dueInMs: null, deadlineInMs: null, polls, reason: `proctor execution ${id} ended in ${outcome.status}` }
        case "in_progress":
        case "unknown":
          return keepFollowing(outcome.status, `last status ${outcome.status}`)
      }
      break
    case "Unreachable":
      return keepFollowing(undefined, `status unavailable: ${outcome.reason}`)
    case "NotFound":
      return execution.submissions >= policy.maxSubmissions
        ? { state: "failed", dueInMs: null, deadlineInMs: null, polls, reason: `proctor lost execution ${id} and ${execution.submissions} submissions were made` }
        : { state: "submitting", dueInMs: 0, deadlineInMs: null, polls, reason: `proctor does not know execution ${id}; submitting again with the same VM name` }
  }
}
