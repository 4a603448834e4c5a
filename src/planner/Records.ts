/**
 * What the planner stores and serves: saved plans (a recycle plan, the plan computed from it and
 * what it was computed from), deprecation policies as rows, and the errors about them. Shared by
 * the service, the HTTP API and the CLI.
 */
import { HttpApiSchema } from "@effect/platform"
import { Schema } from "effect"
import { OsVersion } from "../catalog/Domain.js"
import { DeprecationPolicy, Plan, PolicyStatus, RecyclePlanSpec } from "./Domain.js"

/** A saved plan's id (a version 7 UUID: ids sort by creation time). */
export const PlanId = Schema.UUID.pipe(Schema.brand("PlanId"))
export type PlanId = typeof PlanId.Type

export const planUri = (id: PlanId): string => `/v1/plans/${id}`

/** A saved plan at a glance: what `GET /v1/plans` lists. */
export class SavedPlanSummary extends Schema.Class<SavedPlanSummary>("SavedPlanSummary")({
  id: PlanId,
  uri: Schema.String,
  name: Schema.String,
  /** Where the recycle plan came from: a file name, or "body" for one posted over HTTP. */
  source: Schema.NullOr(Schema.String),
  /** The planning time: what "deprecated as of now" meant. The executor re-verifies as of this time too. */
  asOf: Schema.String,
  specHash: Schema.String,
  planHash: Schema.String,
  inventoryDigest: Schema.String,
  fleetsMoving: Schema.NonNegativeInt,
  vmsMoving: Schema.NonNegativeInt,
  fleetsSkipped: Schema.NonNegativeInt,
  steps: Schema.NonNegativeInt,
  waves: Schema.NonNegativeInt,
  estimatedSeconds: Schema.NonNegativeInt,
  createdBy: Schema.String,
  createdAt: Schema.Date
}) {}

/**
 * A saved plan in full: the recycle plan as it was submitted (`specText`) and as it was read
 * (`spec`, defaults filled in), and the plan computed from it. `plan.planHash` is checked against
 * the plan every time it is read back.
 */
export class SavedPlan extends Schema.Class<SavedPlan>("SavedPlan")({
  ...SavedPlanSummary.fields,
  specText: Schema.String,
  spec: RecyclePlanSpec,
  plan: Plan
}) {
  get summary(): SavedPlanSummary {
    const { plan: _plan, spec: _spec, specText: _specText, ...summary } = this
    return new SavedPlanSummary(summary, { disableValidation: true })
  }
}

export class SavedPlanList extends Schema.Class<SavedPlanList>("SavedPlanList")({
  items: Schema.Array(SavedPlanSummary)
}) {}

/** A saved plan is still what would happen: the inventory and the policies it was computed from have not changed. */
export class PlanVerification extends Schema.Class<PlanVerification>("PlanVerification")({
  id: PlanId,
  current: Schema.Literal(true),
  inventoryDigest: Schema.String,
  verifiedAt: Schema.Date,
  message: Schema.String
}) {}

/**
 * A saved plan no longer matches the world: the VMs of its fleets changed (`inventory-changed`),
 * or the deprecation policies or the catalog changed what it would do (`policies-changed`).
 * Running it would not do what was reviewed; make a new plan.
 */
export class StalePlan extends Schema.TaggedError<StalePlan>()(
  "StalePlan",
  {
    message: Schema.String,
    planId: PlanId,
    reason: Schema.Literal("inventory-changed", "policies-changed"),
    /** inventory-changed: VMs of the plan's fleets added, removed, or changed (name, state or OS version) since. */
    differingVms: Schema.NonNegativeInt,
    /** policies-changed: steps and skipped fleets that would now differ. */
    differingSteps: Schema.NonNegativeInt,
    storedDigest: Schema.String,
    currentDigest: Schema.String
  },
  HttpApiSchema.annotations({ status: 409 })
) {}

/** A body in a format the endpoint does not read. */
export class UnsupportedMediaType extends Schema.TaggedError<UnsupportedMediaType>()(
  "UnsupportedMediaType",
  {
    message: Schema.String,
    accepted: Schema.Array(Schema.String)
  },
  HttpApiSchema.annotations({ status: 415 })
) {}

// ---------------------------------------------------------------------------------------------
// Deprecation policies as rows
// ---------------------------------------------------------------------------------------------

/** What `PUT /v1/deprecations/{os}` takes: a policy without its OS version, which is in the path (repeating it is allowed). */
export const PolicyInput = Schema.Struct({
  osVersion: Schema.optionalWith(Schema.String, { exact: true }),
  ...Schema.Struct(DeprecationPolicy.fields).omit("osVersion").fields
})
export type PolicyInput = typeof PolicyInput.Type

/** One policy as stored, with its status as of the time it was read and who changed it last. */
export class DeprecationView extends Schema.Class<DeprecationView>("DeprecationView")({
  ...PolicyStatus.fields,
  updatedBy: Schema.String,
  updatedAt: Schema.Date
}) {}

export class DeprecationList extends Schema.Class<DeprecationList>("DeprecationList")({
  /** The time the statuses are computed for. */
  asOf: Schema.String,
  policies: Schema.Array(DeprecationView)
}) {}

/** A stored policy row. */
export interface PolicyRow {
  readonly osVersion: OsVersion
  readonly policy: DeprecationPolicy
  readonly updatedBy: string
  readonly updatedAt: Date
}
