import type { VmState } from "../vms/Domain.js"
import type { StepState } from "./Domain.js"
import { activeStepStates, executingStepStates, finishedStepStates } from "./Domain.js"

/**
 * The executor's decisions, as pure functions over what the database says: how each started
 * step moves on, which steps may start, and what the run does next. The limits hold at every
 * instant because the caller applies a decision in the same transaction that read the states,
 * under the run's row lock.
 */

const isExecuting = (state: StepState) => executingStepStates.includes(state)
const isActive = (state: StepState) => activeStepStates.includes(state)
const isFinished = (state: StepState) => finishedStepStates.includes(state)

export interface StartedStep {
  readonly id: string
  readonly index: number
  readonly fleet: string
  readonly state: StepState
  readonly oldVmId: string
  readonly oldVmName: string
  readonly newVmId: string | null
  readonly newVmName: string | null
  readonly newVmState: VmState | null
  readonly newVmReason: string | null
  readonly oldVmState: VmState
  readonly oldVmReason: string | null
  readonly checkState: string | null
  readonly checkReason: string | null
  /** Baking, and the bake time is over. */
  readonly baked: boolean
  /** Creating, and the swap written with the replacement started when it was recorded ready. */
  readonly swapStarted: boolean
  /** Queued, and the replacement's creation started when the step ahead finished. */
  readonly createStarted: boolean
}

export type StepAction =
  | { readonly _tag: "Wait" }
  | { readonly _tag: "Move"; readonly state: StepState; readonly reason: string; readonly bakeSeconds?: number }
  /** The replacement is ready: run the readiness proc on it. */
  | { readonly _tag: "Check" }
  /** Remove the replacement again (rollback), keeping the old VM. */
  | { readonly _tag: "RollBack"; readonly reason: string }

export interface StepContext {
  readonly readinessCheck: boolean
  readonly bakeSeconds: number
  /** The run is aborting with rollback: replacements not yet swapped in are removed. */
  readonly rollingBack: boolean
}

const wait: StepAction = { _tag: "Wait" }

/** What to do about a VM whose removal failed: fleet does not try again on its own. */
const byHand = (vmId: string | null) => `decommission it by hand (fleet vms decommission ${vmId ?? "<vm-id>"})`

/** Why a step's old VM is decommissioned (its event and the step's reason). */
export const swapReason = (oldVmName: string, newVmName: string) => `decommissioning ${oldVmName}, replaced by ${newVmName}`

/** How a started step moves on, from the states of its VMs (level-triggered: only what is true now matters). */
export const advanceStep = (step: StartedStep, context: StepContext): StepAction => {
  const replacement = step.newVmName ?? "the replacement"
  const toBaking: StepAction = {
    _tag: "Move",
    state: "baking",
    reason: context.bakeSeconds > 0 ? `${replacement} is ready; baking for ${context.bakeSeconds}s` : `${replacement} is ready`,
    bakeSeconds: context.bakeSeconds
  }
  switch (step.state) {
    case "queued": {
      if (!step.createStarted) return wait
      const next = advanceStep({ ...step, state: "creating" }, context)
      return next._tag === "Wait" ? { _tag: "Move", state: "creating", reason: `creating ${replacement}: the step ahead finished` } : next
    }
    case "creating":
      // The swap written ahead started with the replacement ready: the step is decommissioning.
      if (step.swapStarted) {
        const next = advanceStep({ ...step, state: "decommissioning" }, context)
        return next._tag === "Wait" ? { _tag: "Move", state: "decommissioning", reason: swapReason(step.oldVmName, replacement) } : next
      }
      switch (step.newVmState) {
        case "ready":
          if (context.rollingBack) return { _tag: "RollBack", reason: `rolling back: removing ${replacement}` }
          return context.readinessCheck ? { _tag: "Check" } : toBaking
        case "failed":
        case "timed_out":
          return { _tag: "Move", state: "failed", reason: `${replacement} ${step.newVmState === "failed" ? "failed" : "timed out"}: ${step.newVmReason ?? "no reason given"}` }
        default:
          return wait
      }
    case "checking":
      if (step.checkState === "succeeded") return context.rollingBack ? { _tag: "RollBack", reason: `rolling back: removing ${replacement}` } : toBaking
      if (step.checkState === "failed" || step.checkState === "timed_out") {
        return { _tag: "Move", state: "failed", reason: `readiness check of ${replacement} ${step.checkState === "failed" ? "failed" : "timed out"}: ${step.checkReason ?? "no reason given"}` }
      }
      return wait
    case "baking":
      return context.rollingBack ? { _tag: "RollBack", reason: `rolling back: removing ${replacement}` } : wait
    case "decommissioning":
      if (step.oldVmState === "decommissioned") return { _tag: "Move", state: "done", reason: `${step.oldVmName} decommissioned; replaced by ${replacement}` }
      if (step.oldVmState === "ready") {
        return {
          _tag: "Move",
          state: "failed",
          reason: `decommissioning ${step.oldVmName} failed: ${step.oldVmReason ?? "no reason given"}; ` +
            `${replacement} serves and ${step.oldVmName} is still ready: ${byHand(step.oldVmId)}`
        }
      }
      return wait
    case "rolling_back":
      if (step.newVmState === "decommissioned") return { _tag: "Move", state: "rolled_back", reason: `${replacement} removed; ${step.oldVmName} kept` }
      if (step.newVmState === "ready") {
        return {
          _tag: "Move",
          state: "failed",
          reason: `removing ${replacement} failed: ${step.newVmReason ?? "no reason given"}; ` +
            `${step.oldVmName} is kept and ${replacement} is still ready: ${byHand(step.newVmId)}`
        }
      }
      return wait
    case "pending":
    case "done":
    case "failed":
    case "cancelled":
    case "rolled_back":
      return wait
  }
}

export interface SchedulingStep {
  readonly id: string
  readonly index: number
  readonly fleet: string
  /** surge + unavailable for the step's fleet: its steps at once. */
  readonly fleetConcurrency: number
  readonly state: StepState
  readonly baked: boolean
}

export interface RunLimits {
  readonly maxInFlight: number
  readonly maxFleetsInParallel: number
}

export interface Decision {
  /** Baked steps whose old VM is decommissioned now (they go first: they finish work). */
  readonly decommission: ReadonlyArray<string>
  /** Pending steps whose replacement is created now. */
  readonly start: ReadonlyArray<string>
}

/**
 * Which steps start now. `started` are the run's started, unfinished steps; `pending` the
 * current wave's pending steps in order; `inProgress` the fleets with a started step and an
 * unfinished one (a fleet between two batches is still in progress).
 */
export const decide = (
  input: {
    readonly started: ReadonlyArray<SchedulingStep>
    readonly pending: ReadonlyArray<SchedulingStep>
    readonly inProgress: ReadonlySet<string>
  },
  limits: RunLimits,
  mayStartSteps: boolean
): Decision => {
  let inFlight = input.started.filter((step) => isExecuting(step.state)).length
  const decommission: Array<string> = []
  for (const step of [...input.started].filter((step) => step.state === "baking" && step.baked).sort((a, b) => a.index - b.index)) {
    if (inFlight >= limits.maxInFlight) break
    decommission.push(step.id)
    inFlight++
  }
  const start: Array<string> = []
  if (!mayStartSteps) return { decommission, start }
  const activeByFleet = new Map<string, number>()
  for (const step of input.started) {
    if (isActive(step.state)) activeByFleet.set(step.fleet, (activeByFleet.get(step.fleet) ?? 0) + 1)
  }
  const working = new Set(input.inProgress)
  for (const step of [...input.pending].sort((a, b) => a.index - b.index)) {
    if (inFlight >= limits.maxInFlight) break
    const active = activeByFleet.get(step.fleet) ?? 0
    if (active >= step.fleetConcurrency) continue
    if (!working.has(step.fleet) && working.size >= limits.maxFleetsInParallel) continue
    start.push(step.id)
    inFlight++
    activeByFleet.set(step.fleet, active + 1)
    working.add(step.fleet)
  }
  return { decommission, start }
}

/**
 * Which candidates (held and pending steps) are queued now, and behind which step under way: as
 * many as there are steps in `ahead`, the first the fleet limits allow in step order (a queued
 * step counts in its fleet from now, and against maxInFlight only as the step ahead of it ends),
 * each behind the next step of `ahead` to end: those decommissioning before those still creating
 * (a decommission is the step's last execution), then in step order. With fewer candidates than
 * steps ahead (as a run nears its end), they so start as soon as slots come free. Baked steps
 * still waiting for a slot for their decommission (`waitingDecommissions`) go first: as many
 * steps ahead, those to end first, get nothing queued behind them, so that their slots come free
 * for those decommissions.
 */
export const queueBehind = <A extends { readonly index: number; readonly state: StepState }>(
  input: {
    readonly started: ReadonlyArray<SchedulingStep>
    readonly candidates: ReadonlyArray<SchedulingStep>
    readonly inProgress: ReadonlySet<string>
    readonly waitingDecommissions: number
  },
  ahead: ReadonlyArray<A>,
  maxFleetsInParallel: number
): ReadonlyArray<{ readonly id: string; readonly behind: A }> => {
  const executing = input.started.filter((step) => isExecuting(step.state)).length
  const { start } = decide(
    { started: input.started, pending: input.candidates, inProgress: input.inProgress },
    { maxInFlight: executing + Math.max(0, ahead.length - input.waitingDecommissions), maxFleetsInParallel },
    true
  )
  const executionsAfterThis = (step: A) => step.state === "decommissioning" ? 0 : 1
  const inOrder = [...ahead].sort((a, b) => executionsAfterThis(a) - executionsAfterThis(b) || a.index - b.index)
  // The steps to end first are left for the waiting decommissions (start has room for the rest only).
  const leftFree = Math.max(0, input.waitingDecommissions)
  return start.map((id, position) => ({ id, behind: inOrder[leftFree + position]! }))
}

/** A replacement an aborting run removes again, and the step it belongs to. */
export interface RollbackCandidate {
  readonly id: string
  readonly index: number
  readonly fleet: string
  readonly fleetConcurrency: number
  /** The step had finished (failed): removing its replacement makes it a step under way again. */
  readonly finished: boolean
}

/**
 * Which rollbacks start now, in step order. Each is a proctor execution, so it needs one of
 * maxInFlight's slots; a finished step's also needs one of its fleet's again. (A step rolled
 * back from creating or checking keeps the slot its execution had, and needs no grant.)
 */
export const grantRollbacks = (
  started: ReadonlyArray<SchedulingStep>,
  candidates: ReadonlyArray<RollbackCandidate>,
  maxInFlight: number
): ReadonlyArray<string> => {
  let inFlight = started.filter((step) => isExecuting(step.state)).length
  const activeByFleet = new Map<string, number>()
  for (const step of started) {
    if (isActive(step.state)) activeByFleet.set(step.fleet, (activeByFleet.get(step.fleet) ?? 0) + 1)
  }
  const granted: Array<string> = []
  for (const candidate of [...candidates].sort((a, b) => a.index - b.index)) {
    if (inFlight >= maxInFlight) break
    const active = activeByFleet.get(candidate.fleet) ?? 0
    if (candidate.finished && active >= candidate.fleetConcurrency) continue
    granted.push(candidate.id)
    inFlight++
    if (candidate.finished) activeByFleet.set(candidate.fleet, active + 1)
  }
  return granted
}

export type WaveGate = "none" | "previous-complete" | "approval"

/** What the run does next on its own, from how many steps of each wave are in which state. */
export type RunProgress =
  | { readonly _tag: "Continue" }
  | { readonly _tag: "NextWave"; readonly wave: number; readonly gate: WaveGate }
  | { readonly _tag: "Finished"; readonly failed: number }
  | { readonly _tag: "BudgetSpent" }

export const progress = (
  counts: ReadonlyArray<{ readonly wave: number; readonly state: StepState; readonly count: number }>,
  currentWave: number,
  gates: ReadonlyArray<WaveGate>,
  failures: number,
  allowedFailures: number
): RunProgress => {
  if (failures > allowedFailures) return { _tag: "BudgetSpent" }
  const unfinished = (wave?: number) =>
    counts.some((entry) => (wave === undefined || entry.wave === wave) && !isFinished(entry.state) && entry.count > 0)
  if (unfinished(currentWave)) return { _tag: "Continue" }
  const next = currentWave + 1
  if (next < gates.length) return { _tag: "NextWave", wave: next, gate: gates[next]! }
  if (unfinished()) return { _tag: "Continue" }
  return { _tag: "Finished", failed: counts.filter((entry) => entry.state === "failed").reduce((sum, entry) => sum + entry.count, 0) }
}
