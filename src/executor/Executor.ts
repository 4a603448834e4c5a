import { Config, Context, Duration, Effect, Layer, Option } from "effect"
import { durationSetting } from "../config/Settings.js"
import { Catalog } from "../catalog/Catalog.js"
import { makeSignal, type Signal, waitForAny } from "../common/Signal.js"
import { numbered } from "../common/Numbering.js"
import { VmRepo } from "../vms/Repo.js"
import { Handoff } from "../vms/Handoff.js"
import { VmSettled } from "../vms/Wakeup.js"
import type { ExecutionTarget } from "../vms/Writes.js"
import { activeStepStates, executingStepStates, type RunId, type RunState, type StepState } from "./Domain.js"
import { type ActiveStep, type PendingStep, RunRepo, type RunRow, type StepChange, type StepRow } from "./Repo.js"
import { advanceStep, decide, grantRollbacks, progress, queueBehind, type SchedulingStep, swapReason } from "./Scheduling.js"
import { type ExecutionIntent, holdQueued, makeStepWrites, oldVmOf } from "./StepWrites.js"

export const ExecutorConfig = Config.all({
  /**
   * The least time from the end of one advance to the next for settled VMs, unless a run changes
   * meanwhile: what settles meanwhile is gathered for the next. Swaps and queued steps carry a run
   * on between advances, so fewer, larger advances cost less CPU; a step that waits for the
   * executor after a VM settles (a check to start or end, a slot come free) waits up to this much longer.
   */
  batchMs: durationSetting("FLEET_EXECUTOR_BATCH").pipe(
    Config.withDefault(Duration.millis(50)),
    Config.map(Duration.toMillis)
  ),
  /** Longest sleep between two looks at the active runs. */
  intervalMs: durationSetting("FLEET_EXECUTOR_INTERVAL").pipe(
    Config.withDefault(Duration.seconds(1)),
    Config.map(Duration.toMillis)
  )
})

/** Wakes the executor: a run was started or changed. */
export class RunsChanged extends Context.Tag("fleet/RunsChanged")<RunsChanged, Signal>() {
  static readonly layer = Layer.effect(RunsChanged, makeSignal)
}

const finishedRunStates: ReadonlyArray<RunState> = ["succeeded", "failed", "cancelled", "aborted"]
const stepStatesKeepingOldVm: ReadonlyArray<StepState> = ["failed", "rolling_back", "rolled_back"]
/** Steps whose old VM's decommission a queued step may wait for: it is written, or will be as the replacement is ready. */
const stepStatesAhead: ReadonlyArray<StepState> = ["creating", "decommissioning"]

/**
 * Moves every active run forward, one short transaction per run under the run's row lock
 * (`FOR UPDATE SKIP LOCKED`: a run another controller is advancing right now is skipped this
 * tick). Each step's work is writing rows — a VM request, a decommission — which the VM
 * reconciler then carries out through proctor; so a controller that dies mid-advance loses
 * nothing: its transaction rolls back and its lock goes with its connection.
 */
export class Executor extends Effect.Service<Executor>()("fleet/Executor", {
  effect: Effect.gen(function* () {
    const runs = yield* RunRepo
    const vmRepo = yield* VmRepo
    const catalog = yield* Catalog
    const settings = yield* ExecutorConfig
    const changed = yield* RunsChanged
    const settled = yield* VmSettled
    const handoff = yield* Handoff
    const readinessCheck = Option.isSome(catalog.readinessProc)
    const writes = makeStepWrites(vmRepo, catalog)
    /**
     * Swaps are written with their replacements (nothing to wait for between a replacement being
     * ready and its swap), and so a step queued behind one under way takes over its execution slot
     * as it finishes, without this executor: every step under way gets a pending step queued
     * behind it, as far as the fleet limits allow.
     */
    const queuesSteps = (run: RunRow) => !readinessCheck && run.bakeSeconds === 0

    const newVmOf = (step: StepRow): ExecutionTarget =>
      ({ ...step, id: step.newVmId!, name: step.newVmName ?? "", osVersion: step.targetOs })

    /** Decommissioning a step's VM (its old one, or its replacement in a rollback); the step moves to `state` once it is written. */
    const decommission = (step: StepRow, vm: "old" | "new", state: StepState, reason: string): ExecutionIntent => ({
      stepId: step.id,
      kind: "decommission",
      vm: vm === "old" ? oldVmOf(step) : newVmOf(step),
      to: "decommissioning",
      reason,
      stepState: state,
      failure: reason
    })

    const check = (step: StepRow): ExecutionIntent => ({
      stepId: step.id,
      kind: "check",
      vm: newVmOf(step),
      to: "ready",
      reason: `checking ${step.newVmName} with the readiness proc`,
      stepState: "checking",
      failure: "could not start the readiness check"
    })

    // The executions an advance writes go to this process's reconciler once its transaction has committed.
    const advanceRun = (runId: RunId) =>
      handoff.writingInTransaction((handoffs) =>
        Effect.gen(function* () {
          const locked = yield* runs.lockRun(runId)
          if (Option.isNone(locked)) return { moved: false, again: false }
          const run = locked.value
          const actor = run.createdBy
          const rollingBack = run.state === "aborting" && run.rollbackOnAbort

          // 1. Started steps move on from the states of their VMs.
          const started = yield* runs.activeSteps(run.id)
          const changes: Array<StepChange> = []
          const executions: Array<ExecutionIntent> = []
          // Baking steps to roll back: each needs an execution slot (granted below).
          const rollBackFromBaking: Array<{ readonly step: StepRow; readonly reason: string }> = []
          for (const step of started) {
            const action = advanceStep(step, { readinessCheck, bakeSeconds: run.bakeSeconds, rollingBack })
            switch (action._tag) {
              case "Wait":
                break
              case "Move":
                changes.push({ id: step.id, state: action.state, reason: action.reason, ...(action.bakeSeconds === undefined ? {} : { bakeSeconds: action.bakeSeconds }) })
                break
              case "Check":
                executions.push(check(step))
                break
              case "RollBack":
                if (step.state === "baking") rollBackFromBaking.push({ step, reason: action.reason })
                else executions.push(decommission(step, "new", "rolling_back", action.reason))
                break
            }
          }
          changes.push(...yield* writes.startExecutions(run, executions, handoffs))
          const newFailures = changes.filter((change) => change.state === "failed").length
          // Where each changed step was before this tick, to correct the counts below.
          const before = new Map(started.map((step) => [step.id as string, { wave: step.wave, state: step.state }]))
          const waitingRollBack = new Set<string>()
          if (rollingBack) {
            // Baking steps lose their replacement, and so do failed steps whose replacement came up
            // (a failed readiness check, a failed decommission): as many at once as the limits allow.
            const failed = yield* runs.failedWithReadyReplacement(run.id)
            const stateNow = new Map(changes.map((change) => [change.id as string, change.state]))
            const candidates = [
              ...rollBackFromBaking.map(({ reason, step }) => ({ step, reason, finished: false })),
              ...failed.map((step) => ({ step, reason: `rolling back: removing ${step.newVmName}`, finished: true }))
            ]
            const granted = new Set(grantRollbacks(
              started.map((step) => ({ ...step, state: stateNow.get(step.id) ?? step.state, baked: false })),
              candidates.map(({ finished, step }) => ({ id: step.id, index: step.index, fleet: step.fleet, fleetConcurrency: step.fleetConcurrency, finished })),
              run.maxInFlight
            ))
            for (const { step } of candidates) {
              if (!granted.has(step.id)) waitingRollBack.add(step.id)
              else if (!before.has(step.id)) before.set(step.id, { wave: step.wave, state: step.state })
            }
            changes.push(...yield* writes.startExecutions(
              run,
              candidates.filter(({ step }) => granted.has(step.id)).map(({ reason, step }) => decommission(step, "new", "rolling_back", reason)),
              handoffs
            ))
          }

          // Queued steps whose creation still waits: cancelled with the run; held while it is
          // paused (from the advance that cancels or pauses it: see the end of section 2).
          const changedNow = new Set(changes.map((change) => change.id as string))
          const waitingQueued = started.filter((step) => step.state === "queued" && step.createWaiting && !changedNow.has(step.id))
          const settleQueued = (runState: RunState) =>
            Effect.gen(function* () {
              if (runState === "cancelling" || runState === "aborting") {
                const why = runState === "cancelling" ? "the run was cancelled" : "the run was aborted"
                const cancelled = new Set<string>(
                  yield* vmRepo.cancelWaitingCreates(waitingQueued.map((step) => step.newVmId!), `not created: ${why} before its creation started`, actor, run.id)
                )
                for (const step of waitingQueued) {
                  if (cancelled.has(step.newVmId!)) changes.push({ id: step.id, state: "cancelled", reason: `${why}; ${step.newVmName} was never created` })
                }
              } else if (runState === "paused") {
                changes.push(...yield* holdQueued(vmRepo, waitingQueued.filter((step) => step.afterStepId !== null), "held while the run is paused"))
              }
            })
          yield* settleQueued(run.state)

          // 2. The run moves on: waves, the failure budget, the window, the end.
          let state = run.state
          let pauseReason = run.pauseReason
          let currentWave = run.currentWave
          let reason: string | undefined
          const failures = run.failures + newFailures
          const afterChanges = new Map(changes.map((change) => [change.id as string, change.state]))
          const tally = yield* runs.stepTally(run.id)
          const counts = tally.counts.map((entry) => ({ ...entry }))
          // Counts were read before this tick's changes are written: correct them.
          for (const [id, step] of before) {
            const next = afterChanges.get(id)
            if (next === undefined || next === step.state) continue
            const from = counts.find((entry) => entry.wave === step.wave && entry.state === step.state)
            if (from) from.count--
            const to = counts.find((entry) => entry.wave === step.wave && entry.state === next)
            if (to) to.count++
            else counts.push({ wave: step.wave, state: next, count: 1 })
          }
          const active = counts.some((entry) => activeStepStates.includes(entry.state) && entry.count > 0)
          if (state === "cancelling" || state === "aborting") {
            const cancelled = yield* runs.cancelPending(run.id, state === "cancelling" ? "the run was cancelled" : "the run was aborted")
            if (!active) {
              state = state === "cancelling" ? "cancelled" : "aborted"
              // The steps that ended failed, as the counts show them (a step whose rollback failed too is one of them, once).
              const failed = counts.filter((entry) => entry.state === "failed").reduce((sum, entry) => sum + entry.count, 0)
              reason = state === "cancelled" ? "cancelled; every started step has finished" : `aborted after ${failed} failed step(s)`
            } else if (cancelled > 0) {
              reason = `${cancelled} step(s) will not start; waiting for the steps under way`
            }
          } else {
            if (state === "running" && run.windowEndsAt !== null && run.windowEndsAt.getTime() <= Date.now()) {
              state = "paused"
              pauseReason = "window"
              reason = "the schedule window closed; the run resumes in the next window"
            }
            const next = progress(counts, currentWave, run.gates, failures, run.allowedFailures)
            switch (next._tag) {
              case "BudgetSpent":
                if (state === "running" || (state === "paused" && pauseReason !== "failure-budget")) {
                  if (run.failureAction === "abort") {
                    state = "aborting"
                    pauseReason = null
                    reason = `${failures} failed step(s), more than the budget of ${run.allowedFailures}: aborting${run.rollbackOnAbort ? " and rolling back" : ""}`
                    yield* runs.cancelPending(run.id, "the run was aborted")
                  } else {
                    state = "paused"
                    pauseReason = "failure-budget"
                    reason = `${failures} failed step(s), more than the budget of ${run.allowedFailures}: paused`
                  }
                }
                break
              case "NextWave":
                currentWave = next.wave
                // Paused (by an operator, or by its window) when the wave before ends: the gate holds all
                // the same, so that a resume, by an operator or by the next window, is not taken for approval.
                if (next.gate === "approval" && (state === "running" || state === "paused")) {
                  state = "paused"
                  pauseReason = "approval"
                  reason = `wave ${numbered(next.wave)} of ${run.gates.length} waits for approval (resume the run to approve)`
                } else {
                  reason = `wave ${numbered(next.wave)} of ${run.gates.length} started`
                }
                break
              case "Finished":
                state = next.failed === 0 ? "succeeded" : "failed"
                pauseReason = null
                reason = next.failed === 0 ? "every step is done" : `finished with ${next.failed} failed step(s)`
                break
              case "Continue":
                break
            }
          }

          // A run this advance pauses or aborts starts no queued step from now on either.
          if (state !== run.state) yield* settleQueued(state)

          // 3. Start what the limits allow: decommissions of baked steps first, then new steps.
          if (!finishedRunStates.includes(state)) {
            const schedulingStarted: Array<SchedulingStep> = started.map((step) => {
              const next = afterChanges.get(step.id) ?? step.state
              return {
                id: step.id,
                index: step.index,
                fleet: step.fleet,
                fleetConcurrency: step.fleetConcurrency,
                state: next,
                // A baking step waiting to be rolled back is not swapped in meanwhile.
                baked: next === "baking" && !waitingRollBack.has(step.id) && (step.state === "baking" ? step.baked : run.bakeSeconds === 0)
              }
            })
            const mayStart = state === "running" && currentWave === run.currentWave
            const limits = { maxInFlight: run.maxInFlight, maxFleetsInParallel: run.maxFleetsInParallel }
            // Decommissions take free execution slots first; what is left may start pending steps.
            const byId = new Map(started.map((step) => [step.id as string, step]))
            let decision = decide({ started: schedulingStarted, pending: [], inProgress: new Set() }, limits, false)
            const executing = schedulingStarted.filter((step) => executingStepStates.includes(step.state)).length
            const free = run.maxInFlight - executing - decision.decommission.length
            let pending: ReadonlyArray<PendingStep> = []
            const isAhead = (id: string) => {
              const state = afterChanges.get(id) ?? byId.get(id)?.state
              return state !== undefined && stepStatesAhead.includes(state)
            }
            // A queued step whose step ahead is no longer under way (it failed, it waits for this
            // executor's decommission, or it finished before the step was queued) is held: nothing but
            // this executor starts it now, whatever becomes of the old VM it waited for. Held steps
            // are taken up with pending steps, in step order: started as slots are free, or queued
            // again behind a step under way.
            let stranded: ReadonlyArray<ActiveStep> = []
            if (mayStart) {
              const detached = yield* holdQueued(
                vmRepo,
                waitingQueued.filter((step) => !afterChanges.has(step.id) && step.afterStepId !== null && !isAhead(step.afterStepId)),
                "held: the step ahead finished without starting it"
              )
              changes.push(...detached)
              const detachedIds = new Set(detached.map((change) => change.id as string))
              stranded = waitingQueued.filter((step) => !afterChanges.has(step.id) && (step.afterStepId === null || detachedIds.has(step.id)))
            }
            const strandedIds = new Set(stranded.map((step) => step.id as string))
            if (mayStart && free > 0) {
              const inProgress = new Set(tally.fleetsInProgress)
              // A held step is a candidate here, not a step holding its place in its fleet.
              const decideWith = (candidates: ReadonlyArray<StepRow>) =>
                decide({
                  started: schedulingStarted.filter((step) => !strandedIds.has(step.id)),
                  pending: [...stranded, ...candidates].map((step) => ({ ...step, baked: false })),
                  inProgress
                }, limits, true)
              // A few more candidates than free slots usually do; when the fleet limits passed over
              // some of them and more may be waiting, look further.
              const few = free * 2 + 20
              pending = yield* runs.pendingSteps(run.id, currentWave, few)
              decision = decideWith(pending)
              if (decision.start.length < free && pending.length === few) {
                pending = yield* runs.pendingSteps(run.id, currentWave, run.maxInFlight * 4 + 100)
                decision = decideWith(pending)
              }
            }
            const decommissions = decision.decommission.map((id) => {
              const step = byId.get(id)!
              const index = changes.findIndex((change) => change.id === step.id)
              if (index >= 0) changes.splice(index, 1)
              return decommission(step, "old", "decommissioning", swapReason(step.oldVmName, step.newVmName ?? ""))
            })
            changes.push(...yield* writes.startExecutions(run, decommissions, handoffs))
            // Each replacement is requested through the VM creation path's rows: name decided, written ahead.
            const pendingById = new Map(pending.map((step) => [step.id as string, step]))
            const strandedById = new Map(stranded.map((step) => [step.id as string, step]))
            const released = decision.start.flatMap((id) => strandedById.get(id) ?? [])
            changes.push(...yield* writes.startQueued(released, handoffs))
            const starting = decision.start.flatMap((id) => pendingById.get(id) ?? [])
            const requested = yield* writes.requestReplacements(run, starting, handoffs, queuesSteps(run))
            changes.push(...requested.changes)

            // Behind each step under way with nothing queued behind it, a held step or a pending one:
            // the run's next that the fleet limits allow, counting queued steps as started. A step
            // whose queued step could not be held (its creation started meanwhile) has it still.
            if (mayStart && queuesSteps(run)) {
              const taken = new Set(waitingQueued.flatMap((step) => strandedIds.has(step.id) || step.afterStepId === null ? [] : [step.afterStepId as string]))
              const stateAfterTick = new Map(changes.map((change) => [change.id as string, change.state]))
              // What a step queued behind each waits for: its old VM's decommission (a new step's: its swap, just written).
              const stepsNow = [
                ...started.map((step) => ({ ...step, decommissionId: step.aheadExecutionId })),
                ...starting.map((step) => ({ ...step, oldVmState: "ready" as const, decommissionId: requested.swaps.get(step.id) ?? null }))
              ].map((step) => ({ ...step, state: stateAfterTick.get(step.id) ?? step.state }))
              const ahead = stepsNow.flatMap(({ decommissionId, ...step }) =>
                stepStatesAhead.includes(step.state) && !taken.has(step.id) && step.oldVmState !== "decommissioned" && decommissionId !== null
                  ? [{ ...step, decommissionId }]
                  : []
              )
              if (ahead.length > 0) {
                const startedNow = new Set(starting.map((step) => step.id as string))
                const releasedIds = new Set(released.map((step) => step.id as string))
                const held = stranded.filter((step) => !releasedIds.has(step.id))
                const heldIds = new Set(held.map((step) => step.id as string))
                const pendingNow = (yield* runs.pendingSteps(run.id, currentWave, ahead.length * 2 + 20 + starting.length))
                  .filter((step) => !startedNow.has(step.id))
                const pairs = queueBehind(
                  {
                    started: stepsNow.filter((step) => !heldIds.has(step.id)).map((step) => ({ ...step, baked: false })),
                    candidates: [...held, ...pendingNow].map((step) => ({ ...step, baked: false })),
                    inProgress: new Set([...tally.fleetsInProgress, ...starting.map((step) => step.fleet)]),
                    waitingDecommissions: schedulingStarted.filter((step) => step.state === "baking" && step.baked).length - decision.decommission.length
                  },
                  ahead,
                  run.maxFleetsInParallel
                )
                const pendingNowById = new Map(pendingNow.map((step) => [step.id as string, step]))
                changes.push(...yield* writes.requeue(pairs.flatMap(({ behind, id }) => heldIds.has(id) ? [{ step: strandedById.get(id)!, behind }] : [])))
                changes.push(...yield* writes.queueReplacements(
                  run,
                  pairs.flatMap(({ behind, id }) => heldIds.has(id) ? [] : [{ step: pendingNowById.get(id)!, behind }]),
                  handoffs
                ))
              }
            }
          }
          const startFailures = changes.filter((change) => change.state === "failed").length - newFailures
          // A step that keeps its old VM (it failed, or is rolled back) must never swap: its waiting
          // decommission is cancelled (a retried creation could still make the replacement ready).
          // Rolling back, no replacement not yet ready may swap either. A swap that started first
          // is not cancelled, and the next advance sees the step decommissioning.
          const keepingOld = new Set(changes.filter((change) => stepStatesKeepingOldVm.includes(change.state)).map((change) => change.id as string))
          yield* vmRepo.cancelWaiting(
            started.filter((step) =>
              step.newVmId !== null && (keepingOld.has(step.id) || (rollingBack && (step.state === "creating" || step.state === "queued") && !step.swapStarted))
            )
              .map((step) => step.newVmId!),
            "not started: the step keeps its old VM"
          )
          yield* runs.changeSteps(run.id, changes, actor)
          if (state !== run.state || pauseReason !== run.pauseReason || currentWave !== run.currentWave || failures + startFailures !== run.failures) {
            yield* runs.updateRun(run, {
              state,
              pauseReason,
              currentWave,
              failures: failures + startFailures,
              ...(reason === undefined ? {} : { reason })
            }, actor)
          }
          if (state !== run.state || currentWave !== run.currentWave) {
            const level = state === "failed" || state === "aborted" || pauseReason === "failure-budget" ? Effect.logWarning : Effect.logInfo
            yield* level(`Run ${run.name}: ${run.state} → ${state}${pauseReason === null ? "" : ` (${pauseReason})`}${reason === undefined ? "" : `: ${reason}`}`)
          }
          // The run itself moved on (a wave, a state): what it allows now is decided by another advance at once.
          const again = state !== run.state || currentWave !== run.currentWave
          return { moved: changes.length > 0 || again, again }
        }), runs.withTransaction).pipe(Effect.annotateLogs({ run: runId }))

    /**
     * Advances every active run once; true when one of them should be advanced again at once (its
     * state or wave changed). Steps that moved need nothing more until a VM settles, which wakes
     * the loop.
     */
    const tick = Effect.gen(function* () {
      const ids = yield* runs.activeRunIds
      let again = false
      for (const id of ids) {
        const result = yield* advanceRun(id).pipe(
          Effect.catchAllCause((cause) => Effect.as(Effect.logError("advancing a run failed; it is retried next tick", cause), { moved: false, again: false }))
        )
        again = again || result.again
      }
      return again
    })

    /**
     * Until interrupted: advance the runs, then sleep until a VM settles, a run changes, a bake
     * ends, or the interval passes. VMs settle in bursts, so an advance for them comes at least
     * the batch time after the last one ended (one advance takes up a burst, in one transaction);
     * a run started or changed (an operator's word, one at a time) is taken up at once. What
     * settled or changed while the runs were being advanced is taken up without a wait.
     */
    const run = Effect.gen(function* () {
      yield* Effect.logInfo("Executor started")
      let advancedAt = Number.NEGATIVE_INFINITY
      /** Waits out what is left of the batch time since the last advance ended, unless a run changes meanwhile. */
      const gather = Effect.suspend(() => {
        const left = advancedAt + settings.batchMs - Date.now()
        return left > 0 ? Effect.asVoid(waitForAny([changed], Duration.millis(left))) : Effect.void
      })
      while (true) {
        const again = yield* tick.pipe(Effect.catchAllCause((cause) => Effect.as(Effect.logError("executor tick failed", cause), false)))
        advancedAt = Date.now()
        if (again) continue
        const settledMeanwhile = yield* settled.takePending
        const changedMeanwhile = yield* changed.takePending
        if (settledMeanwhile || changedMeanwhile) {
          if (!changedMeanwhile) yield* gather
          continue
        }
        const bake = yield* runs.nextBakeInMs.pipe(Effect.catchAllCause(() => Effect.succeed(Option.none<number>())))
        // A bake already over (its step waits for a slot, or it ended as the runs were advanced) is
        // looked at again after the batch time, not every few milliseconds until a slot comes free.
        const wait = Option.match(bake, {
          onNone: () => settings.intervalMs,
          onSome: (ms) => Math.min(settings.intervalMs, Math.max(5, ms > 0 ? ms : settings.batchMs))
        })
        const woken = yield* waitForAny([settled, changed], Duration.millis(wait))
        if (woken === settled) yield* gather
      }
    })

    return { advanceRun, tick, run } as const
  }),
  dependencies: [RunRepo.Default]
}) {}

/** Runs the executor loop for as long as the layer is alive. */
export const ExecutorLoop = Layer.scopedDiscard(Effect.flatMap(Executor, (executor) => Effect.forkScoped(executor.run)))
