/**
 * The planner's core: a pure, deterministic function from (inventory, policies, spec, catalog,
 * now) to a Plan. No database, no clock, no randomness: the same input gives the same plan and
 * the same hashes, which is what lets a stored plan be checked and re-run.
 *
 * ## Strategy semantics
 *
 * A **step** replaces one VM: it creates the replacement on the target OS first, waits until it
 * is ready (and for the bake time), and only then decommissions the old VM. A fleet runs at most
 * `surge + unavailable` steps at once, where
 * - `surge` = maxSurge of the fleet's size, percentages rounded **up** (as Kubernetes does): a
 *   surge step keeps its old VM serving while the replacement is built, so the fleet briefly has
 *   up to `size + surge` VMs;
 * - `unavailable` = maxUnavailable of the fleet's size, percentages rounded **down**: an
 *   unavailable step takes its old VM out of service first (drain) and then builds the
 *   replacement, so at most `unavailable` VMs of the fleet are out of service at once.
 * A step started while fewer than `surge` surge steps run is a surge step; otherwise it is an
 * unavailable step. The size is the fleet's live VMs (not decommissioned), on any OS version.
 * If both round to 0 the fleet cannot move and is skipped ("no-progress").
 *
 * ## Skip rules (a matched fleet moves whole or not at all)
 * - `vms-in-flight`: a VM of the fleet is pending, submitting, provisioning or decommissioning —
 *   the fleet is changing under us; plan again once it has settled.
 * - `unhealthy-vms`: a VM of the fleet is failed or timed_out — a person should look first, and
 *   the fleet's real capacity is not what the inventory says.
 * - `no-replacement`: target "replacement", and no supported version replaces a selected VM's OS.
 * - `no-proc`: the catalog has no proc creating the fleet's stack on a target OS.
 * - `no-progress`: the limits round to 0 surge and 0 unavailable for this fleet's size.
 * Every reason that applies is listed.
 *
 * ## Waves
 * Environments run in `environmentOrder` (default: the catalog's order), each gated on the
 * previous one being complete (or, with `environmentGate: approval`, on an approval too). Within
 * an environment, fleets run in (application, stack) order. A canary takes the N smallest fleets
 * (ties by application, stack) of the first environment (or of every environment) into a wave of
 * their own, followed by an approval gate.
 *
 * ## Estimate
 * A list-scheduling simulation of the run under every limit (see Simulate.ts).
 *
 * ## Digest
 * `inventoryDigest` hashes (id, name, state, osVersion) of every live VM of every fleet the
 * selection matched — moved or skipped — sorted by id. An executor recomputes it before it starts
 * and refuses a plan whose fleets have changed since.
 */
import { Cron } from "croner"
import { Option, Schema } from "effect"
import type { CatalogData } from "../catalog/Catalog.js"
import type { EnvironmentName, OsVersion } from "../catalog/Domain.js"
import { matchesAny } from "../common/Glob.js"
import {
  type CountOrPercent,
  type DeprecationPolicies,
  type DeprecationPolicy,
  type EnvironmentOsMix,
  type FleetId,
  fleetIdOf,
  type FleetLimits,
  formatCountOrPercent,
  formatDuration,
  inFlightStates,
  type InventorySnapshot,
  type InventoryVm,
  type MovingFleet,
  type NameFilter,
  type OsCount,
  type Plan,
  type PlanSchedule,
  type PolicyStatus,
  RecyclePlanSpec,
  resolveCountOrPercent,
  type SkipCode,
  type SkippedFleet,
  type SkipReason,
  startOfDay,
  type Step,
  type Strategy,
  type Transition,
  unhealthyStates,
  type Wave,
  type WaveGate
} from "./Domain.js"
import { hashOf, sha256 } from "./Hash.js"
import { type SimFleet, simulateWave } from "./Simulate.js"

export interface PlanInput {
  readonly inventory: InventorySnapshot
  readonly policies: DeprecationPolicies | ReadonlyArray<DeprecationPolicy>
  readonly spec: RecyclePlanSpec
  readonly catalog: CatalogData
  /** The planning time: decides which versions are deprecated "as of now". */
  readonly now: Date
}

/** Code-unit order: unlike localeCompare it is the same on every machine, which the hashes need. */
const compareText = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)

const plural = (count: number, one: string, many = `${one}s`): string => `${count} ${count === 1 ? one : many}`

/** Per-fleet limits from the strategy and the fleet's size (live VMs) and steps. */
export const fleetLimitsFor = (strategy: Pick<Strategy, "maxSurge" | "maxUnavailable">, size: number, steps: number): FleetLimits => {
  const surge = resolveCountOrPercent(strategy.maxSurge, size, "up")
  const unavailable = resolveCountOrPercent(strategy.maxUnavailable, size, "down")
  return { surge, unavailable, concurrency: Math.min(surge + unavailable, steps) }
}

/** Failed steps a run tolerates: the budget of the plan's steps, percentages rounded down. */
export const allowedFailures = (max: CountOrPercent, steps: number): number => resolveCountOrPercent(max, steps, "down")

/** Whether a name passes an include/exclude filter; remembered per name (an inventory repeats few names many times). */
const selects = (filter: NameFilter): (name: string) => boolean => {
  const include = matchesAny(filter.include)
  const exclude = matchesAny(filter.exclude)
  const seen = new Map<string, boolean>()
  return (name) => {
    let selected = seen.get(name)
    if (selected === undefined) {
      selected = include(name) && !exclude(name)
      seen.set(name, selected)
    }
    return selected
  }
}

// ---------------------------------------------------------------------------------------------
// Policies
// ---------------------------------------------------------------------------------------------

interface PolicyView {
  readonly isDeprecated: (os: OsVersion) => boolean
  /** The first version along the replacement chain that is not deprecated, if any. */
  readonly replacementOf: (os: OsVersion) => OsVersion | undefined
  readonly statuses: ReadonlyArray<PolicyStatus>
  readonly byOs: ReadonlyMap<string, DeprecationPolicy>
  /** The day `os` reached its end of life, if it has. */
  readonly endOfLifeOf: (os: OsVersion) => string | undefined
}

const viewPolicies = (policies: ReadonlyArray<DeprecationPolicy>, catalog: CatalogData, now: number): PolicyView => {
  const byOs = new Map<string, DeprecationPolicy>(policies.map((policy) => [policy.osVersion, policy]))
  const isDeprecated = (os: OsVersion) => {
    const policy = byOs.get(os)
    return policy !== undefined && startOfDay(policy.deprecatedFrom) <= now
  }
  const replacementOf = (os: OsVersion): OsVersion | undefined => {
    const seen = new Set<string>([os])
    let next = byOs.get(os)?.replacement
    while (next !== undefined && isDeprecated(next) && !seen.has(next)) {
      seen.add(next)
      next = byOs.get(next)?.replacement
    }
    return next !== undefined && !isDeprecated(next) ? next : undefined
  }
  const catalogOrder = new Map<string, number>(catalog.spec.osVersions.map((entry, index) => [entry.name, index]))
  const statuses = [...policies]
    .sort((a, b) => (catalogOrder.get(a.osVersion) ?? Infinity) - (catalogOrder.get(b.osVersion) ?? Infinity) || compareText(a.osVersion, b.osVersion))
    .map((policy): PolicyStatus => {
      const resolved = replacementOf(policy.osVersion)
      return {
        osVersion: policy.osVersion,
        status: startOfDay(policy.endOfLife) <= now ? "end-of-life" : isDeprecated(policy.osVersion) ? "deprecated" : "supported",
        deprecatedFrom: policy.deprecatedFrom,
        endOfLife: policy.endOfLife,
        ...(policy.replacement === undefined ? {} : { replacement: policy.replacement }),
        ...(resolved === undefined ? {} : { resolvedReplacement: resolved }),
        ...(policy.note === undefined ? {} : { note: policy.note }),
        ...(policy.link === undefined ? {} : { link: policy.link })
      }
    })
  const endOfLifeOf = (os: OsVersion) => {
    const policy = byOs.get(os)
    return policy !== undefined && startOfDay(policy.endOfLife) <= now ? policy.endOfLife : undefined
  }
  return { isDeprecated, replacementOf, statuses, byOs, endOfLifeOf }
}

/** Each policy's status as of `now` (supported, deprecated, end-of-life) and where its VMs would go, in catalog order. */
export const policyStatuses = (
  policies: DeprecationPolicies | ReadonlyArray<DeprecationPolicy>,
  catalog: CatalogData,
  now: Date
): ReadonlyArray<PolicyStatus> => viewPolicies("policies" in policies ? policies.policies : policies, catalog, now.getTime()).statuses

// ---------------------------------------------------------------------------------------------
// Fleets
// ---------------------------------------------------------------------------------------------

interface MatchedFleet {
  readonly id: FleetId
  readonly vms: ReadonlyArray<InventoryVm>
  readonly selected: ReadonlyArray<InventoryVm>
}

interface Assessed {
  readonly fleet: MatchedFleet
  readonly first: InventoryVm
  readonly targets: ReadonlyArray<OsVersion | undefined>
  readonly transitions: ReadonlyArray<Transition>
  readonly limits: FleetLimits
  readonly reasons: ReadonlyArray<SkipReason>
}

const transitionsOf = (selected: ReadonlyArray<InventoryVm>, targets: ReadonlyArray<OsVersion | undefined>): ReadonlyArray<Transition> => {
  const counts = new Map<string, Transition>()
  selected.forEach((vm, index) => {
    const to = targets[index] ?? vm.osVersion
    const key = `${vm.osVersion} ${to}`
    const found = counts.get(key)
    counts.set(key, { from: vm.osVersion, to, vms: (found?.vms ?? 0) + 1 })
  })
  return [...counts.values()].sort((a, b) => compareText(a.from, b.from) || compareText(a.to, b.to))
}

const describeStates = (vms: ReadonlyArray<InventoryVm>): string => {
  const counts = new Map<string, number>()
  for (const vm of vms) counts.set(vm.state, (counts.get(vm.state) ?? 0) + 1)
  return [...counts].sort(([a], [b]) => compareText(a, b)).map(([state, count]) => `${count} ${state}`).join(", ")
}

const assess = (
  fleet: MatchedFleet,
  targetOf: (os: OsVersion) => OsVersion | undefined,
  endOfLifeOf: (os: OsVersion) => string | undefined,
  strategy: Strategy,
  catalog: CatalogData
): Assessed => {
  const first = fleet.vms[0]!
  const reasons: Array<SkipReason> = []
  const reason = (code: SkipCode, message: string) => reasons.push({ code, message })

  const inFlight = fleet.vms.filter((vm) => inFlightStates.includes(vm.state))
  if (inFlight.length > 0) {
    reason("vms-in-flight", `${plural(inFlight.length, "VM")} still being created or decommissioned (${describeStates(inFlight)}); plan again once the fleet has settled`)
  }
  const unhealthy = fleet.vms.filter((vm) => unhealthyStates.includes(vm.state))
  if (unhealthy.length > 0) {
    const names = unhealthy.slice(0, 3).map((vm) => vm.name).join(", ")
    reason(
      "unhealthy-vms",
      `${plural(unhealthy.length, "VM")} failed or timed out (${describeStates(unhealthy)}: ${names}${unhealthy.length > 3 ? ", …" : ""}); ` +
        `retry or decommission ${unhealthy.length === 1 ? "it" : "them"} first (fleet vms retry|decommission <vm-id>)`
    )
  }
  const targets = fleet.selected.map((vm) => targetOf(vm.osVersion))
  const orphans = [...new Set(fleet.selected.filter((_, index) => targets[index] === undefined).map((vm) => vm.osVersion))].sort(compareText)
  if (orphans.length > 0) {
    reason("no-replacement", `no supported version replaces ${orphans.join(", ")} in the deprecation policies`)
  }
  const targetVersions = [...new Set(targets.filter((os): os is OsVersion => os !== undefined))].sort(compareText)
  // Only a plan's explicit target can be one: a policy's replacement is never a deprecated version.
  for (const os of targetVersions) {
    const endOfLife = endOfLifeOf(os)
    if (endOfLife !== undefined) reason("target-end-of-life", `the target ${os} reached its end of life on ${endOfLife}: new VMs on it are refused`)
  }
  const missingProcs = targetVersions.filter((os) => Option.isNone(catalog.createProcFor(first.stack, os)))
  for (const os of missingProcs) reason("no-proc", `no proc creates ${first.stack} VMs on ${os}`)

  const limits = fleetLimitsFor(strategy, fleet.vms.length, fleet.selected.length)
  if (limits.surge + limits.unavailable === 0) {
    reason("no-progress",
      `maxSurge ${formatCountOrPercent(strategy.maxSurge)} and maxUnavailable ${formatCountOrPercent(strategy.maxUnavailable)} ` +
        `of ${plural(fleet.vms.length, "VM")} round to 0 and 0: no step could start`)
  }
  return { fleet, first, targets, transitions: transitionsOf(fleet.selected, targets), limits, reasons }
}

// ---------------------------------------------------------------------------------------------
// The plan
// ---------------------------------------------------------------------------------------------

const mixOf = (counts: ReadonlyMap<string, number>, osOrder: ReadonlyMap<string, number>): ReadonlyArray<OsCount> =>
  [...counts]
    .filter(([, vms]) => vms > 0)
    .sort(([a], [b]) => (osOrder.get(a) ?? Infinity) - (osOrder.get(b) ?? Infinity) || compareText(a, b))
    .map(([osVersion, vms]) => ({ osVersion: osVersion as OsVersion, vms }))

const scheduleOf = (schedule: NonNullable<RecyclePlanSpec["schedule"]>, totalSeconds: number, now: Date): PlanSchedule => {
  const windowsNeeded = totalSeconds === 0 ? 0 : Math.ceil(totalSeconds / schedule.window)
  const cron = new Cron(schedule.cron, { paused: true, timezone: schedule.timeZone, mode: "5-or-6-parts" })
  const nextWindows = windowsNeeded === 0 ? [] : cron.nextRuns(Math.min(windowsNeeded, 5), now).map((date) => date.toISOString())
  return { cron: schedule.cron, timeZone: schedule.timeZone, windowSeconds: schedule.window, windowsNeeded, nextWindows }
}

/** Builds the plan. Pure and deterministic: see the module comment for the rules. */
export const buildPlan = (input: PlanInput): Plan => {
  const { catalog, inventory, spec, now } = input
  const strategy = spec.strategy
  const nowMs = now.getTime()
  const policies = viewPolicies("policies" in input.policies ? input.policies.policies : input.policies, catalog, nowMs)
  const warnings: Array<string> = []

  // Which OS versions move, and where to.
  const catalogOs = catalog.spec.osVersions.map((entry) => entry.name)
  const osOrder = new Map<string, number>(catalogOs.map((os, index) => [os, index]))
  const requested = spec.select.osVersions === "deprecated" ? catalogOs.filter(policies.isDeprecated) : spec.select.osVersions
  const sources = requested.filter((os) => os !== spec.target)
  if (spec.target !== "replacement") {
    const endOfLife = policies.endOfLifeOf(spec.target)
    if (endOfLife !== undefined) {
      warnings.push(`the target ${spec.target} reached its end of life on ${endOfLife}: no fleet is moved onto it`)
    } else if (policies.isDeprecated(spec.target)) {
      warnings.push(`the target ${spec.target} is itself deprecated (since ${policies.byOs.get(spec.target)!.deprecatedFrom})`)
    }
    if (sources.length < requested.length) warnings.push(`${spec.target} is the target, so VMs already on it stay where they are`)
  }
  const sourceSet = new Set<string>(sources)
  const targetCache = new Map<string, OsVersion | undefined>()
  const targetOf = (os: OsVersion): OsVersion | undefined => {
    if (!targetCache.has(os)) targetCache.set(os, spec.target === "replacement" ? policies.replacementOf(os) : spec.target)
    return targetCache.get(os)
  }

  // Which fleets.
  const environmentOrder: ReadonlyArray<EnvironmentName> = strategy.environmentOrder ?? catalog.spec.environments.map((entry) => entry.name)
  const environmentRank = new Map<string, number>(environmentOrder.map((environment, index) => [environment, index]))
  const environmentSelected = selects(spec.select.environments)
  const stackSelected = selects(spec.select.stacks)
  const applicationSelected = selects(spec.select.applications)

  const live = inventory.vms.filter((vm) => vm.state !== "decommissioned")
  // An application the plan names that the inventory does not have is most likely a typo: the plan
  // would quietly leave it out. (Environments and stacks are checked against the catalog.)
  const named = spec.select.applications.include.filter((glob) => glob !== "*")
  if (named.length > 0) {
    const applicationNames = [...new Set(live.map((vm) => vm.application as string))]
    for (const glob of named) {
      const matches = matchesAny([glob])
      if (!applicationNames.some(matches)) warnings.push(`select.applications: ${glob} matches no application in the inventory`)
    }
  }
  const groups = new Map<string, Array<InventoryVm>>()
  for (const vm of live) {
    if (!environmentRank.has(vm.environment) || !environmentSelected(vm.environment)) continue
    if (!stackSelected(vm.stack) || !applicationSelected(vm.application)) continue
    const id = fleetIdOf(vm.application, vm.environment, vm.stack)
    const group = groups.get(id)
    if (group === undefined) groups.set(id, [vm])
    else group.push(vm)
  }
  const byName = (a: InventoryVm, b: InventoryVm) => compareText(a.name, b.name) || compareText(a.id, b.id)
  const matched: Array<MatchedFleet> = []
  for (const [id, vms] of groups) {
    // Sorted, so that nothing in the plan depends on the order the inventory was read in.
    const selected = vms.filter((vm) => sourceSet.has(vm.osVersion)).sort(byName)
    if (selected.length > 0) matched.push({ id: id as FleetId, vms: vms.sort(byName), selected })
  }

  // What the selected VMs run, said of the versions some of them are on only: of a version no
  // selected VM runs, there is nothing to say.
  const selectedOn = new Map<string, number>()
  for (const fleet of matched) for (const vm of fleet.selected) selectedOn.set(vm.osVersion, (selectedOn.get(vm.osVersion) ?? 0) + 1)
  if (spec.select.osVersions !== "deprecated") {
    for (const os of sources) {
      if (selectedOn.has(os) && !policies.isDeprecated(os)) {
        warnings.push(`${os} is not deprecated as of ${now.toISOString().slice(0, 10)}; it is moved because the plan lists it`)
      }
    }
  }
  for (const status of policies.statuses) {
    const running = selectedOn.get(status.osVersion)
    if (status.status === "end-of-life" && running !== undefined) {
      warnings.push(`${status.osVersion} reached its end of life on ${status.endOfLife}; ${plural(running, "selected VM")} still run${running === 1 ? "s" : ""} it`)
    }
  }

  const assessed = matched.map((fleet) => assess(fleet, targetOf, policies.endOfLifeOf, strategy, catalog))
  const byFleetOrder = (a: Assessed, b: Assessed) =>
    environmentRank.get(a.first.environment)! - environmentRank.get(b.first.environment)! ||
    compareText(a.first.application, b.first.application) ||
    compareText(a.first.stack, b.first.stack)
  const moving = assessed.filter((fleet) => fleet.reasons.length === 0).sort(byFleetOrder)
  const skippedFleets = assessed.filter((fleet) => fleet.reasons.length > 0).sort(byFleetOrder)

  // Waves: environments in order; a canary wave first where one applies.
  const waveFleets: Array<{ readonly environment: EnvironmentName; readonly kind: "canary" | "rollout"; readonly fleets: ReadonlyArray<Assessed> }> = []
  let canaryDone = false
  for (const environment of environmentOrder) {
    const fleets = moving.filter((fleet) => fleet.first.environment === environment)
    if (fleets.length === 0) continue
    const canary = strategy.canary
    if (canary !== undefined && (canary.scope === "every-environment" || !canaryDone)) {
      canaryDone = true
      const chosen = [...fleets]
        .sort((a, b) => a.fleet.vms.length - b.fleet.vms.length || compareText(a.first.application, b.first.application) || compareText(a.first.stack, b.first.stack))
        .slice(0, canary.fleets)
      if (chosen.length < canary.fleets) {
        warnings.push(`the canary asks for ${plural(canary.fleets, "fleet")} but ${environment} has ${plural(fleets.length, "moving fleet")}`)
      }
      const chosenIds = new Set(chosen.map((fleet) => fleet.fleet.id))
      waveFleets.push({ environment, kind: "canary", fleets: chosen })
      const rest = fleets.filter((fleet) => !chosenIds.has(fleet.fleet.id))
      if (rest.length > 0) waveFleets.push({ environment, kind: "rollout", fleets: rest })
    } else {
      waveFleets.push({ environment, kind: "rollout", fleets })
    }
  }

  // Steps, in run order: wave, fleet, VM name.
  const stepDrafts: Array<{ vm: InventoryVm; to: OsVersion; fleet: FleetId; wave: number; batch: number }> = []
  const simFleets: Array<Array<SimFleet>> = []
  waveFleets.forEach((wave, waveIndex) => {
    const sims: Array<SimFleet> = []
    for (const fleet of wave.fleets) {
      const indices: Array<number> = []
      fleet.fleet.selected.forEach((vm, position) => {
        indices.push(stepDrafts.length)
        stepDrafts.push({ vm, to: fleet.targets[position]!, fleet: fleet.fleet.id, wave: waveIndex, batch: Math.floor(position / fleet.limits.concurrency) })
      })
      sims.push({ steps: indices, concurrency: fleet.limits.concurrency })
    }
    simFleets.push(sims)
  })

  // The estimate.
  const bakeSeconds = spec.estimates.bake ?? strategy.bakeTime
  const simLimits = {
    maxFleetsInParallel: strategy.maxFleetsInParallel,
    maxInFlight: strategy.maxInFlight,
    createSeconds: spec.estimates.create,
    bakeSeconds,
    decommissionSeconds: spec.estimates.decommission
  }
  const starts = new Array<number>(stepDrafts.length).fill(0)
  const ends = new Array<number>(stepDrafts.length).fill(0)
  const waveTimes: Array<{ start: number; end: number }> = []
  let clock = 0
  for (const sims of simFleets) {
    const end = simulateWave(sims, clock, simLimits, starts, ends)
    waveTimes.push({ start: clock, end })
    clock = end
  }

  const steps: Array<Step> = stepDrafts.map((draft, index) => ({
    index,
    vmId: draft.vm.id,
    vmName: draft.vm.name,
    fleet: draft.fleet,
    wave: draft.wave,
    batch: draft.batch,
    from: draft.vm.osVersion,
    to: draft.to,
    machineType: draft.vm.machineType,
    estimatedStart: starts[index]!,
    estimatedEnd: ends[index]!
  }))

  const fleetTimes = new Map<string, { start: number; end: number }>()
  for (const step of steps) {
    const times = fleetTimes.get(step.fleet)
    if (times === undefined) fleetTimes.set(step.fleet, { start: step.estimatedStart, end: step.estimatedEnd })
    else fleetTimes.set(step.fleet, { start: Math.min(times.start, step.estimatedStart), end: Math.max(times.end, step.estimatedEnd) })
  }

  const fleets: Array<MovingFleet> = []
  const waves: Array<Wave> = waveFleets.map((wave, index) => {
    const previous = waveFleets[index - 1]
    const gate: WaveGate = previous === undefined
      ? "none"
      : previous.kind === "canary" || (previous.environment !== wave.environment && strategy.environmentGate === "approval")
        ? "approval"
        : "previous-complete"
    for (const fleet of wave.fleets) {
      const times = fleetTimes.get(fleet.fleet.id)!
      fleets.push({
        id: fleet.fleet.id,
        application: fleet.first.application,
        environment: fleet.first.environment,
        stack: fleet.first.stack,
        size: fleet.fleet.vms.length,
        steps: fleet.fleet.selected.length,
        transitions: fleet.transitions,
        limits: fleet.limits,
        wave: index,
        batches: Math.ceil(fleet.fleet.selected.length / fleet.limits.concurrency),
        estimatedStart: times.start,
        estimatedEnd: times.end
      })
    }
    const vms = wave.fleets.reduce((sum, fleet) => sum + fleet.fleet.selected.length, 0)
    return {
      index,
      name: wave.kind === "canary" ? `${wave.environment} canary` : wave.environment,
      environment: wave.environment,
      kind: wave.kind,
      gate,
      fleets: wave.fleets.map((fleet) => fleet.fleet.id),
      steps: vms,
      vms,
      estimatedStart: waveTimes[index]!.start,
      estimatedEnd: waveTimes[index]!.end
    }
  })

  const skipped: Array<SkippedFleet> = skippedFleets.map((fleet) => ({
    id: fleet.fleet.id,
    application: fleet.first.application,
    environment: fleet.first.environment,
    stack: fleet.first.stack,
    size: fleet.fleet.vms.length,
    vms: fleet.fleet.selected.length,
    transitions: fleet.transitions,
    reasons: fleet.reasons as [SkipReason, ...Array<SkipReason>]
  }))

  // Totals.
  const transitionTotals = new Map<string, Transition>()
  for (const fleet of fleets) {
    for (const transition of fleet.transitions) {
      const key = `${transition.from} ${transition.to}`
      transitionTotals.set(key, { ...transition, vms: (transitionTotals.get(key)?.vms ?? 0) + transition.vms })
    }
  }
  const reasonCounts = new Map<SkipCode, number>()
  for (const fleet of skipped) {
    for (const code of new Set(fleet.reasons.map((reason) => reason.code))) reasonCounts.set(code, (reasonCounts.get(code) ?? 0) + 1)
  }
  const skipOrder: ReadonlyArray<SkipCode> = ["no-proc", "no-replacement", "vms-in-flight", "unhealthy-vms", "no-progress"]

  // OS mix per environment, over the whole inventory.
  const movingTarget = new Map<string, OsVersion>(steps.map((step) => [step.vmId, step.to]))
  const mix = new Map<string, { before: Map<string, number>; after: Map<string, number> }>()
  for (const vm of live) {
    let entry = mix.get(vm.environment)
    if (entry === undefined) {
      entry = { before: new Map(), after: new Map() }
      mix.set(vm.environment, entry)
    }
    entry.before.set(vm.osVersion, (entry.before.get(vm.osVersion) ?? 0) + 1)
    const after = movingTarget.get(vm.id) ?? vm.osVersion
    entry.after.set(after, (entry.after.get(after) ?? 0) + 1)
  }
  const catalogEnvironments = new Map<string, number>(catalog.spec.environments.map((entry, index) => [entry.name, index]))
  const osMix: Array<EnvironmentOsMix> = [...mix]
    .sort(([a], [b]) => (catalogEnvironments.get(a) ?? Infinity) - (catalogEnvironments.get(b) ?? Infinity) || compareText(a, b))
    .map(([environment, counts]) => ({
      environment: environment as EnvironmentName,
      before: mixOf(counts.before, osOrder),
      after: mixOf(counts.after, osOrder)
    }))

  // The digest of what the plan was computed from.
  const digestRows = matched
    .flatMap((fleet) => fleet.vms.map((vm) => [vm.id, vm.name, vm.state, vm.osVersion] as const))
    .sort((a, b) => compareText(a[0], b[0]) || compareText(a[1], b[1]))
  // Arrays of strings are canonical JSON as they are: plain JSON.stringify gives canonicalJson's text, faster.
  const inventoryDigest = sha256(JSON.stringify(digestRows))

  const totalSeconds = clock
  const plan: Omit<Plan, "planHash"> = {
    version: 1,
    name: spec.name,
    ...(spec.description === undefined ? {} : { description: spec.description }),
    asOf: now.toISOString(),
    target: spec.target,
    sourceOsVersions: sources,
    specHash: hashOf(Schema.encodeSync(RecyclePlanSpec)(spec)),
    inventoryDigest,
    policies: policies.statuses,
    limits: {
      maxSurge: strategy.maxSurge,
      maxUnavailable: strategy.maxUnavailable,
      maxFleetsInParallel: strategy.maxFleetsInParallel,
      maxInFlight: strategy.maxInFlight,
      environmentOrder,
      environmentGate: strategy.environmentGate,
      ...(strategy.canary === undefined ? {} : { canary: strategy.canary }),
      bakeSeconds: strategy.bakeTime,
      failureBudget: {
        max: strategy.failureBudget.max,
        allowedFailures: allowedFailures(strategy.failureBudget.max, steps.length),
        action: strategy.failureBudget.action
      }
    },
    waves,
    fleets,
    skipped,
    steps,
    totals: {
      fleetsMatched: matched.length,
      fleetsMoving: fleets.length,
      fleetsSkipped: skipped.length,
      vmsMoving: steps.length,
      vmsSkipped: skipped.reduce((sum, fleet) => sum + fleet.vms, 0),
      steps: steps.length,
      waves: waves.length,
      transitions: [...transitionTotals.values()].sort((a, b) => compareText(a.from, b.from) || compareText(a.to, b.to)),
      skippedByReason: skipOrder.filter((code) => reasonCounts.has(code)).map((code) => ({ code, fleets: reasonCounts.get(code)! }))
    },
    estimate: {
      createSeconds: spec.estimates.create,
      bakeSeconds,
      decommissionSeconds: spec.estimates.decommission,
      stepSeconds: spec.estimates.create + bakeSeconds + spec.estimates.decommission,
      totalSeconds,
      approvals: waves.filter((wave) => wave.gate === "approval").length,
      ...(spec.schedule === undefined ? {} : { schedule: scheduleOf(spec.schedule, totalSeconds, now) })
    },
    osMix,
    warnings
  }
  return { ...plan, planHash: hashOf(plan) }
}

/** Recomputes the hash of a plan (for example one read back from storage) to check it was not altered. */
export const planHashOf = (plan: Plan): string => {
  const { planHash: _planHash, ...rest } = plan
  return hashOf(rest)
}

/** Every fleet the plan's digest covers: those that move and those skipped. */
export const digestFleetIds = (plan: Plan): ReadonlySet<FleetId> =>
  new Set([...plan.fleets.map((fleet) => fleet.id), ...plan.skipped.map((fleet) => fleet.id)])

/**
 * The inventory digest an executor recomputes before a run, from the current VMs of the plan's
 * fleets (digestFleetIds; fleetIdOf(application, environment, stack)): the same rows and order as
 * buildPlan's. A different value means the fleets changed since the plan was made.
 */
export const inventoryDigestOf = (vms: ReadonlyArray<Pick<InventoryVm, "id" | "name" | "state" | "osVersion">>): string =>
  sha256(JSON.stringify(
    vms
      .filter((vm) => vm.state !== "decommissioned")
      .map((vm) => [vm.id, vm.name, vm.state, vm.osVersion] as const)
      .sort((a, b) => compareText(a[0], b[0]) || compareText(a[1], b[1]))
  ))

/** A one-line summary, for logs. */
export const summarize = (plan: Plan): string =>
  `${plan.name}: ${plural(plan.totals.vmsMoving, "VM")} in ${plural(plan.totals.fleetsMoving, "fleet")} over ${plural(plan.totals.waves, "wave")}, ` +
  `${plural(plan.totals.fleetsSkipped, "fleet")} skipped, about ${formatDuration(plan.estimate.totalSeconds)}`
