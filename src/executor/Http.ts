import { HttpApiBuilder } from "@effect/platform"
import { Effect, Option } from "effect"
import { authorizeApplication, canSee, requireScope } from "../auth/Authorization.js"
import { Conflict, NotFound } from "../common/Errors.js"
import { FleetApi } from "../http/Api.js"
import { reportResponse } from "../planner/Http.js"
import { PlanService } from "../planner/PlanService.js"
import type { RunId } from "./Domain.js"
import { Replacements } from "./Replacements.js"
import { RunRepo } from "./Repo.js"
import { Runs } from "./Runs.js"

export const RunsHttp = HttpApiBuilder.group(FleetApi, "runs", (handlers) =>
  Effect.gen(function* () {
    const runs = yield* Runs
    const plans = yield* PlanService
    const replacements = yield* Replacements
    const repo = yield* RunRepo

    /** A run the caller may see: every application it touches is within the caller's token (404 otherwise, revealing nothing). */
    const visible = (id: RunId, caller: Parameters<typeof canSee>[0]) =>
      Effect.gen(function* () {
        if (caller.applications === undefined) return
        const applications = yield* repo.runApplications(id)
        if (!applications.every((application) => canSee(caller, application))) return yield* Effect.fail(NotFound.of("run", id))
      })

    return handlers
      .handle("startRun", ({ path, payload }) =>
        Effect.gen(function* () {
          const caller = yield* requireScope("runs:write")
          const saved = yield* plans.get(path.id)
          for (const application of new Set(saved.plan.fleets.map((fleet) => fleet.application as string))) yield* authorizeApplication(application)
          // A fleet held by an active run answers before staleness: that run's progress also makes the plan stale.
          yield* runs.refuseBusyFleets(saved.plan.fleets.map((fleet) => fleet.id))
          const plan = yield* plans.verifySaved(saved)
          // A scheduled plan with nothing to do still records its fire as an empty run; asked for by hand, it is refused.
          if (plan.steps.length === 0) {
            return yield* Effect.fail(new Conflict({ message: `plan ${path.id} (${plan.name}) moves no VM: there is nothing to run (its report says why)` }))
          }
          return yield* runs.start(plan, { planId: path.id, trigger: "manual", rollbackOnAbort: payload.rollbackOnAbort ?? false }, caller)
        }))
      .handle("replaceApplication", ({ path, payload }) =>
        Effect.gen(function* () {
          yield* requireScope("runs:write")
          const caller = yield* authorizeApplication(path.application)
          return yield* replacements.replace(path.application, payload, caller)
        }))
      .handle("listRuns", ({ urlParams }) =>
        Effect.gen(function* () {
          const caller = yield* requireScope("plans:read")
          const list = yield* runs.list(urlParams.limit ?? 50)
          if (caller.applications === undefined) return list
          const items = []
          for (const run of list.items) {
            if (Option.isNone(yield* Effect.option(visible(run.id, caller)))) continue
            items.push(run)
          }
          return { ...list, items }
        }))
      .handle("getRun", ({ path }) =>
        Effect.gen(function* () {
          yield* visible(path.id, yield* requireScope("plans:read"))
          return yield* runs.get(path.id)
        }))
      .handle("getRunPlan", ({ path, urlParams }) =>
        Effect.gen(function* () {
          yield* visible(path.id, yield* requireScope("plans:read"))
          const { plan, report } = yield* runs.plan(path.id)
          const format = urlParams.format ?? "json"
          return reportResponse(plan, format, format === "markdown" ? { rendered: report } : {}) ?? plan
        }))
      .handle("listSteps", ({ path, urlParams }) =>
        Effect.gen(function* () {
          yield* visible(path.id, yield* requireScope("plans:read"))
          return yield* runs.steps(path.id, Option.fromNullable(urlParams.state), urlParams.cursor ?? -1, urlParams.limit ?? 100)
        }))
      .handle("pauseRun", ({ path }) =>
        Effect.gen(function* () {
          const caller = yield* requireScope("runs:write")
          yield* visible(path.id, caller)
          return yield* runs.pause(path.id, caller)
        }))
      .handle("resumeRun", ({ path }) =>
        Effect.gen(function* () {
          const caller = yield* requireScope("runs:write")
          yield* visible(path.id, caller)
          return yield* runs.resume(path.id, caller)
        }))
      .handle("cancelRun", ({ path }) =>
        Effect.gen(function* () {
          const caller = yield* requireScope("runs:write")
          yield* visible(path.id, caller)
          return yield* runs.cancel(path.id, caller)
        }))
  }))
