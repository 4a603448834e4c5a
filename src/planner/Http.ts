import { HttpApiBuilder, HttpIncomingMessage, type HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Clock, Effect, Option, Schema } from "effect"
import { requireScope } from "../auth/Authorization.js"
import { Forbidden } from "../auth/Errors.js"
import type { Scope } from "../auth/Scopes.js"
import { InvalidInput } from "../common/Errors.js"
import { FleetApi } from "../http/Api.js"
import { planContentTypes } from "./Api.js"
import type { Plan } from "./Domain.js"
import { Deprecations } from "./Deprecations.js"
import { PlanService } from "./PlanService.js"
import { PlanVerification, SavedPlan, UnsupportedMediaType } from "./Records.js"
import { renderPlan, type ReportFormat } from "./Report.js"

/** A recycle plan is a few kilobytes; this bounds what a request can make the server hold. */
const maxSpecBytes = 1_048_576

const reportContentTypes: Record<Exclude<ReportFormat, "json">, string> = {
  text: "text/plain; charset=utf-8",
  markdown: "text/markdown; charset=utf-8",
  html: "text/html; charset=utf-8"
}

/**
 * A text report of `plan`, or undefined for json (answered with the endpoint's JSON schema).
 * `rendered`: the report in this format already (as stored), instead of rendering it now.
 */
export const reportResponse = (
  plan: Plan,
  format: ReportFormat,
  options: { readonly status?: number; readonly headers?: Record<string, string>; readonly rendered?: string } = {}
) =>
  format === "json"
    ? undefined
    : HttpServerResponse.text(options.rendered ?? renderPlan(plan, format), {
      contentType: reportContentTypes[format],
      status: options.status ?? 200,
      ...(options.headers === undefined ? {} : { headers: options.headers })
    })

/** The body of a POST as text, if it is in a content type a recycle plan may be written in. */
const specText = (request: HttpServerRequest.HttpServerRequest) =>
  Effect.gen(function* () {
    const contentType = (request.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase()
    if (!planContentTypes.some((accepted) => accepted === contentType)) {
      return yield* Effect.fail(new UnsupportedMediaType({
        message: `${contentType === "" ? "no Content-Type" : `Content-Type ${contentType}`}: send the recycle plan as ` +
          `application/yaml, text/yaml or application/json (curl: -H 'content-type: application/yaml' --data-binary @plans/retire-deprecated.yaml)`,
        accepted: [...planContentTypes]
      }))
    }
    const text = yield* request.text.pipe(
      HttpIncomingMessage.withMaxBodySize(Option.some(maxSpecBytes)),
      Effect.mapError(() => InvalidInput.one([], `could not read the body; a recycle plan may be at most ${maxSpecBytes / 1024} KiB`))
    )
    if (text.trim() === "") return yield* Effect.fail(InvalidInput.one([], "the body is empty: expected a recycle plan (see plans/README.md)"))
    return text
  })

/**
 * The caller, if its token holds `scope` and is not limited to some applications: a plan covers
 * the whole inventory (every fleet its selection matches, and the OS mix of every environment),
 * and deprecation policies apply to every application.
 */
const requirePlanner = (scope: Scope) =>
  Effect.flatMap(requireScope(scope), (caller) =>
    caller.applications === undefined
      ? Effect.succeed(caller)
      : Effect.fail(new Forbidden({
        message: `plans and deprecation policies cover every application, and this token is limited to ${caller.applications.join(", ")}; ` +
          "use a token without an application limit",
        scope
      })))

const now = Effect.map(Clock.currentTimeMillis, (millis) => new Date(millis))

export const PlansHttp = HttpApiBuilder.group(FleetApi, "plans", (handlers) =>
  Effect.gen(function* () {
    const plans = yield* PlanService
    return handlers
      // Raw: the body is read here, as text, whatever its content type.
      .handleRaw("createPlan", ({ request, urlParams }) =>
        Effect.gen(function* () {
          const actor = yield* requirePlanner(urlParams.dryRun === true ? "plans:read" : "plans:write")
          if (urlParams.asOf !== undefined && urlParams.dryRun !== true) {
            return yield* Effect.fail(InvalidInput.one("asOf", "asOf only goes with dryRun=true: a saved plan is made as of now, as the executor will check it"))
          }
          const text = yield* specText(request)
          const format = urlParams.format ?? "json"
          if (urlParams.dryRun === true) {
            const plan = yield* plans.dryRun(text, "body", urlParams.asOf ?? (yield* now))
            return reportResponse(plan, format) ?? plan
          }
          const saved = yield* plans.save(text, "body", actor)
          const headers = { location: saved.uri }
          return reportResponse(saved.plan, format, { status: 201, headers }) ??
            HttpServerResponse.unsafeJson(Schema.encodeSync(SavedPlan)(saved), { status: 201, headers })
        }))
      .handle("listPlans", ({ urlParams }) => Effect.zipRight(requirePlanner("plans:read"), plans.list(urlParams.limit ?? 50)))
      .handle("getPlan", ({ path, urlParams }) =>
        requirePlanner("plans:read").pipe(
          Effect.zipRight(plans.get(path.id)),
          Effect.map((saved) => reportResponse(saved.plan, urlParams.format ?? "json") ?? saved)
        ))
      .handle("verifyPlan", ({ path }) =>
        Effect.gen(function* () {
          yield* requirePlanner("plans:read")
          const fresh = yield* plans.verify(path.id)
          return new PlanVerification({
            id: path.id,
            current: true,
            inventoryDigest: fresh.inventoryDigest,
            verifiedAt: yield* now,
            message: "the inventory and the deprecation policies still give this plan"
          })
        }))
  }))

export const DeprecationsHttp = HttpApiBuilder.group(FleetApi, "deprecations", (handlers) =>
  Effect.gen(function* () {
    const deprecations = yield* Deprecations
    return handlers
      .handle("listDeprecations", () => Effect.zipRight(requireScope("plans:read"), Effect.flatMap(now, deprecations.list)))
      .handle("putDeprecation", ({ path, payload }) =>
        Effect.gen(function* () {
          const actor = yield* requirePlanner("plans:write")
          return yield* deprecations.put(path.os, payload, actor, yield* now)
        }))
  }))
