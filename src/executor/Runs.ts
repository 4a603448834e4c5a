import { Effect, Option, Schema } from "effect"
import type { Actor } from "../auth/Actor.js"
import { Conflict, InvalidInput, Issue, NotFound } from "../common/Errors.js"
import { uuidv7 } from "../common/Ids.js"
import { Plan } from "../planner/Domain.js"
import { renderPlan } from "../planner/Report.js"
import { VmId } from "../vms/Domain.js"
import { VmRepo } from "../vms/Repo.js"
import {
  finishedStepStates,
  RunId,
  RunList,
  RunStarted,
  type RunTrigger,
  runUri,
  RunView,
  StepFailure,
  StepPage,
  StepState,
  StepView
} from "./Domain.js"
import { RunsChanged } from "./Executor.js"
import { type NewStep, RunRepo, type RunRow, type StepRow } from "./Repo.js"
import { StepId } from "./Domain.js"
import { holdQueued } from "./StepWrites.js"

export interface StartOptions {
  readonly planId: string
  readonly trigger: RunTrigger
  readonly rollbackOnAbort?: boolean
  /** A scheduled run: the fire time it belongs to and when its window closes. */
  readonly fireAt?: Date
  readonly windowEndsAt?: Date
  /**
   * Whether to log the started run (yes when absent). No for a caller whose transaction may still
   * roll the run back: it logs once it has committed.
   */
  readonly log?: boolean
}

const toStepView = (step: StepRow): StepView =>
  new StepView({
    id: step.id,
    index: step.index,
    wave: step.wave,
    fleet: step.fleet,
    oldVm: { id: step.oldVmId, name: step.oldVmName, osVersion: step.fromOs },
    newVm: step.newVmId === null ? null : { id: step.newVmId, name: step.newVmName ?? "", osVersion: step.targetOs },
    state: step.state,
    reason: step.reason,
    bakeUntil: step.bakeUntil,
    startedAt: step.startedAt,
    finishedAt: step.finishedAt
  })

/** A fleet another run holds; a run that is stopping holds its fleets until its steps under way have finished. */
const fleetBusy = (fleet: string, runId: string, state: string) =>
  new Conflict({
    message: state === "cancelling" || state === "aborting"
      ? `fleet ${fleet} is still held by run ${runId}, which is ${state}: it lets its fleets go once its steps under way have finished (fleet runs watch ${runId})`
      : `fleet ${fleet} is already in the active run ${runId} (${state})`
  })

/** Starting runs of plans, controlling them (pause, resume, cancel), and reading them back. */
export class Runs extends Effect.Service<Runs>()("fleet/Runs", {
  effect: Effect.gen(function* () {
    const repo = yield* RunRepo
    const vmRepo = yield* VmRepo
    const changed = yield* RunsChanged

    /**
     * A run that may no longer start steps holds its queued ones in the same transaction, so that
     * none of them starts as the step ahead of it finishes (the executor cancels or restarts them).
     */
    const holdQueuedSteps = (run: RunRow, reason: string, actor: Actor) =>
      Effect.gen(function* () {
        const queued = yield* repo.queuedSteps(run.id)
        yield* repo.changeSteps(run.id, yield* holdQueued(vmRepo, queued, reason), actor.email)
      })

    /**
     * Refuses, before the plan's freshness is checked, a plan whose fleets an active run holds:
     * while it does, the plan cannot run however fresh it is, and that run's own progress is what
     * makes it stale. (`start` checks again, in its transaction.)
     */
    const refuseBusyFleets = (fleets: ReadonlyArray<string>) =>
      Effect.flatMap(repo.busyFleet(fleets), Option.match({
        onNone: () => Effect.void,
        onSome: (busy) => Effect.fail(fleetBusy(busy.fleet, busy.runId, busy.state))
      }))

    /**
     * Starts a run of a verified plan: one step per VM the plan moves, every moving fleet taken
     * for this run (a fleet is in at most one active run: Conflict otherwise).
     */
    const start = (plan: Plan, options: StartOptions, actor: Actor) =>
      Effect.gen(function* () {
        if (options.rollbackOnAbort === true && plan.limits.failureBudget.action !== "abort") {
          return yield* Effect.fail(InvalidInput.fromIssues([
            Issue.at("rollbackOnAbort", "the plan's failure budget pauses the run (action: pause): it never aborts, so nothing would be rolled back; " +
              "give the plan failureBudget.action: abort to have it aborted and rolled back")
          ]))
        }
        const fleets = new Map(plan.fleets.map((fleet) => [fleet.id as string, fleet]))
        const steps: Array<NewStep> = plan.steps.map((step) => {
          const fleet = fleets.get(step.fleet)!
          return {
            id: StepId.make(uuidv7()),
            index: step.index,
            wave: step.wave,
            fleet: step.fleet,
            application: fleet.application,
            environment: fleet.environment,
            stack: fleet.stack,
            fleetConcurrency: Math.max(1, fleet.limits.concurrency),
            oldVmId: VmId.make(step.vmId),
            oldVmName: step.vmName,
            fromOs: step.from,
            targetOs: step.to,
            machineType: step.machineType
          }
        })
        const id = RunId.make(uuidv7())
        yield* repo.insertRun(
          {
            id,
            planId: options.planId,
            name: plan.name,
            trigger: options.trigger,
            plan,
            report: renderPlan(plan, "markdown"),
            waves: plan.waves.length,
            gates: plan.waves.map((wave) => wave.gate),
            maxInFlight: plan.limits.maxInFlight,
            maxFleetsInParallel: plan.limits.maxFleetsInParallel,
            bakeSeconds: plan.limits.bakeSeconds,
            allowedFailures: plan.limits.failureBudget.allowedFailures,
            failureAction: plan.limits.failureBudget.action,
            rollbackOnAbort: options.rollbackOnAbort ?? false,
            fireAt: options.fireAt ?? null,
            windowEndsAt: options.windowEndsAt ?? null,
            createdBy: actor.email
          },
          steps,
          [...fleets.keys()]
        ).pipe(
          Effect.catchTags({
            FleetBusy: (busy) => Effect.fail(fleetBusy(busy.fleet, busy.runId, busy.runState)),
            AlreadyFired: () => Effect.fail(new Conflict({ message: `plan ${options.planId} already has a run for the fire of ${options.fireAt?.toISOString()}` }))
          })
        )
        yield* changed.kick
        if (options.log !== false) {
          yield* Effect.logInfo(`Started run ${id} of plan ${plan.name}: ${steps.length} step(s) in ${fleets.size} fleet(s)`).pipe(
            Effect.annotateLogs({ run: id, plan: options.planId })
          )
        }
        return new RunStarted({ id, uri: runUri(id), steps: steps.length, fleets: fleets.size })
      })

    const find = (id: RunId) =>
      Effect.flatMap(repo.findRun(id), Option.match({
        onNone: () => Effect.fail(NotFound.of("run", id)),
        onSome: Effect.succeed
      }))

    const view = (run: RunRow) =>
      Effect.gen(function* () {
        const counts = Object.fromEntries(StepState.literals.map((state) => [state, 0])) as Record<StepState, number>
        const rows = yield* repo.stepCounts(run.id)
        for (const entry of rows) counts[entry.state as StepState] = entry.count
        const total = Object.values(counts).reduce((sum, count) => sum + count, 0)
        const finished = finishedStepStates.reduce((sum, state) => sum + counts[state], 0)
        const failures = yield* repo.recentFailures(run.id, 10)
        // A paused run has no end to estimate until it is resumed (and an estimate that moves with
        // every look would redraw `runs watch` for nothing).
        const estimable = ["running", "cancelling", "aborting"].includes(run.state)
        const now = Date.now()
        const byPace = finished > 0 ? now + ((now - run.createdAt.getTime()) / finished) * (total - finished) : null
        // A step baking ends no sooner than its bake: the pace of steps that ended early (cancelled ones, say) knows nothing of it.
        const baked = rows.find((entry) => entry.state === "baking")?.bakeUntil?.getTime() ?? null
        const eta = estimable && finished < total && (byPace !== null || baked !== null)
          ? new Date(Math.max(byPace ?? 0, baked ?? 0))
          : null
        return new RunView({
          id: run.id,
          uri: runUri(run.id),
          planId: run.planId,
          name: run.name,
          state: run.state,
          pauseReason: run.pauseReason,
          reason: run.reason,
          trigger: run.trigger,
          currentWave: run.currentWave,
          waves: run.waves,
          steps: total,
          counts,
          percent: total === 0 ? 100 : Math.round((finished / total) * 1000) / 10,
          eta,
          failures: run.failures,
          allowedFailures: run.allowedFailures,
          failureAction: run.failureAction,
          recentFailures: failures.map((step) =>
            new StepFailure({ step: step.index, vm: step.oldVmName, fleet: step.fleet, reason: step.reason ?? "", at: step.finishedAt ?? step.startedAt ?? run.updatedAt })
          ),
          limits: { maxInFlight: run.maxInFlight, maxFleetsInParallel: run.maxFleetsInParallel, bakeSeconds: run.bakeSeconds },
          rollbackOnAbort: run.rollbackOnAbort,
          fireAt: run.fireAt,
          windowEndsAt: run.windowEndsAt,
          createdBy: run.createdBy,
          createdAt: run.createdAt,
          updatedAt: run.updatedAt,
          finishedAt: run.finishedAt
        })
      })

    /** A control action on a run in one of `from`; Conflict when it is in another state. */
    const control = (id: RunId, from: ReadonlyArray<RunRow["state"]>, verb: string, apply: (run: RunRow) => Effect.Effect<void>) =>
      Effect.gen(function* () {
        const updated = yield* repo.withTransaction(
          Effect.gen(function* () {
            const locked = yield* repo.lockRunForControl(id)
            if (Option.isNone(locked)) return yield* Effect.fail(NotFound.of("run", id))
            const run = locked.value
            if (!from.includes(run.state)) {
              return yield* Effect.fail(new Conflict({ message: `cannot ${verb} run ${id}: it is ${run.state}; expected ${from.join(" or ")}` }))
            }
            yield* apply(run)
          })
        ).pipe(Effect.catchTag("SqlError", Effect.die))
        yield* changed.kick
        return updated
      }).pipe(Effect.zipRight(Effect.flatMap(find(id), view)))

    return {
      start,
      refuseBusyFleets,
      get: (id: RunId) => Effect.flatMap(find(id), view),
      /** The plan the run executes and the report (Markdown) stored with the run when it started. */
      plan: (id: RunId) =>
        Effect.gen(function* () {
          const stored = yield* repo.runPlan(id)
          if (Option.isNone(stored)) return yield* Effect.fail(NotFound.of("run", id))
          const plan = yield* Schema.decodeUnknown(Plan)(stored.value.plan).pipe(Effect.orDie)
          return { plan, report: stored.value.report }
        }),
      list: (limit: number) =>
        Effect.gen(function* () {
          const rows = yield* repo.listRuns(limit)
          return new RunList({ items: yield* Effect.forEach(rows, view) })
        }),
      steps: (id: RunId, state: Option.Option<StepState>, afterIndex: number, limit: number) =>
        Effect.gen(function* () {
          yield* find(id)
          const rows = yield* repo.listSteps(id, state, afterIndex, limit + 1)
          const items = rows.slice(0, limit)
          return new StepPage({ items: items.map(toStepView), nextCursor: rows.length > limit ? items[items.length - 1]!.index : null })
        }),
      /** No new step starts; steps under way finish. */
      pause: (id: RunId, actor: Actor) =>
        control(id, ["running"], "pause", (run) =>
          Effect.zipRight(
            repo.updateRun(run, { state: "paused", pauseReason: "operator", reason: `paused by ${actor.email}` }, actor.email),
            holdQueuedSteps(run, `held: the run was paused by ${actor.email}`, actor)
          )),
      /**
       * Resumes a paused run, whatever paused it: an approval gate (this approves it), the failure
       * budget (the failures so far are accepted; one more pauses it again), the schedule window
       * (this overrides the window), or an operator.
       */
      resume: (id: RunId, actor: Actor) =>
        control(id, ["paused"], "resume", (run) =>
          repo.updateRun(run, {
            state: "running",
            pauseReason: null,
            reason: run.pauseReason === "approval" ? `approved by ${actor.email}` : `resumed by ${actor.email}`,
            ...(run.pauseReason === "failure-budget" ? { allowedFailures: run.failures } : {}),
            ...(run.pauseReason === "window" ? { windowEndsAt: null } : {})
          }, actor.email)),
      /** No new step starts; steps under way finish, so every fleet ends with each VM either replaced or untouched. */
      cancel: (id: RunId, actor: Actor) =>
        control(id, ["running", "paused"], "cancel", (run) =>
          Effect.zipRight(
            repo.updateRun(run, { state: "cancelling", pauseReason: null, reason: `cancelled by ${actor.email}` }, actor.email),
            holdQueuedSteps(run, `held: the run was cancelled by ${actor.email}`, actor)
          ))
    } as const
  }),
  dependencies: [RunRepo.Default, VmRepo.Default]
}) {}
