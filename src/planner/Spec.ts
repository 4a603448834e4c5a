/**
 * Reading recycle plans and deprecation policies: YAML (or JSON) text → decoded, cross-checked
 * values, or an InvalidInput that lists every problem at once, each with where it is.
 */
import { FileSystem } from "@effect/platform"
import { fromRoot } from "../common/Paths.js"
import { Effect, Either, Option, Schema } from "effect"
import * as YAML from "yaml"
import type { CatalogData } from "../catalog/Catalog.js"
import { unknownName } from "../catalog/Domain.js"
import { decodeInput, InvalidInput, Issue } from "../common/Errors.js"
import { matchesAny } from "../common/Glob.js"
import { parseYaml } from "../common/Yaml.js"
import {
  CountOrPercent,
  DeprecationPolicies,
  formatCountOrPercent,
  type KnownNames,
  limitsAllowNoProgress,
  makeRecyclePlanSpecSchema,
  type RecyclePlanSpec
} from "./Domain.js"

/** The policies shipped with fleet. */
export const defaultPoliciesPath = fromRoot("plans", "deprecations.yaml")
/** The folder of the example recycle plans. */
export const plansDirectory = fromRoot("plans")

export const knownNamesOf = (catalog: CatalogData): KnownNames => ({
  osVersions: catalog.spec.osVersions.map((entry) => entry.name),
  environments: catalog.spec.environments.map((entry) => entry.name),
  stacks: catalog.spec.stacks
})

// ---------------------------------------------------------------------------------------------
// Locations: schema problems are reported with the line and column of the key they concern.
// ---------------------------------------------------------------------------------------------

type Locator = (path: ReadonlyArray<string | number>) => string | undefined

const makeLocator = (text: string): Locator => {
  const lineCounter = new YAML.LineCounter()
  const document = YAML.parseDocument(text, { lineCounter, uniqueKeys: true })
  return (path) => {
    let node: unknown = document.contents
    let offset: number | undefined = YAML.isNode(node) ? node.range?.[0] : undefined
    for (const key of path) {
      if (YAML.isMap(node)) {
        const pair = node.items.find((item) => YAML.isScalar(item.key) && String(item.key.value) === String(key))
        if (pair === undefined) break
        // Point at the key: for an unexpected key that is what to delete, for a bad value it is on the same line.
        offset = YAML.isNode(pair.key) ? pair.key.range?.[0] : offset
        node = pair.value
      } else if (YAML.isSeq(node) && typeof key === "number") {
        const item = node.items[key]
        if (item === undefined) break
        offset = YAML.isNode(item) ? item.range?.[0] : offset
        node = item
      } else {
        break
      }
    }
    if (offset === undefined) return undefined
    const position = lineCounter.linePos(offset)
    return `line ${position.line}, column ${position.col}`
  }
}

type Path = ReadonlyArray<string | number>

const located = (locate: Locator, path: Path, message: string): string => {
  const where = locate(path)
  return where === undefined ? message : `${message} (${where})`
}

const issueAt = (locate: Locator, path: Path, message: string): Issue => Issue.at(path, located(locate, path, message))

/** Decodes with decodeInput (every problem, unknown keys refused), then adds to each problem where it is in the text. */
const decodeAll = <A, I>(schema: Schema.Schema<A, I>, raw: unknown, locate: Locator): Effect.Effect<Either.Either<A, ReadonlyArray<Issue>>> =>
  decodeInput(schema)(raw).pipe(
    Effect.mapError((error) => error.issues.map((issue) => new Issue({ path: issue.path, message: located(locate, issue.path, issue.message) }))),
    Effect.either
  )

// ---------------------------------------------------------------------------------------------
// Cross-field checks on the raw document. They run on the raw value, not the decoded one, so that
// they are reported together with type errors elsewhere in the file rather than after they are fixed.
// ---------------------------------------------------------------------------------------------

const at = (value: unknown, ...keys: ReadonlyArray<string>): unknown =>
  keys.reduce<unknown>((current, key) =>
    typeof current === "object" && current !== null && !Array.isArray(current)
      ? (current as Record<string, unknown>)[key]
      : undefined, value)

const decodeOption = <A, I>(schema: Schema.Schema<A, I>, value: unknown): Option.Option<A> =>
  Schema.decodeUnknownOption(schema)(value)

const stringList = (value: unknown): ReadonlyArray<string> | undefined =>
  Array.isArray(value) && value.every((item) => typeof item === "string") ? value : undefined

const selectedNames = (filter: unknown, names: ReadonlyArray<string>): ReadonlyArray<string> | undefined => {
  if (filter === undefined) return names
  const include = at(filter, "include") === undefined ? ["*"] : stringList(at(filter, "include"))
  const exclude = at(filter, "exclude") === undefined ? [] : stringList(at(filter, "exclude"))
  if (include === undefined || exclude === undefined) return undefined
  const included = matchesAny(include)
  const excluded = matchesAny(exclude)
  return names.filter((name) => included(name) && !excluded(name))
}

const crossCheckSpec = (raw: unknown, known: KnownNames, locate: Locator): ReadonlyArray<Issue> => {
  const issues: Array<Issue> = []

  const surge = at(raw, "strategy", "maxSurge") === undefined
    ? Option.some({ kind: "percent" as const, value: 25 })
    : decodeOption(CountOrPercent, at(raw, "strategy", "maxSurge"))
  const unavailable = at(raw, "strategy", "maxUnavailable") === undefined
    ? Option.some({ kind: "count" as const, value: 0 })
    : decodeOption(CountOrPercent, at(raw, "strategy", "maxUnavailable"))
  if (Option.isSome(surge) && Option.isSome(unavailable) && limitsAllowNoProgress(surge.value, unavailable.value)) {
    issues.push(issueAt(locate, ["strategy", "maxSurge"],
      `maxSurge ${formatCountOrPercent(surge.value)} with maxUnavailable ${formatCountOrPercent(unavailable.value)} allows no progress: ` +
        "no step could ever start; raise one of them"))
  }

  const target = at(raw, "target")
  const sources = stringList(at(raw, "select", "osVersions"))
  // A version listed twice is a slip (a version meant, and another typed twice), not a wish to move it twice.
  sources?.forEach((os, index) => {
    const first = sources.indexOf(os)
    if (first < index) issues.push(issueAt(locate, ["select", "osVersions", index], `${os} is listed already (select.osVersions[${first}])`))
  })
  if (typeof target === "string" && sources?.includes(target)) {
    issues.push(issueAt(locate, ["target"], `${target} is the target and also listed in select.osVersions; a VM cannot move to the version it is on`))
  }

  const environments = selectedNames(at(raw, "select", "environments"), known.environments)
  if (environments !== undefined && environments.length === 0) {
    issues.push(issueAt(locate, ["select", "environments"], "selects no environment of the catalog"))
  }
  const stacks = selectedNames(at(raw, "select", "stacks"), known.stacks)
  if (stacks !== undefined && stacks.length === 0) {
    issues.push(issueAt(locate, ["select", "stacks"], "selects no stack of the catalog"))
  }
  const order = stringList(at(raw, "strategy", "environmentOrder"))
  if (order !== undefined && environments !== undefined) {
    const missing = environments.filter((environment) => !order.includes(environment))
    if (missing.length > 0) {
      issues.push(issueAt(locate, ["strategy", "environmentOrder"],
        `does not list ${missing.join(", ")}, which the selection includes; list every selected environment, or leave environmentOrder out to use the catalog's order`))
    }
  }
  return issues
}

// ---------------------------------------------------------------------------------------------
// Public decoders
// ---------------------------------------------------------------------------------------------

/**
 * Decodes a recycle plan (YAML or JSON text) and cross-checks it against the catalog: OS versions,
 * environments and stacks must exist, the cron expression and time zone must be valid, and the
 * limits must allow progress. Every problem is listed, each with its line and column.
 */
export const decodePlanSpec = (
  text: string,
  source: string,
  catalog: CatalogData
): Effect.Effect<RecyclePlanSpec, InvalidInput> =>
  Effect.gen(function* () {
    const raw = yield* parseYaml(text, source)
    // Nothing (or only comments) is not a plan missing every field.
    if (raw === null || raw === undefined) {
      return yield* Effect.fail(InvalidInput.one([], "it is empty: expected a recycle plan (name, select, target …; see plans/README.md)").in(source))
    }
    const known = knownNamesOf(catalog)
    const locate = makeLocator(text)
    const decoded = yield* decodeAll(makeRecyclePlanSpecSchema(known), raw, locate)
    const issues = [...Either.isLeft(decoded) ? decoded.left : [], ...crossCheckSpec(raw, known, locate)]
    if (issues.length > 0 || Either.isLeft(decoded)) return yield* Effect.fail(InvalidInput.fromIssues(issues).in(source))
    return decoded.right
  })

const checkPolicies = (raw: unknown, known: KnownNames, locate: Locator): ReadonlyArray<Issue> => {
  const issues: Array<Issue> = []
  const policies = at(raw, "policies")
  if (!Array.isArray(policies)) return issues
  const seen = new Map<string, number>()
  const replacements = new Map<string, string>()
  policies.forEach((policy: unknown, index) => {
    const os = at(policy, "osVersion")
    const replacement = at(policy, "replacement")
    if (typeof os === "string") {
      if (!known.osVersions.includes(os)) {
        issues.push(issueAt(locate, ["policies", index, "osVersion"], unknownName("OS version", os, known.osVersions)))
      }
      const first = seen.get(os)
      if (first !== undefined) {
        issues.push(issueAt(locate, ["policies", index, "osVersion"], `${os} already has a policy (policies[${first}])`))
      } else {
        seen.set(os, index)
      }
    }
    if (typeof replacement === "string") {
      if (!known.osVersions.includes(replacement)) {
        issues.push(issueAt(locate, ["policies", index, "replacement"], unknownName("OS version", replacement, known.osVersions)))
      } else if (replacement === os) {
        issues.push(issueAt(locate, ["policies", index, "replacement"], `${os} cannot replace itself`))
      }
      if (typeof os === "string") replacements.set(os, replacement)
    }
    const from = at(policy, "deprecatedFrom")
    const end = at(policy, "endOfLife")
    if (typeof from === "string" && typeof end === "string" && end < from) {
      issues.push(issueAt(locate, ["policies", index, "endOfLife"], `end of life ${end} is before deprecatedFrom ${from}`))
    }
  })
  // A replacement chain that comes back to where it started would never end in a supported version.
  for (const [start] of replacements) {
    const path: Array<string> = [start]
    let next = replacements.get(start)
    while (next !== undefined && !path.includes(next)) {
      path.push(next)
      next = replacements.get(next)
    }
    // A version that replaces itself is a circle of one, said already ("cannot replace itself").
    if (next === start && path.length > 1) {
      issues.push(issueAt(locate, ["policies", seen.get(start) ?? 0, "replacement"], `replacements go round in a circle: ${[...path, start].join(" → ")}`))
    }
  }
  return issues
}

/** Decodes the deprecation policies file (YAML or JSON) and checks it against the catalog. */
export const decodePolicies = (
  text: string,
  source: string,
  catalog: CatalogData
): Effect.Effect<DeprecationPolicies, InvalidInput> =>
  Effect.gen(function* () {
    const raw = yield* parseYaml(text, source)
    const locate = makeLocator(text)
    const decoded = yield* decodeAll(DeprecationPolicies, raw, locate)
    const issues = [...Either.isLeft(decoded) ? decoded.left : [], ...checkPolicies(raw, knownNamesOf(catalog), locate)]
    if (issues.length > 0 || Either.isLeft(decoded)) return yield* Effect.fail(InvalidInput.fromIssues(issues).in(source))
    return decoded.right
  })

const readText = (path: string, what: string) =>
  Effect.flatMap(FileSystem.FileSystem, (fs) =>
    fs.readFileString(path).pipe(Effect.mapError((error) => InvalidInput.one(path, `cannot read the ${what}: ${error.message}`))))

/** Reads and decodes a recycle plan file. */
export const loadPlanSpec = (path: string, catalog: CatalogData): Effect.Effect<RecyclePlanSpec, InvalidInput, FileSystem.FileSystem> =>
  Effect.flatMap(readText(path, "recycle plan"), (text) => decodePlanSpec(text, path, catalog))

/** Reads and decodes a deprecation policies file. */
export const loadPolicies = (path: string, catalog: CatalogData): Effect.Effect<DeprecationPolicies, InvalidInput, FileSystem.FileSystem> =>
  Effect.flatMap(readText(path, "deprecation policies"), (text) => decodePolicies(text, path, catalog))
