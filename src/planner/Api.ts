import { HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "@effect/platform"
import { Schema } from "effect"
import { Authentication } from "../auth/Middleware.js"
import { InvalidInput, NotFound, strictInput } from "../common/Errors.js"
import { Plan } from "./Domain.js"
import {
  DeprecationList,
  DeprecationView,
  PlanId,
  PlanVerification,
  PolicyInput,
  SavedPlan,
  SavedPlanList,
  StalePlan,
  UnsupportedMediaType
} from "./Records.js"
import { ReportFormat } from "./Report.js"
import { PageLimit, QueryTime } from "../common/QueryParams.js"
import { RequiredScope } from "../auth/Scopes.js"

/** The content types a recycle plan may be posted as. YAML is a superset of JSON, so both are read by one parser. */
export const planContentTypes = ["application/yaml", "text/yaml", "application/x-yaml", "text/x-yaml", "application/json"] as const

const specDescription = "The recycle plan, as YAML or JSON text (see plans/README.md for its fields)."

/**
 * The body of `POST /v1/plans`, for the OpenAPI document and the typed client (which sends YAML).
 * The server reads the raw text itself, so that a JSON syntax error gets its line and column too.
 */
export const PlanSpecBody = Schema.Union(
  HttpApiSchema.Text({ contentType: "application/yaml" }).annotations({ description: specDescription }),
  HttpApiSchema.Text({ contentType: "text/yaml" }).annotations({ description: specDescription }),
  Schema.String.pipe(HttpApiSchema.withEncoding({ kind: "Json", contentType: "application/json" })).annotations({
    description: specDescription,
    jsonSchema: { type: "object", description: "The recycle plan as a JSON object, with the same fields as the YAML form." }
  })
).pipe(HttpApiSchema.withEncoding({ kind: "Text", contentType: "application/yaml" }))

const reportContent = {
  "text/plain": "format=text: the report for a terminal",
  "text/markdown": "format=markdown: the report for a pull request",
  "text/html": "format=html: the report as one self-contained HTML page"
} as const

interface OperationDoc {
  responses?: Record<string, { content?: Record<string, unknown> }>
  requestBody?: { content?: Record<string, { schema?: unknown }> }
}

/**
 * Adds the text reports to the documented responses of `statuses`: the generator gives each
 * status one content type (the JSON one); the handlers answer format=text|markdown|html as text.
 * A JSON body is documented with the recycle plan's own schema (a component, as SavedPlan has it).
 */
export const documentFormats = (statuses: ReadonlyArray<number>) => (document: Record<string, unknown>): Record<string, unknown> => {
  const operation = document as OperationDoc
  for (const status of statuses) {
    const response = operation.responses?.[status]
    if (response === undefined) continue
    response.content ??= {}
    for (const [contentType, description] of Object.entries(reportContent)) {
      response.content[contentType] = { schema: { type: "string", description } }
    }
  }
  const json = operation.requestBody?.content?.["application/json"]
  if (json !== undefined) json.schema = { $ref: "#/components/schemas/RecyclePlanSpec" }
  return document
}

export const FormatParams = Schema.Struct({
  format: Schema.optional(ReportFormat)
})

export const CreatePlanParams = Schema.Struct({
  /** `true`: compute and report, save nothing. `false` (the default): save the plan. */
  dryRun: Schema.optional(Schema.BooleanFromString),
  format: Schema.optional(ReportFormat),
  /** With dryRun: plan as of this day or instant instead of now (as `fleet plan --as-of`). */
  asOf: QueryTime
})

const Limit = PageLimit(500)

export class PlansApi extends HttpApiGroup.make("plans")
  .add(
    HttpApiEndpoint.post("createPlan", "/v1/plans").annotate(RequiredScope, "plans:read")
      .setUrlParams(strictInput(CreatePlanParams))
      .setPayload(PlanSpecBody)
      .addSuccess(Plan)
      .addSuccess(SavedPlan.annotations({ description: "The saved plan (format=json), or its report" }), { status: 201 })
      .addError(InvalidInput)
      .addError(UnsupportedMediaType)
      .annotate(OpenApi.Summary, "Compute a plan from a recycle plan: report it (dryRun=true) or save it")
      .annotate(OpenApi.Description,
        "The body is the recycle plan as YAML or JSON (Content-Type application/yaml, text/yaml or application/json). " +
          "With dryRun=true the plan is computed against the current inventory and deprecation policies and reported " +
          "(format=json, the default, gives the plan itself; text, markdown and html give a report); nothing is written. " +
          "Without it the plan is saved (201, Location: /v1/plans/{id}) with its hash and the inventory digest it was " +
          "computed from. A body with problems is answered 400 with every problem listed, with line and column.")
      .annotate(OpenApi.Transform, documentFormats([200, 201]))
  )
  .add(
    HttpApiEndpoint.get("listPlans", "/v1/plans").annotate(RequiredScope, "plans:read")
      .setUrlParams(strictInput(Schema.Struct({ limit: Schema.optional(Limit) })))
      .addSuccess(SavedPlanList)
      .addError(InvalidInput)
      .annotate(OpenApi.Summary, "Saved plans, newest first")
  )
  .add(
    HttpApiEndpoint.get("getPlan", "/v1/plans/:id").annotate(RequiredScope, "plans:read")
      .setPath(Schema.Struct({ id: PlanId }))
      .setUrlParams(strictInput(FormatParams))
      .addSuccess(SavedPlan)
      .addError(NotFound)
      .annotate(OpenApi.Summary, "A saved plan (format=json), or its report (text, markdown, html)")
      .annotate(OpenApi.Transform, documentFormats([200]))
  )
  .add(
    HttpApiEndpoint.get("verifyPlan", "/v1/plans/:id/verify").annotate(RequiredScope, "plans:read")
      .setPath(Schema.Struct({ id: PlanId }))
      .addSuccess(PlanVerification)
      .addError(NotFound)
      .addError(StalePlan)
      .annotate(OpenApi.Summary, "Check that a saved plan still matches the inventory and the policies (409 when it does not)")
  )
  .middleware(Authentication)
{}

export class DeprecationsApi extends HttpApiGroup.make("deprecations")
  .add(
    HttpApiEndpoint.get("listDeprecations", "/v1/deprecations").annotate(RequiredScope, "plans:read")
      .addSuccess(DeprecationList)
      .annotate(OpenApi.Summary, "Deprecation policies, with each one's status today")
  )
  .add(
    HttpApiEndpoint.put("putDeprecation", "/v1/deprecations/:os").annotate(RequiredScope, "plans:write")
      .setPath(Schema.Struct({ os: Schema.String.pipe(Schema.maxLength(40)) }))
      .setPayload(strictInput(PolicyInput))
      .addSuccess(DeprecationView)
      .addError(InvalidInput)
      .annotate(OpenApi.Summary, "Create or replace the deprecation policy of an OS version")
      .annotate(OpenApi.Description,
        "The OS version and the replacement must be in the catalog, a version may not replace itself, the end of life may not " +
          "be before the deprecation, and replacements may not go round in a circle. Every problem is listed (400) and nothing is written. " +
          "Fields left out are cleared (note, link, replacement). The edit survives restarts: plans/deprecations.yaml " +
          "only adds OS versions that have no policy yet.")
  )
  .middleware(Authentication)
{}
