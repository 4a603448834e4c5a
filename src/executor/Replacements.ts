import { SqlClient } from "@effect/sql"
import { Clock, Effect, Schema } from "effect"
import type { Actor } from "../auth/Actor.js"
import { Catalog } from "../catalog/Catalog.js"
import { ApplicationName, unknownName } from "../catalog/Domain.js"
import { Conflict, InvalidInput, Issue } from "../common/Errors.js"
import { InventoryRepo } from "../inventory/Repo.js"
import { CountOrPercent, Duration, type Plan } from "../planner/Domain.js"
import { Deprecations, expectSupported, standingOf } from "../planner/Deprecations.js"
import { PlanService } from "../planner/PlanService.js"
import type { ReplacementRequest } from "./Api.js"
import { RunsChanged } from "./Executor.js"
import { Runs } from "./Runs.js"

/**
 * On-demand replacement of one application's fleets in one environment: a recycle plan written
 * for just them, saved like any other (so it can be reviewed afterwards), and started at once.
 */
export class Replacements extends Effect.Service<Replacements>()("fleet/Replacements", {
  effect: Effect.gen(function* () {
    const catalog = yield* Catalog
    const plans = yield* PlanService
    const runs = yield* Runs
    const deprecations = yield* Deprecations
    const inventory = yield* InventoryRepo
    const sql = yield* SqlClient.SqlClient
    const changed = yield* RunsChanged
    const environments = catalog.spec.environments.map((entry) => entry.name as string)
    const osVersions = catalog.spec.osVersions.map((entry) => entry.name as string)

    /** Why a replacement would move no VM: the application has none there, none on a version to leave, or each fleet's skip reasons. */
    const nothingToReplace = (application: string, request: ReplacementRequest, plan: Plan) =>
      Effect.gen(function* () {
        const where = `${application} in ${request.environment}`
        const skipped = plan.skipped.flatMap((fleet) => fleet.reasons.map((reason) => `${fleet.id}: ${reason.message}`))
        if (skipped.length > 0) return `nothing to replace for ${where} (${skipped.join("; ")})`
        const [live] = yield* inventory.counts([], { application, environment: request.environment }, false)
        const vms = live?.count ?? 0
        if (vms === 0) return `nothing to replace: ${application} has no live VM in ${request.environment}`
        return `nothing to replace for ${where}: ` + (request.targetOs === undefined
          ? `none of its ${vms} live VM(s) is on a deprecated OS version`
          : `its ${vms} live VM(s) are on ${request.targetOs} already`)
      })

    const replace = (application: string, request: ReplacementRequest, actor: Actor) =>
      Effect.gen(function* () {
        const issues: Array<Issue> = []
        if (!Schema.is(ApplicationName)(application)) issues.push(Issue.at("application", "expected an application name: 2-40 characters, lowercase letters, digits and '-'"))
        if (!environments.includes(request.environment)) {
          issues.push(Issue.at("environment", unknownName("environment", request.environment, environments)))
        }
        if (request.targetOs !== undefined && !osVersions.includes(request.targetOs)) {
          issues.push(Issue.at("targetOs", unknownName("OS version", request.targetOs, osVersions)))
        } else if (request.targetOs !== undefined) {
          // A recycle plan with such a target is reviewed (its report warns); this one would start at once.
          const target = standingOf(yield* deprecations.current, catalog, new Date(yield* Clock.currentTimeMillis), request.targetOs)
          if (target.status !== "supported") {
            issues.push(Issue.at("targetOs", `${request.targetOs} is itself ${target.status === "end-of-life" ? "past its end of life" : "deprecated"}; ` +
              expectSupported(target.supported)))
          }
        }
        if (issues.length > 0) return yield* Effect.fail(InvalidInput.fromIssues(issues))
        const overrides = request.strategy ?? {}
        const spec = {
          name: `replace-${application}-${request.environment}`,
          description: `On-demand replacement of ${application} in ${request.environment}, requested by ${actor.email}`,
          select: {
            osVersions: request.targetOs === undefined ? "deprecated" : osVersions.filter((os) => os !== request.targetOs),
            environments: { include: [request.environment] },
            applications: { include: [application] }
          },
          target: request.targetOs ?? "replacement",
          strategy: {
            ...(overrides.maxSurge === undefined ? {} : { maxSurge: Schema.encodeSync(CountOrPercent)(overrides.maxSurge) }),
            ...(overrides.maxUnavailable === undefined ? {} : { maxUnavailable: Schema.encodeSync(CountOrPercent)(overrides.maxUnavailable) }),
            ...(overrides.maxInFlight === undefined ? {} : { maxInFlight: overrides.maxInFlight }),
            ...(overrides.bakeTime === undefined ? {} : { bakeTime: Schema.encodeSync(Duration)(overrides.bakeTime) }),
            // Rolled back on abort: the first failed step aborts the run (the budget otherwise pauses it, and a pause is never rolled back).
            ...(request.rollbackOnAbort === true ? { failureBudget: { max: 0, action: "abort" } } : {})
          }
        }
        // Problems with the overrides (e.g. maxSurge 0 with maxUnavailable 0) come back as the plan's own InvalidInput.
        // A plan that cannot start (nothing to replace, or a fleet another run holds) is refused before it is saved.
        const admit = (plan: Plan) => {
          if (plan.steps.length > 0) return runs.refuseBusyFleets(plan.fleets.map((fleet) => fleet.id))
          return Effect.flatMap(nothingToReplace(application, request, plan), (message) => Effect.fail(new Conflict({ message })))
        }
        // The plan and its run in one transaction: two replacements of a fleet at the same instant may
        // both pass the busy check, and the one whose run is refused must not leave its plan saved.
        // Each logged once committed: a refused run rolls its plan back too.
        const [saved, started] = yield* sql.withTransaction(
          Effect.gen(function* () {
            const saved = yield* plans.save(JSON.stringify(spec), "on-demand replacement", actor, { admit, log: false })
            const started = yield* runs.start(
              saved.plan,
              { planId: saved.id, trigger: "on-demand", rollbackOnAbort: request.rollbackOnAbort ?? false, log: false },
              actor
            )
            return [saved, started] as const
          })
        ).pipe(Effect.catchTag("SqlError", Effect.die))
        // Once committed: the kick `start` gave inside the transaction may have found nothing to do.
        yield* changed.kick
        yield* Effect.logInfo(
          `Started run ${started.id} replacing ${application} in ${request.environment} for ${actor.email}: ` +
            `plan ${saved.id}, ${started.steps} step(s) in ${started.fleets} fleet(s)`
        ).pipe(Effect.annotateLogs({ run: started.id, plan: saved.id }))
        return started
      })

    return { replace } as const
  })
}) {}
