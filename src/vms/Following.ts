import type { ExecutionState } from "./Domain.js"

/**
 * How fleet follows a proctor execution, as pure decisions: given what proctor answered, the
 * execution's next state, when to look again, and why. The reconciler applies them.
 */

export interface FollowPolicy {
  /** Delay before the first status poll; doubles each poll up to pollMaxMs. */
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
  | { readonly _tag: "Status"; readonly status: string; readonly phase: "in_progress" | "succeeded" | "failed" | "unknown" }
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

const formatDuration = (ms: number): string =>
  ms % 3_600_000 === 0 ? `${ms / 3_600_000}h` : ms % 60_000 === 0 ? `${ms / 60_000}m` : ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`

export const afterSubmit = (
  outcome: SubmitOutcome,
  execution: FollowedExecution,
  policy: FollowPolicy,
  jitter: number
): ExecutionUpdate => {
  switch (outcome._tag) {
    case "Accepted":
      return {
        state: "running",
        proctorId: outcome.proctorId,
        proctorStatus: outcome.status,
        dueInMs: pollDelayMs(0, policy, jitter),
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
  jitter: number
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
        dueInMs: pollDelayMs(polls, policy, jitter),
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
