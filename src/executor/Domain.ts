import { Schema } from "effect"

export const RunId = Schema.UUID.pipe(Schema.brand("RunId"))
export type RunId = typeof RunId.Type

export const StepId = Schema.UUID.pipe(Schema.brand("StepId"))
export type StepId = typeof StepId.Type

/**
 * A run: running → succeeded | failed (some steps failed within the budget); paused (by an
 * operator, at an approval gate, by the failure budget, or outside its schedule window) →
 * running; cancelling → cancelled; aborting → aborted (the failure budget's abort).
 */
export const RunState = Schema.Literal("running", "paused", "cancelling", "aborting", "succeeded", "failed", "cancelled", "aborted")
export type RunState = typeof RunState.Type

export const activeRunStates: ReadonlyArray<RunState> = ["running", "paused", "cancelling", "aborting"]
export const isActiveRun = (state: RunState): boolean => activeRunStates.includes(state)

export const PauseReason = Schema.Literal("operator", "approval", "failure-budget", "window")
export type PauseReason = typeof PauseReason.Type

export const RunTrigger = Schema.Literal("manual", "schedule", "on-demand")
export type RunTrigger = typeof RunTrigger.Type

/**
 * A step replaces one VM: pending → creating (the replacement is being created) → checking
 * (the readiness proc runs, when the catalog has one) → baking → decommissioning (the old VM)
 * → done. Or failed; cancelled (never started); rolling_back → rolled_back (the replacement
 * removed again, the old VM kept). With nothing between a replacement being ready and its swap
 * (no readiness proc, no bake), a pending step may be queued behind a step under way: its
 * replacement is written, and its creation starts as the step ahead finishes (pending → queued →
 * creating), taking over that step's slot.
 */
export const StepState = Schema.Literal(
  "pending",
  "queued",
  "creating",
  "checking",
  "baking",
  "decommissioning",
  "done",
  "failed",
  "cancelled",
  "rolling_back",
  "rolled_back"
)
export type StepState = typeof StepState.Type

/** Steps with a proctor execution of theirs under way: what maxInFlight counts. */
export const executingStepStates: ReadonlyArray<StepState> = ["creating", "checking", "decommissioning", "rolling_back"]
/** Steps started and not finished: what a fleet's concurrency counts (a queued step holds its place from when it is queued). */
export const activeStepStates: ReadonlyArray<StepState> = ["queued", "creating", "checking", "baking", "decommissioning", "rolling_back"]
export const finishedStepStates: ReadonlyArray<StepState> = ["done", "failed", "cancelled", "rolled_back"]

export const StepCounts = Schema.Record({ key: StepState, value: Schema.Int })
export type StepCounts = typeof StepCounts.Type

export class StepFailure extends Schema.Class<StepFailure>("StepFailure")({
  step: Schema.Int,
  vm: Schema.String,
  fleet: Schema.String,
  reason: Schema.String,
  at: Schema.Date
}) {}

export class RunView extends Schema.Class<RunView>("Run")({
  id: RunId,
  uri: Schema.String,
  planId: Schema.String,
  name: Schema.String,
  state: RunState,
  pauseReason: Schema.NullOr(PauseReason),
  reason: Schema.NullOr(Schema.String),
  trigger: RunTrigger,
  currentWave: Schema.Int,
  waves: Schema.Int,
  steps: Schema.Int,
  counts: StepCounts,
  percent: Schema.Number,
  /**
   * Estimated completion: from the pace so far, and no sooner than the end of the latest bake under
   * way; null before either is known, or once the run ends.
   */
  eta: Schema.NullOr(Schema.Date),
  failures: Schema.Int,
  allowedFailures: Schema.Int,
  failureAction: Schema.Literal("pause", "abort"),
  recentFailures: Schema.Array(StepFailure),
  limits: Schema.Struct({
    maxInFlight: Schema.Int,
    maxFleetsInParallel: Schema.Int,
    bakeSeconds: Schema.Int
  }),
  rollbackOnAbort: Schema.Boolean,
  fireAt: Schema.NullOr(Schema.Date),
  windowEndsAt: Schema.NullOr(Schema.Date),
  createdBy: Schema.String,
  createdAt: Schema.Date,
  updatedAt: Schema.Date,
  finishedAt: Schema.NullOr(Schema.Date)
}) {}

export class StepView extends Schema.Class<StepView>("Step")({
  id: StepId,
  index: Schema.Int,
  wave: Schema.Int,
  fleet: Schema.String,
  oldVm: Schema.Struct({ id: Schema.String, name: Schema.String, osVersion: Schema.String }),
  newVm: Schema.NullOr(Schema.Struct({ id: Schema.String, name: Schema.String, osVersion: Schema.String })),
  state: StepState,
  reason: Schema.NullOr(Schema.String),
  bakeUntil: Schema.NullOr(Schema.Date),
  startedAt: Schema.NullOr(Schema.Date),
  finishedAt: Schema.NullOr(Schema.Date)
}) {}

export class StepPage extends Schema.Class<StepPage>("StepPage")({
  items: Schema.Array(StepView),
  nextCursor: Schema.NullOr(Schema.Int)
}) {}

export class RunList extends Schema.Class<RunList>("RunList")({
  items: Schema.Array(RunView)
}) {}

export class RunStarted extends Schema.Class<RunStarted>("RunStarted")({
  id: RunId,
  uri: Schema.String,
  steps: Schema.Int,
  fleets: Schema.Int
}) {}

export const runUri = (id: RunId): string => `/v1/runs/${id}`
