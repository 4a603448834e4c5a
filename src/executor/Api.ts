import { HttpApiEndpoint, HttpApiGroup, OpenApi } from "@effect/platform"
import { Schema } from "effect"
import { Forbidden } from "../auth/Errors.js"
import { Authentication } from "../auth/Middleware.js"
import { documentFormats, FormatParams } from "../planner/Api.js"
import { CountOrPercent, Duration, Plan, PositiveInt } from "../planner/Domain.js"
import { PlanId, StalePlan } from "../planner/Records.js"
import { Conflict, InvalidInput, NotFound, strictInput } from "../common/Errors.js"
import { RunId, RunList, RunStarted, RunView, StepPage, StepState } from "./Domain.js"
import { PageLimit, QueryIndexCursor } from "../common/QueryParams.js"
import { RequiredScope } from "../auth/Scopes.js"

export class StartRun extends Schema.Class<StartRun>("StartRun")({
  /** On an abort (the failure budget's `abort` action), decommission the replacements of steps not yet swapped in. */
  rollbackOnAbort: Schema.optional(Schema.Boolean)
}) {}

/** What an on-demand replacement may override of the default strategy. */
export class StrategyOverrides extends Schema.Class<StrategyOverrides>("StrategyOverrides")({
  maxSurge: Schema.optional(CountOrPercent),
  maxUnavailable: Schema.optional(CountOrPercent),
  maxInFlight: Schema.optional(PositiveInt),
  bakeTime: Schema.optional(Duration)
}) {}

export class ReplacementRequest extends Schema.Class<ReplacementRequest>("ReplacementRequest")({
  environment: Schema.String.pipe(Schema.maxLength(100)),
  /** Every VM not on this OS version is replaced; without it, VMs on deprecated versions move to their replacement. */
  targetOs: Schema.optional(Schema.String.pipe(Schema.maxLength(100))),
  strategy: Schema.optional(StrategyOverrides),
  rollbackOnAbort: Schema.optional(Schema.Boolean)
}) {}

const Limit = PageLimit(1000)

const runPath = Schema.Struct({ id: RunId })

export class RunsApi extends HttpApiGroup.make("runs")
  .add(
    HttpApiEndpoint.post("startRun", "/v1/plans/:id/runs").annotate(RequiredScope, "runs:write")
      .setPath(Schema.Struct({ id: PlanId }))
      .setPayload(strictInput(StartRun))
      .addSuccess(RunStarted, { status: 202 })
      .addError(InvalidInput)
      .addError(NotFound)
      .addError(StalePlan)
      .addError(Conflict)
      .addError(Forbidden)
  )
  .add(
    HttpApiEndpoint.post("replaceApplication", "/v1/applications/:application/replacements").annotate(RequiredScope, "runs:write")
      .setPath(Schema.Struct({ application: Schema.String.pipe(Schema.maxLength(100)) }))
      .setPayload(strictInput(ReplacementRequest))
      .addSuccess(RunStarted, { status: 202 })
      .addError(InvalidInput)
      .addError(Conflict)
      .addError(Forbidden)
  )
  .add(
    HttpApiEndpoint.get("listRuns", "/v1/runs").annotate(RequiredScope, "plans:read")
      .setUrlParams(strictInput(Schema.Struct({ limit: Schema.optional(Limit) })))
      .addSuccess(RunList)
      .addError(InvalidInput)
      .addError(Forbidden)
  )
  .add(
    HttpApiEndpoint.get("getRun", "/v1/runs/:id").annotate(RequiredScope, "plans:read")
      .setPath(runPath)
      .addSuccess(RunView)
      .addError(NotFound)
      .addError(Forbidden)
  )
  .add(
    HttpApiEndpoint.get("getRunPlan", "/v1/runs/:id/plan").annotate(RequiredScope, "plans:read")
      .setPath(runPath)
      .setUrlParams(strictInput(FormatParams))
      .addSuccess(Plan)
      .addError(InvalidInput)
      .addError(NotFound)
      .addError(Forbidden)
      .annotate(OpenApi.Summary, "The plan a run executes (format=json), or its report (text, markdown, html)")
      .annotate(
        OpenApi.Description,
        "For a scheduled run, the plan as recomputed against the inventory when it fired. format=markdown answers " +
          "the report stored with the run when it started."
      )
      .annotate(OpenApi.Transform, documentFormats([200]))
  )
  .add(
    HttpApiEndpoint.get("listSteps", "/v1/runs/:id/steps").annotate(RequiredScope, "plans:read")
      .setPath(runPath)
      .setUrlParams(strictInput(Schema.Struct({
        state: Schema.optional(StepState),
        cursor: Schema.optional(QueryIndexCursor),
        limit: Schema.optional(Limit)
      })))
      .addSuccess(StepPage)
      .addError(InvalidInput)
      .addError(NotFound)
      .addError(Forbidden)
  )
  .add(HttpApiEndpoint.post("pauseRun", "/v1/runs/:id/pause").annotate(RequiredScope, "runs:write").setPath(runPath).addSuccess(RunView).addError(NotFound).addError(Conflict).addError(Forbidden))
  .add(HttpApiEndpoint.post("resumeRun", "/v1/runs/:id/resume").annotate(RequiredScope, "runs:write").setPath(runPath).addSuccess(RunView).addError(NotFound).addError(Conflict).addError(Forbidden))
  .add(HttpApiEndpoint.post("cancelRun", "/v1/runs/:id/cancel").annotate(RequiredScope, "runs:write").setPath(runPath).addSuccess(RunView).addError(NotFound).addError(Conflict).addError(Forbidden))
  .middleware(Authentication)
{}
