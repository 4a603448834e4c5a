/**
 * The planner's vocabulary: deprecation policies, the recycle plan a person writes (the spec),
 * the inventory snapshot the planner reads, and the plan it computes.
 *
 * Everything here is a schema, so that the same definitions decode YAML, encode the plan as JSON
 * (stored as jsonb, returned over HTTP) and give the TypeScript types.
 */
import { Cron } from "croner"
import { ParseResult, Schema } from "effect"
import {
  ApplicationName,
  EnvironmentName,
  MachineType,
  NameGlob,
  OsVersion,
  StackName,
  unknownName
} from "../catalog/Domain.js"
import { globToRegExp } from "../common/Glob.js"
import { VmState } from "../vms/Domain.js"

// ---------------------------------------------------------------------------------------------
// Small value schemas
// ---------------------------------------------------------------------------------------------

/** Printable text (no control characters), as in the catalog. */
const Text = (max: number) =>
  Schema.String.pipe(
    Schema.maxLength(max, { message: () => `expected at most ${max} characters` }),
    Schema.pattern(/^[^\p{Cc}]*$/u, { message: () => "expected printable text without control characters" })
  )

/** A whole number ≥ 1. The message replaces Effect's generic ones, because "Expected number" alone does not say that 0 is wrong. */
export const PositiveInt = Schema.Number.pipe(
  Schema.int(),
  Schema.greaterThanOrEqualTo(1)
).annotations({ message: () => ({ message: "expected a whole number ≥ 1", override: true }) })

/** A calendar date, YYYY-MM-DD, read as a UTC day. Kept as text: it is compared as text and shown as written. */
export const IsoDate = Schema.String.pipe(
  Schema.filter((text) => {
    const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text)
    if (match === null) return "expected a date such as 2027-04-30 (YYYY-MM-DD)"
    const date = new Date(`${text}T00:00:00Z`)
    return (!Number.isNaN(date.getTime()) && date.toISOString().startsWith(text)) || `${text} is not a calendar date`
  }),
  Schema.brand("IsoDate")
)
export type IsoDate = typeof IsoDate.Type

/** The instant (UTC midnight) a date starts. */
export const startOfDay = (date: IsoDate): number => Date.parse(`${date}T00:00:00Z`)

const durationUnits = [["d", 86_400], ["h", 3_600], ["m", 60], ["s", 1]] as const
const durationPattern = /^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/
const durationMessage = "expected a duration such as 90s, 10m, 4h, 1d or 1h30m"

/** Seconds as the shortest text with units, e.g. 5400 → "1h30m", 0 → "0s". */
export const formatDuration = (seconds: number): string => {
  if (seconds === 0) return "0s"
  let rest = Math.round(seconds)
  let out = ""
  for (const [unit, size] of durationUnits) {
    const count = Math.floor(rest / size)
    if (count > 0) out += `${count}${unit}`
    rest -= count * size
  }
  return out
}

/**
 * A duration written with units ("90s", "10m", "4h", "1d", combined largest first: "1h30m"),
 * decoded to whole seconds. A bare number is refused: "10" could mean seconds or minutes.
 */
export const Duration = Schema.transformOrFail(
  Schema.String.annotations({ message: () => ({ message: durationMessage, override: true }) }),
  Schema.NonNegativeInt,
  {
    strict: true,
    decode: (text, _, ast) => {
      const match = durationPattern.exec(text)
      if (text === "" || match === null) return ParseResult.fail(new ParseResult.Type(ast, text, durationMessage))
      const seconds = durationUnits.reduce((sum, [, size], index) => sum + Number(match[index + 1] ?? 0) * size, 0)
      return ParseResult.succeed(seconds)
    },
    encode: (seconds) => ParseResult.succeed(formatDuration(seconds))
  }
)

/** A limit given as a count of VMs (or steps), or as a percentage of them. Percentages keep two decimals at most. */
export const CountOrPercentValue = Schema.Struct({
  kind: Schema.Literal("count", "percent"),
  value: Schema.Number
})
export type CountOrPercent = typeof CountOrPercentValue.Type

const countOrPercentMessage = "expected a count (a whole number ≥ 0) or a percentage such as \"25%\" (0-100%)"

/** `3` or `"25%"` in YAML; `{ kind, value }` once decoded. */
export const CountOrPercent = Schema.transformOrFail(
  Schema.Union(Schema.Number, Schema.String).annotations({ message: () => ({ message: countOrPercentMessage, override: true }) }),
  CountOrPercentValue,
  {
    strict: true,
    decode: (input, _, ast) => {
      if (typeof input === "number") {
        return Number.isInteger(input) && input >= 0
          ? ParseResult.succeed({ kind: "count" as const, value: input })
          : ParseResult.fail(new ParseResult.Type(ast, input, countOrPercentMessage))
      }
      const match = /^(\d{1,3}(?:\.\d{1,2})?)%$/.exec(input.trim())
      const value = match === null ? Number.NaN : Number(match[1])
      return Number.isFinite(value) && value <= 100
        ? ParseResult.succeed({ kind: "percent" as const, value })
        : ParseResult.fail(new ParseResult.Type(ast, input, countOrPercentMessage))
    },
    encode: (value) => ParseResult.succeed(value.kind === "count" ? value.value : `${value.value}%`)
  }
)

export const formatCountOrPercent = (value: CountOrPercent): string =>
  value.kind === "count" ? String(value.value) : `${value.value}%`

/** `value` of `total`, rounding a percentage up (maxSurge, as in Kubernetes) or down (maxUnavailable, failure budgets). Exact: integer arithmetic on hundredths of a percent. */
export const resolveCountOrPercent = (value: CountOrPercent, total: number, rounding: "up" | "down"): number => {
  if (value.kind === "count") return value.value
  const hundredths = Math.round(value.value * 100)
  const scaled = total * hundredths
  return rounding === "up" ? Math.ceil(scaled / 10_000) : Math.floor(scaled / 10_000)
}

const isZero = (value: CountOrPercent): boolean => value.value === 0

/** True when maxSurge and maxUnavailable are both zero whatever the fleet size, so no fleet could ever move. */
export const limitsAllowNoProgress = (maxSurge: CountOrPercent, maxUnavailable: CountOrPercent): boolean =>
  isZero(maxSurge) && isZero(maxUnavailable)

/** A cron expression croner accepts (5 fields, or 6 with seconds). Checked here; run by the scheduler. */
export const CronExpression = Schema.String.pipe(
  Schema.filter((expression) => {
    try {
      new Cron(expression, { paused: true, mode: "5-or-6-parts" })
      return true
    } catch (error) {
      return `invalid cron expression "${expression}": ${error instanceof Error ? error.message : String(error)}`
    }
  })
)

/** Whether the runtime knows an IANA time zone (Intl is the authority croner uses too). */
export const isTimeZone = (zone: string): boolean => {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: zone })
    return true
  } catch {
    return false
  }
}

export const TimeZone = Schema.String.pipe(
  Schema.filter((zone) => isTimeZone(zone) || `unknown time zone "${zone}"; expected an IANA name such as Europe/Amsterdam or UTC`)
)

// ---------------------------------------------------------------------------------------------
// Deprecation policies
// ---------------------------------------------------------------------------------------------

/**
 * What is known about one OS version's end: from when fleet counts it as deprecated (usually the
 * end of standard support), its end of life, and which version replaces it.
 */
export class DeprecationPolicy extends Schema.Class<DeprecationPolicy>("DeprecationPolicy")({
  osVersion: OsVersion,
  deprecatedFrom: IsoDate,
  endOfLife: IsoDate,
  replacement: Schema.optionalWith(OsVersion, { exact: true }),
  note: Schema.optionalWith(Text(500), { exact: true }),
  link: Schema.optionalWith(
    Text(500).pipe(Schema.pattern(/^https?:\/\/\S+$/, { message: () => "expected an http(s) URL" })),
    { exact: true }
  )
}) {}

/** The policies file (plans/deprecations.yaml). */
export class DeprecationPolicies extends Schema.Class<DeprecationPolicies>("DeprecationPolicies")({
  policies: Schema.Array(DeprecationPolicy)
}) {}

// ---------------------------------------------------------------------------------------------
// The recycle plan spec (the YAML a person writes)
// ---------------------------------------------------------------------------------------------

/** The catalog's names, for cross-checking a spec while it is decoded (so those problems are listed with the others). */
export interface KnownNames {
  readonly osVersions: ReadonlyArray<string>
  readonly environments: ReadonlyArray<string>
  readonly stacks: ReadonlyArray<string>
}

const hasWildcard = (glob: string): boolean => /[*?]/.test(glob)

/** One of a few words, refused with them all and what was given: `expected pause or abort; got "explode"`. */
const oneOf = <const Words extends readonly [string, ...Array<string>]>(...words: Words) =>
  Schema.Literal(...words).annotations({
    message: (issue) => ({
      message: `expected ${words.slice(0, -1).join(", ")}${words.length > 1 ? " or " : ""}${words[words.length - 1]}; got ${JSON.stringify("actual" in issue ? issue.actual : undefined)}`,
      override: true
    })
  })

/** Adds a check to a schema without changing its type, so the catalog-aware and the plain spec schema have one type. */
const checked = <A, I>(schema: Schema.Schema<A, I>, check: ((value: A) => string | true) | undefined): Schema.Schema<A, I> =>
  check === undefined ? schema : schema.pipe(Schema.filter((value) => check(value)))

const knownName = (what: string, names: ReadonlyArray<string> | undefined) =>
  names === undefined
    ? undefined
    : (name: string) => names.includes(name) || unknownName(what, name, names)

const knownGlob = (what: string, names: ReadonlyArray<string> | undefined) =>
  names === undefined
    ? undefined
    : (glob: string) => {
      if (!hasWildcard(glob)) return names.includes(glob) || unknownName(what, glob, names)
      const pattern = globToRegExp(glob)
      return names.some((name) => pattern.test(name)) || `${glob} matches no ${what} (${names.join(", ")})`
    }

const noDuplicates = <A extends string>(schema: Schema.Schema<ReadonlyArray<A>, ReadonlyArray<string>>) =>
  schema.pipe(Schema.filter((values) => {
    const twice = values.filter((value, index) => values.indexOf(value) !== index)
    return twice.length === 0 || `${[...new Set(twice)].join(", ")} listed twice`
  }))

/** Include / exclude by name or glob. A name is selected when it matches an include and no exclude. */
const nameFilter = (item: Schema.Schema<string, string>) =>
  Schema.Struct({
    include: Schema.optionalWith(Schema.Array(item), { exact: true, default: () => ["*"] }),
    exclude: Schema.optionalWith(Schema.Array(item), { exact: true, default: () => [] })
  })
export type NameFilter = { readonly include: ReadonlyArray<string>; readonly exclude: ReadonlyArray<string> }

const everything = (): NameFilter => ({ include: ["*"], exclude: [] })

const osSelectionMessage = "expected \"deprecated\" or a list of OS versions"

/** `deprecated` (every version deprecated as of the planning time) or an explicit list. */
const osSelection = (os: Schema.Schema<OsVersion, string>) => {
  const list = Schema.Array(os).pipe(Schema.minItems(1, { message: () => "expected at least one OS version" }))
  return Schema.transformOrFail(
    // A union of the raw shapes with one message, then a hand-written decode: Effect's own union
    // would report a failure per member ("Expected \"deprecated\"" next to every list problem).
    Schema.Union(Schema.String, Schema.Array(Schema.Unknown)).annotations({ message: () => ({ message: osSelectionMessage, override: true }) }),
    Schema.Union(Schema.Literal("deprecated"), Schema.typeSchema(list)),
    {
      strict: true,
      decode: (input, options, ast) =>
        typeof input === "string"
          ? input === "deprecated"
            ? ParseResult.succeed("deprecated" as const)
            : ParseResult.fail(new ParseResult.Type(ast, input, osSelectionMessage))
          : ParseResult.decodeUnknown(list)(input, options),
      encode: (value) => ParseResult.succeed(value)
    }
  )
}

/** Builds the spec schema; with the catalog's names, unknown OS versions, environments and stacks are refused while decoding. */
export const makeRecyclePlanSpecSchema = (known?: KnownNames) => {
  const os = checked(OsVersion, knownName("OS version", known?.osVersions))
  const environment = checked(EnvironmentName, knownName("environment", known?.environments))
  const environmentGlob = checked(NameGlob, knownGlob("environment", known?.environments))
  const stackGlob = checked(NameGlob, knownGlob("stack", known?.stacks))
  const targetMessage = `expected "replacement" or an OS version${known ? ` (${known.osVersions.join(", ")})` : ""}`
  const target = checked(
    Schema.Union(Schema.Literal("replacement"), OsVersion),
    known === undefined ? undefined : (value) => value === "replacement" || known.osVersions.includes(value) || targetMessage
  ).annotations({ message: () => ({ message: targetMessage, override: true }) })

  const Selection = Schema.Struct({
    osVersions: osSelection(os),
    environments: Schema.optionalWith(nameFilter(environmentGlob), { exact: true, default: everything }),
    stacks: Schema.optionalWith(nameFilter(stackGlob), { exact: true, default: everything }),
    applications: Schema.optionalWith(nameFilter(NameGlob), { exact: true, default: everything })
  })

  const Canary = Schema.Struct({
    fleets: PositiveInt,
    scope: Schema.optionalWith(Schema.Literal("first-environment", "every-environment"), { exact: true, default: () => "first-environment" as const })
  })

  const FailureBudget = Schema.Struct({
    max: CountOrPercent,
    action: oneOf("pause", "abort")
  })

  const Strategy = Schema.Struct({
    maxSurge: Schema.optionalWith(CountOrPercent, { exact: true, default: () => ({ kind: "percent" as const, value: 25 }) }),
    maxUnavailable: Schema.optionalWith(CountOrPercent, { exact: true, default: () => ({ kind: "count" as const, value: 0 }) }),
    maxFleetsInParallel: Schema.optionalWith(PositiveInt, { exact: true, default: () => 5 }),
    maxInFlight: Schema.optionalWith(PositiveInt, { exact: true, default: () => 20 }),
    environmentOrder: Schema.optionalWith(
      noDuplicates(Schema.Array(environment).pipe(Schema.minItems(1, { message: () => "expected at least one environment" }))),
      { exact: true }
    ),
    environmentGate: Schema.optionalWith(
      oneOf("complete", "approval"),
      { exact: true, default: () => "complete" as const }
    ),
    canary: Schema.optionalWith(Canary, { exact: true }),
    bakeTime: Schema.optionalWith(Duration, { exact: true, default: () => 0 }),
    failureBudget: Schema.optionalWith(FailureBudget, {
      exact: true,
      default: () => ({ max: { kind: "count" as const, value: 0 }, action: "pause" as const })
    })
  })

  const ScheduleSpec = Schema.Struct({
    cron: CronExpression,
    timeZone: Schema.optionalWith(TimeZone, { exact: true, default: () => "UTC" }),
    window: Duration.pipe(Schema.filter((seconds) => (seconds >= 60 && seconds <= 7 * 86_400) || "expected a window between 1m and 7d"))
  })

  const Estimates = Schema.Struct({
    create: Schema.optionalWith(Duration, { exact: true, default: () => 600 }),
    bake: Schema.optionalWith(Duration, { exact: true }),
    decommission: Schema.optionalWith(Duration, { exact: true, default: () => 120 })
  })

  return Schema.Struct({
    name: Text(100).pipe(Schema.minLength(1, { message: () => "expected a name" })),
    description: Schema.optionalWith(Text(2000), { exact: true }),
    select: Selection,
    target: Schema.optionalWith(target, { exact: true, default: () => "replacement" as const }),
    strategy: Schema.optionalWith(Strategy, { exact: true, default: () => Schema.decodeSync(Strategy)({}) }),
    schedule: Schema.optionalWith(ScheduleSpec, { exact: true }),
    estimates: Schema.optionalWith(Estimates, { exact: true, default: () => Schema.decodeSync(Estimates)({}) })
  })
}

/** The recycle plan spec without catalog cross-checks (to encode, hash or store a decoded spec). */
export const RecyclePlanSpec = makeRecyclePlanSpecSchema().annotations({ identifier: "RecyclePlanSpec" })
export type RecyclePlanSpec = typeof RecyclePlanSpec.Type
export type RecyclePlanSpecEncoded = typeof RecyclePlanSpec.Encoded
export type Strategy = RecyclePlanSpec["strategy"]

// ---------------------------------------------------------------------------------------------
// The inventory snapshot the planner reads
// ---------------------------------------------------------------------------------------------

/** The VM states (one definition, in src/vms); decommissioned VMs are history, not part of a fleet. */
export { VmState }

/** States of a VM that is still being created or removed: its fleet is changing under us. */
export const inFlightStates: ReadonlyArray<VmState> = ["pending", "submitting", "provisioning", "decommissioning"]
/** States of a VM that did not come up: a person should look before the fleet is touched again. */
export const unhealthyStates: ReadonlyArray<VmState> = ["failed", "timed_out"]

export const InventoryVm = Schema.Struct({
  id: Schema.String,
  name: Schema.String,
  application: ApplicationName,
  environment: EnvironmentName,
  stack: StackName,
  osVersion: OsVersion,
  machineType: MachineType,
  state: VmState
})
export type InventoryVm = typeof InventoryVm.Type

export const InventorySnapshot = Schema.Struct({
  vms: Schema.Array(InventoryVm)
})
export type InventorySnapshot = typeof InventorySnapshot.Type

// ---------------------------------------------------------------------------------------------
// The plan (what the planner computed)
// ---------------------------------------------------------------------------------------------
// No transformations below: the plan's type and its JSON are the same shape (brands aside), so it
// can be hashed, stored as jsonb and sent over HTTP without a conversion step that could drift.

/** A fleet's id: `application/environment/stack`. */
export const FleetId = Schema.String.pipe(Schema.brand("FleetId"))
export type FleetId = typeof FleetId.Type

export const fleetIdOf = (application: string, environment: string, stack: string): FleetId =>
  `${application}/${environment}/${stack}` as FleetId

export const PolicyStatus = Schema.Struct({
  osVersion: OsVersion,
  status: Schema.Literal("supported", "deprecated", "end-of-life"),
  deprecatedFrom: IsoDate,
  endOfLife: IsoDate,
  /** The policy's own replacement. */
  replacement: Schema.optionalWith(OsVersion, { exact: true }),
  /** Where VMs on this version go when the plan targets "replacement": the first version along the replacement chain that is not deprecated. */
  resolvedReplacement: Schema.optionalWith(OsVersion, { exact: true }),
  note: Schema.optionalWith(Schema.String, { exact: true }),
  link: Schema.optionalWith(Schema.String, { exact: true })
})
export type PolicyStatus = typeof PolicyStatus.Type

export const Transition = Schema.Struct({
  from: OsVersion,
  to: OsVersion,
  vms: Schema.NonNegativeInt
})
export type Transition = typeof Transition.Type

/** Per-fleet limits, resolved from maxSurge / maxUnavailable against the fleet's size. */
export const FleetLimits = Schema.Struct({
  /** Replacements that may exist on top of the fleet's size at once (maxSurge, rounded up). */
  surge: Schema.NonNegativeInt,
  /** Old VMs that may be out of service at once (maxUnavailable, rounded down). */
  unavailable: Schema.NonNegativeInt,
  /** Steps of this fleet at once: surge + unavailable, never more than the fleet's steps. */
  concurrency: Schema.NonNegativeInt
})
export type FleetLimits = typeof FleetLimits.Type

export const MovingFleet = Schema.Struct({
  id: FleetId,
  application: ApplicationName,
  environment: EnvironmentName,
  stack: StackName,
  /** Live (not decommissioned) VMs in the fleet, on any OS version; percentages are of this. */
  size: Schema.NonNegativeInt,
  /** VMs replaced, one step each. */
  steps: Schema.NonNegativeInt,
  transitions: Schema.Array(Transition),
  limits: FleetLimits,
  wave: Schema.NonNegativeInt,
  /** ceil(steps / concurrency): how many rounds the fleet needs. */
  batches: Schema.NonNegativeInt,
  estimatedStart: Schema.NonNegativeInt,
  estimatedEnd: Schema.NonNegativeInt
})
export type MovingFleet = typeof MovingFleet.Type

export const SkipCode = Schema.Literal("no-proc", "no-replacement", "target-end-of-life", "vms-in-flight", "unhealthy-vms", "no-progress")
export type SkipCode = typeof SkipCode.Type

export const SkipReason = Schema.Struct({ code: SkipCode, message: Schema.String })
export type SkipReason = typeof SkipReason.Type

export const SkippedFleet = Schema.Struct({
  id: FleetId,
  application: ApplicationName,
  environment: EnvironmentName,
  stack: StackName,
  size: Schema.NonNegativeInt,
  /** The VMs the selection matched that stay where they are. */
  vms: Schema.NonNegativeInt,
  /** Where they would have gone; `to` is the source version itself when no target could be found. */
  transitions: Schema.Array(Transition),
  reasons: Schema.NonEmptyArray(SkipReason)
})
export type SkippedFleet = typeof SkippedFleet.Type

/** What has to happen before a wave may start. */
export const WaveGate = Schema.Literal("none", "previous-complete", "approval")
export type WaveGate = typeof WaveGate.Type

export const Wave = Schema.Struct({
  index: Schema.NonNegativeInt,
  name: Schema.String,
  environment: EnvironmentName,
  kind: Schema.Literal("canary", "rollout"),
  gate: WaveGate,
  fleets: Schema.Array(FleetId),
  steps: Schema.NonNegativeInt,
  vms: Schema.NonNegativeInt,
  estimatedStart: Schema.NonNegativeInt,
  estimatedEnd: Schema.NonNegativeInt
})
export type Wave = typeof Wave.Type

/** One VM's replacement. Times are seconds from the start of the run, from the estimate. */
export const Step = Schema.Struct({
  index: Schema.NonNegativeInt,
  vmId: Schema.String,
  vmName: Schema.String,
  fleet: FleetId,
  wave: Schema.NonNegativeInt,
  /** floor(position in fleet / fleet concurrency). */
  batch: Schema.NonNegativeInt,
  from: OsVersion,
  to: OsVersion,
  machineType: MachineType,
  estimatedStart: Schema.NonNegativeInt,
  estimatedEnd: Schema.NonNegativeInt
})
export type Step = typeof Step.Type

export const PlanLimits = Schema.Struct({
  maxSurge: CountOrPercentValue,
  maxUnavailable: CountOrPercentValue,
  maxFleetsInParallel: PositiveInt,
  maxInFlight: PositiveInt,
  environmentOrder: Schema.Array(EnvironmentName),
  environmentGate: Schema.Literal("complete", "approval"),
  canary: Schema.optionalWith(Schema.Struct({
    fleets: PositiveInt,
    scope: Schema.Literal("first-environment", "every-environment")
  }), { exact: true }),
  bakeSeconds: Schema.NonNegativeInt,
  failureBudget: Schema.Struct({
    max: CountOrPercentValue,
    /** Failed steps tolerated: max resolved against the plan's steps (percentages round down). One more triggers the action. */
    allowedFailures: Schema.NonNegativeInt,
    action: Schema.Literal("pause", "abort")
  })
})
export type PlanLimits = typeof PlanLimits.Type

export const PlanSchedule = Schema.Struct({
  cron: Schema.String,
  timeZone: Schema.String,
  windowSeconds: Schema.NonNegativeInt,
  /** ceil(estimated duration / window): an approximation, as a step started late in a window may end after it. */
  windowsNeeded: Schema.NonNegativeInt,
  /** The first windows from the planning time (ISO instants), at most 5. */
  nextWindows: Schema.Array(Schema.String)
})
export type PlanSchedule = typeof PlanSchedule.Type

export const Estimate = Schema.Struct({
  createSeconds: Schema.NonNegativeInt,
  bakeSeconds: Schema.NonNegativeInt,
  decommissionSeconds: Schema.NonNegativeInt,
  stepSeconds: Schema.NonNegativeInt,
  /** From the first step's start to the last step's end, approvals taking no time. */
  totalSeconds: Schema.NonNegativeInt,
  /** Approval gates the run will stop at (not counted in totalSeconds). */
  approvals: Schema.NonNegativeInt,
  schedule: Schema.optionalWith(PlanSchedule, { exact: true })
})
export type Estimate = typeof Estimate.Type

export const OsCount = Schema.Struct({ osVersion: OsVersion, vms: Schema.NonNegativeInt })
export type OsCount = typeof OsCount.Type

/** Live VMs per OS version in one environment, now and once the plan has run (whole inventory, not only the selection). */
export const EnvironmentOsMix = Schema.Struct({
  environment: EnvironmentName,
  before: Schema.Array(OsCount),
  after: Schema.Array(OsCount)
})
export type EnvironmentOsMix = typeof EnvironmentOsMix.Type

export const Totals = Schema.Struct({
  fleetsMatched: Schema.NonNegativeInt,
  fleetsMoving: Schema.NonNegativeInt,
  fleetsSkipped: Schema.NonNegativeInt,
  vmsMoving: Schema.NonNegativeInt,
  vmsSkipped: Schema.NonNegativeInt,
  steps: Schema.NonNegativeInt,
  waves: Schema.NonNegativeInt,
  transitions: Schema.Array(Transition),
  skippedByReason: Schema.Array(Schema.Struct({ code: SkipCode, fleets: Schema.NonNegativeInt }))
})
export type Totals = typeof Totals.Type

export const Plan = Schema.Struct({
  version: Schema.Literal(1),
  name: Schema.String,
  description: Schema.optionalWith(Schema.String, { exact: true }),
  /** The planning time: what "deprecated as of now" meant. */
  asOf: Schema.String,
  target: Schema.Union(Schema.Literal("replacement"), OsVersion),
  /** The OS versions the selection covered. */
  sourceOsVersions: Schema.Array(OsVersion),
  specHash: Schema.String,
  /** sha256 over (id, name, state, osVersion) of every live VM of every matched fleet, sorted by id. */
  inventoryDigest: Schema.String,
  /** sha256 of this plan's canonical JSON without planHash. */
  planHash: Schema.String,
  policies: Schema.Array(PolicyStatus),
  limits: PlanLimits,
  waves: Schema.Array(Wave),
  fleets: Schema.Array(MovingFleet),
  skipped: Schema.Array(SkippedFleet),
  steps: Schema.Array(Step),
  totals: Totals,
  estimate: Estimate,
  osMix: Schema.Array(EnvironmentOsMix),
  warnings: Schema.Array(Schema.String)
}).annotations({ identifier: "Plan", description: "A plan the planner computed from a recycle plan (see plans/README.md)" })
export type Plan = typeof Plan.Type
export type PlanEncoded = typeof Plan.Encoded
