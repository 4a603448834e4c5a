/**
 * Deprecation policies: kept in the database, seeded from a YAML file, editable over HTTP.
 *
 * At start the file (FLEET_DEPRECATIONS, by default plans/deprecations.yaml) is read and checked
 * against the catalog (a broken file stops the start, with every problem listed). Each policy whose
 * OS version has no row yet is inserted; rows that exist are left alone, so an edit made with
 * `PUT /v1/deprecations/{os}` survives restarts. The file seeds; the database wins afterwards.
 *
 * The planner and on-demand replacements read the table each time (`current`). The check of each
 * VM request reads a remembered copy instead (`recent`): it is on the API's busiest path, and
 * policies change a few times a year. See `recent` for how stale that copy may be.
 */
import { SqlClient } from "@effect/sql"
import { Config, Duration, Effect } from "effect"
import { relative } from "node:path"
import type { Actor } from "../auth/Actor.js"
import { Catalog, type CatalogData } from "../catalog/Catalog.js"
import { unknownName } from "../catalog/Domain.js"
import type { OsVersion } from "../catalog/Domain.js"
import { InvalidInput, Issue } from "../common/Errors.js"
import { durationSetting } from "../config/Settings.js"
import { DeprecationPolicies, DeprecationPolicy, type PolicyStatus } from "./Domain.js"
import { policyStatuses } from "./Planner.js"
import { DeprecationList, DeprecationView, type PolicyInput, type PolicyRow } from "./Records.js"
import { PolicyRepo } from "./Repo.js"
import { defaultPoliciesPath, loadPolicies } from "./Spec.js"

export const DeprecationsConfig = Config.all({
  file: Config.string("FLEET_DEPRECATIONS").pipe(Config.withDefault(defaultPoliciesPath)),
  /**
   * How long a controller checks VM requests against the policies it read before reading them
   * again: the most a change made by another controller (`PUT /v1/deprecations/{os}` there) can
   * go unseen here. A change made through this controller is seen at once. `0 millis`: read them
   * for every request.
   */
  cacheTtl: durationSetting("FLEET_DEPRECATIONS_CACHE_TTL").pipe(Config.withDefault(Duration.seconds(10)))
})

/** Where an OS version stands under the deprecation policies at one moment. */
export type OsStanding =
  | { readonly status: "supported" }
  | {
    readonly status: "deprecated" | "end-of-life"
    /** Its policy as of that moment, with where its VMs would go (`resolvedReplacement`), if anywhere. */
    readonly policy: PolicyStatus
    /** The catalog's OS versions that are neither deprecated nor past their end of life then, in catalog order. */
    readonly supported: ReadonlyArray<string>
  }

/**
 * Where `os` stands under `policies` as of `now`. An OS version without a policy, or whose policy
 * is not in force yet, is supported. One derivation for every check that refuses or warns about a
 * version (a VM request's `osVersion`, a replacement's `targetOs`), so that they agree.
 */
export const standingOf = (policies: DeprecationPolicies, catalog: CatalogData, now: Date, os: string): OsStanding => {
  const unsupported = new Map(
    policyStatuses(policies, catalog, now).filter((status) => status.status !== "supported").map((status) => [status.osVersion as string, status])
  )
  const policy = unsupported.get(os)
  if (policy === undefined || policy.status === "supported") return { status: "supported" }
  const supported = catalog.spec.osVersions.map((entry) => entry.name as string).filter((name) => !unsupported.has(name))
  return { status: policy.status, policy, supported }
}

/** The end of a refusal of an unsupported OS version: what to ask for instead. */
export const expectSupported = (supported: ReadonlyArray<string>): string =>
  supported.length > 0
    ? `expected a supported version: ${supported.join(", ")}`
    : "no OS version of the catalog is supported under the deprecation policies"

const sameFields = (a: DeprecationPolicy, b: DeprecationPolicy): boolean =>
  a.deprecatedFrom === b.deprecatedFrom && a.endOfLife === b.endOfLife && a.replacement === b.replacement &&
  a.note === b.note && a.link === b.link

export class Deprecations extends Effect.Service<Deprecations>()("fleet/Deprecations", {
  effect: Effect.gen(function* () {
    const repo = yield* PolicyRepo
    const catalog = yield* Catalog
    const sql = yield* SqlClient.SqlClient
    const { cacheTtl, file } = yield* DeprecationsConfig
    const shownPath = relative(process.cwd(), file) || file

    // Seed: the file adds what is missing and never overwrites.
    const fromFile = yield* loadPolicies(file, catalog)
    const inserted = yield* repo.seed(fromFile.policies, `file:${shownPath}`)
    if (inserted.length > 0) {
      yield* Effect.logInfo(`Added ${inserted.length} deprecation polic${inserted.length === 1 ? "y" : "ies"} from ${shownPath}: ${inserted.join(", ")}`)
    }
    const stored = new Map((yield* repo.all).map((row) => [row.osVersion as string, row]))
    const differing = fromFile.policies.filter((policy) => {
      const row = stored.get(policy.osVersion)
      return row !== undefined && !sameFields(row.policy, policy)
    })
    if (differing.length > 0) {
      yield* Effect.logInfo(
        `The database's deprecation policies for ${differing.map((policy) => policy.osVersion).join(", ")} differ from ${shownPath}; ` +
          "the database wins (the file only adds OS versions that have no policy yet). Change them with PUT /v1/deprecations/{os}."
      )
    }

    const toView = (row: PolicyRow, statusByOs: ReadonlyMap<string, DeprecationView["status"]>, resolved: ReadonlyMap<string, OsVersion | undefined>) =>
      new DeprecationView({
        osVersion: row.osVersion,
        status: statusByOs.get(row.osVersion) ?? "supported",
        deprecatedFrom: row.policy.deprecatedFrom,
        endOfLife: row.policy.endOfLife,
        ...(row.policy.replacement === undefined ? {} : { replacement: row.policy.replacement }),
        ...(resolved.get(row.osVersion) === undefined ? {} : { resolvedReplacement: resolved.get(row.osVersion)! }),
        ...(row.policy.note === undefined ? {} : { note: row.policy.note }),
        ...(row.policy.link === undefined ? {} : { link: row.policy.link }),
        updatedBy: row.updatedBy,
        updatedAt: row.updatedAt
      })

    const viewsOf = (rows: ReadonlyArray<PolicyRow>, now: Date): ReadonlyArray<DeprecationView> => {
      const statuses = policyStatuses(rows.map((row) => row.policy), catalog, now)
      const statusByOs = new Map(statuses.map((status) => [status.osVersion as string, status.status]))
      const resolved = new Map(statuses.map((status) => [status.osVersion as string, status.resolvedReplacement]))
      const order = new Map(statuses.map((status, index) => [status.osVersion as string, index]))
      return [...rows]
        .sort((a, b) => (order.get(a.osVersion) ?? 0) - (order.get(b.osVersion) ?? 0))
        .map((row) => toView(row, statusByOs, resolved))
    }

    /** The policies the planner uses now. */
    const current = Effect.map(repo.all, (rows) => new DeprecationPolicies({ policies: rows.map((row) => row.policy) }))

    // A plain variable, read without a lock or a fiber (as the token cache is): the check runs on
    // every VM request, and Effect's cachedInvalidateWithTTL takes a semaphore that concurrent
    // requests queue on (28 µs a call with no one else waiting). A copy is kept until `cacheTtl` after its
    // read began; a read under way when this controller's own `put` commits is not kept (its
    // generation is past), so that the next request reads the new policy. A failed read keeps nothing.
    const ttlMs = Duration.toMillis(cacheTtl)
    let copy: { readonly policies: DeprecationPolicies; readonly until: number } | undefined
    let generation = 0
    const forget = Effect.sync(() => {
      copy = undefined
      generation += 1
    })

    /**
     * The policies as this controller read them at most FLEET_DEPRECATIONS_CACHE_TTL ago (10 s by
     * default), or after its own last `put`: for checks on every request, which must not cost a
     * query each. Statuses are still derived from them as of each request's own time, so a
     * deprecation date that passes is seen at once.
     */
    const recent: Effect.Effect<DeprecationPolicies> = Effect.suspend(() => {
      if (copy !== undefined && copy.until > Date.now()) return Effect.succeed(copy.policies)
      const started = { at: Date.now(), generation }
      return Effect.tap(current, (policies) =>
        Effect.sync(() => {
          if (ttlMs > 0 && generation === started.generation) copy = { policies, until: started.at + ttlMs }
        }))
    })

    /** Every policy, with its status as of `now`, in catalog order. */
    const list = (now: Date) =>
      Effect.map(repo.all, (rows) => new DeprecationList({ asOf: now.toISOString(), policies: viewsOf(rows, now) }))

    /**
     * Creates or replaces the policy of `os`. Every problem is listed at once: an OS version or a
     * replacement the catalog does not know, a version replacing itself, an end of life before the
     * deprecation, a chain of replacements that comes back to where it started. Nothing is written
     * unless there is none.
     */
    const put = (os: string, input: PolicyInput, actor: Actor, now: Date) =>
      Effect.gen(function* () {
        const known = catalog.spec.osVersions.map((entry) => entry.name)
        const issues: Array<Issue> = []
        if (!catalog.isKnownOsVersion(os)) {
          issues.push(Issue.at(["os"], unknownName("OS version", os, known)))
        }
        if (input.osVersion !== undefined && input.osVersion !== os) {
          issues.push(Issue.at(["osVersion"], `the body says ${input.osVersion} but the path says ${os}; leave osVersion out or make them agree`))
        }
        if (input.replacement !== undefined) {
          if (!catalog.isKnownOsVersion(input.replacement)) {
            issues.push(Issue.at(["replacement"], unknownName("OS version", input.replacement, known)))
          } else if (input.replacement === os) {
            issues.push(Issue.at(["replacement"], `${os} cannot replace itself`))
          }
        }
        if (input.endOfLife < input.deprecatedFrom) {
          issues.push(Issue.at(["endOfLife"], `end of life ${input.endOfLife} is before deprecatedFrom ${input.deprecatedFrom}`))
        }
        const policy = new DeprecationPolicy({
          osVersion: os as OsVersion,
          deprecatedFrom: input.deprecatedFrom,
          endOfLife: input.endOfLife,
          ...(input.replacement === undefined ? {} : { replacement: input.replacement }),
          ...(input.note === undefined ? {} : { note: input.note }),
          ...(input.link === undefined ? {} : { link: input.link })
        }, { disableValidation: true })

        return yield* Effect.gen(function* () {
          yield* repo.lockForWrite
          const rows = yield* repo.all
          // The replacement chain from `os`, with this policy in place of the stored one.
          const replacements = new Map<string, string | undefined>(rows.map((row) => [row.osVersion as string, row.policy.replacement]))
          replacements.set(os, policy.replacement)
          const path: Array<string> = [os]
          let next = replacements.get(os)
          while (next !== undefined && !path.includes(next)) {
            path.push(next)
            next = replacements.get(next)
          }
          if (next !== undefined && policy.replacement !== os) {
            issues.push(Issue.at(["replacement"], `replacements would go round in a circle: ${[...path, next].join(" → ")}`))
          }
          if (issues.length > 0) return yield* Effect.fail(InvalidInput.fromIssues(issues))
          const row = yield* repo.upsert(policy, actor.email)
          yield* Effect.logInfo(`Deprecation policy for ${os} set by ${actor.email}`).pipe(
            Effect.annotateLogs({ deprecatedFrom: policy.deprecatedFrom, endOfLife: policy.endOfLife, replacement: policy.replacement ?? "" })
          )
          const all = rows.filter((other) => other.osVersion !== os).concat([row])
          return viewsOf(all, now).find((view) => view.osVersion === os)!
        }).pipe(
          sql.withTransaction,
          Effect.catchTag("SqlError", Effect.die),
          // Once committed (not before: a read between the upsert and the commit would remember
          // the old policy): this controller's next VM request is checked against the new one.
          Effect.tap(() => forget)
        )
      })

    return { current, recent, list, put, source: shownPath } as const
  }),
  dependencies: [PolicyRepo.Default]
}) {}
