/**
 * The planner's laws, checked on random inventories and specs (fast-check). Each law is checked
 * against facts recomputed here from the input, not against the planner's own bookkeeping.
 */
import { describe, expect, it } from "@effect/vitest"
import { peakOverlap } from "../support/Intervals.js"
import { Schema } from "effect"
import fc from "fast-check"
import type { ApplicationName, EnvironmentName, MachineType, OsVersion, StackName } from "../../src/catalog/Domain.js"
import { matchesAny } from "../../src/common/Glob.js"
import { fleetIdOf, type InventoryVm, Plan, RecyclePlanSpec, resolveCountOrPercent, startOfDay, VmState } from "../../src/planner/Domain.js"
import { buildPlan, planHashOf } from "../../src/planner/Planner.js"
import { catalog, policies } from "./fixtures.js"

const environments = catalog.spec.environments.map((entry) => entry.name)
// Few applications and stacks, so that fleets have several VMs; ruby is in because it cannot go to 24.04.
const stacks = catalog.spec.stacks.filter((stack) => ["java", "go", "ruby"].includes(stack))
const osVersions = catalog.spec.osVersions.map((entry) => entry.name)
const applications = ["alpha-api", "beta-worker", "gamma-web"]
const instants = ["2020-01-01", "2024-01-01", "2025-09-01", "2028-01-01", "2035-01-01"].map((day) => new Date(`${day}T06:00:00Z`))

const stateArbitrary = fc.oneof(
  { weight: 24, arbitrary: fc.constant<VmState>("ready") },
  { weight: 1, arbitrary: fc.constantFrom(...VmState.literals) }
)

const inventoryArbitrary = fc
  .array(
    fc.record({
      application: fc.constantFrom(...applications),
      environment: fc.constantFrom(...environments),
      stack: fc.constantFrom(...stacks),
      osVersion: fc.constantFrom(...osVersions),
      state: stateArbitrary
    }),
    { minLength: 5, maxLength: 120 }
  )
  .map((rows): ReadonlyArray<InventoryVm> =>
    rows.map((row, index) => ({
      id: `vm-${String(index).padStart(4, "0")}`,
      name: `${row.application}-${index}`,
      application: row.application as ApplicationName,
      environment: row.environment as EnvironmentName,
      stack: row.stack as StackName,
      osVersion: row.osVersion as OsVersion,
      machineType: "e2-small" as MachineType,
      state: row.state
    }))
  )

const limitArbitrary = fc.oneof(fc.integer({ min: 0, max: 3 }), fc.constantFrom("0%", "10%", "25%", "33.5%", "50%", "100%"))
const isZero = (limit: number | string) => limit === 0 || limit === "0%"
const duration = fc.constantFrom("0s", "90s", "10m", "1h")

const specArbitrary = fc
  .record({
    target: fc.constantFrom<"replacement" | string>("replacement", ...osVersions),
    osList: fc.option(fc.subarray(osVersions, { minLength: 1 }), { nil: undefined }),
    applications: fc.option(fc.subarray(applications, { minLength: 1 }), { nil: undefined }),
    stacksExcluded: fc.subarray(stacks, { maxLength: 1 }),
    maxSurge: limitArbitrary,
    maxUnavailable: limitArbitrary,
    maxFleetsInParallel: fc.integer({ min: 1, max: 4 }),
    maxInFlight: fc.integer({ min: 1, max: 8 }),
    environmentOrder: fc.shuffledSubarray(environments, { minLength: environments.length }),
    environmentGate: fc.constantFrom("complete", "approval"),
    canary: fc.option(fc.record({ fleets: fc.integer({ min: 1, max: 3 }), scope: fc.constantFrom("first-environment", "every-environment") }), { nil: undefined }),
    bakeTime: duration,
    create: duration,
    decommission: duration
  })
  .filter((draft) => !(isZero(draft.maxSurge) && isZero(draft.maxUnavailable)))
  .map((draft) => {
    const osList = draft.osList?.filter((os) => os !== draft.target)
    return Schema.decodeUnknownSync(RecyclePlanSpec)({
      name: "property",
      select: {
        osVersions: osList === undefined || osList.length === 0 ? "deprecated" : osList,
        stacks: { exclude: draft.stacksExcluded },
        ...(draft.applications === undefined ? {} : { applications: { include: draft.applications } })
      },
      target: draft.target,
      strategy: {
        maxSurge: draft.maxSurge,
        maxUnavailable: draft.maxUnavailable,
        maxFleetsInParallel: draft.maxFleetsInParallel,
        maxInFlight: draft.maxInFlight,
        environmentOrder: draft.environmentOrder,
        environmentGate: draft.environmentGate,
        ...(draft.canary === undefined ? {} : { canary: draft.canary }),
        bakeTime: draft.bakeTime
      },
      estimates: { create: draft.create, decommission: draft.decommission }
    })
  })

const inputArbitrary = fc.record({ vms: inventoryArbitrary, spec: specArbitrary, now: fc.constantFrom(...instants) })

type Input = { readonly vms: ReadonlyArray<InventoryVm>; readonly spec: RecyclePlanSpec; readonly now: Date }

const build = ({ vms, spec, now }: Input) => buildPlan({ inventory: { vms }, policies, spec, catalog, now })

/** The selection, recomputed from the spec without the planner: live VMs of selected fleets on a source version. */
const expectedSelection = ({ vms, spec, now }: Input): ReadonlyArray<InventoryVm> => {
  const deprecated = new Set(policies.policies.filter((policy) => startOfDay(policy.deprecatedFrom) <= now.getTime()).map((policy) => policy.osVersion))
  const sources = (spec.select.osVersions === "deprecated" ? osVersions.filter((os) => deprecated.has(os)) : spec.select.osVersions).filter((os) => os !== spec.target)
  const pass = (filter: { include: ReadonlyArray<string>; exclude: ReadonlyArray<string> }, name: string) =>
    matchesAny(filter.include)(name) && !matchesAny(filter.exclude)(name)
  const order = spec.strategy.environmentOrder ?? environments
  return vms.filter((entry) =>
    entry.state !== "decommissioned" &&
    sources.includes(entry.osVersion) &&
    order.includes(entry.environment) &&
    pass(spec.select.environments, entry.environment) &&
    pass(spec.select.stacks, entry.stack) &&
    pass(spec.select.applications, entry.application))
}


const runs = { numRuns: 200 }

describe("planner laws", () => {
  it("the generated inputs exercise the planner (the laws below are not vacuous)", () => {
    const plans = fc.sample(inputArbitrary, { numRuns: 300, seed: 7 }).map(build)
    const share = (predicate: (plan: Plan) => boolean) => plans.filter(predicate).length / plans.length
    expect(share((plan) => plan.steps.length > 0)).toBeGreaterThan(0.4)
    expect(share((plan) => plan.skipped.length > 0)).toBeGreaterThan(0.2)
    expect(share((plan) => plan.waves.length > 1)).toBeGreaterThan(0.2)
    expect(share((plan) => plan.waves.some((wave) => wave.kind === "canary"))).toBeGreaterThan(0.1)
    expect(share((plan) => plan.fleets.some((fleet) => fleet.limits.concurrency > 1))).toBeGreaterThan(0.1)
  })

  it("every selected VM is in exactly one step or in a skipped fleet, and no step touches a VM outside the selection", () => {
    fc.assert(fc.property(inputArbitrary, (input) => {
      const plan = build(input)
      const selection = expectedSelection(input)
      const selected = new Map(selection.map((entry) => [entry.id, entry]))
      const stepIds = plan.steps.map((step) => step.vmId)
      expect(new Set(stepIds).size).toBe(stepIds.length)
      for (const step of plan.steps) {
        const source = selected.get(step.vmId)
        expect(source, `step for ${step.vmId} outside the selection`).toBeDefined()
        expect(step.from).toBe(source!.osVersion)
        expect(step.to).not.toBe(step.from)
        expect(step.fleet).toBe(fleetIdOf(source!.application, source!.environment, source!.stack))
      }
      const skipped = new Set<string>(plan.skipped.map((entry) => entry.id))
      for (const entry of selection) {
        const inSkipped = skipped.has(fleetIdOf(entry.application, entry.environment, entry.stack))
        expect(stepIds.includes(entry.id) !== inSkipped, `${entry.id} must be moved or skipped, not both or neither`).toBe(true)
      }
      expect(plan.totals.vmsMoving + plan.totals.vmsSkipped).toBe(selection.length)
      // A fleet moves only when every live VM in it is ready: nothing in flight, nothing failed.
      const moving = new Set<string>(plan.fleets.map((fleet) => fleet.id))
      for (const entry of input.vms) {
        if (moving.has(fleetIdOf(entry.application, entry.environment, entry.stack)) && entry.state !== "decommissioned") expect(entry.state).toBe("ready")
      }
    }), runs)
  })

  it("a fleet never runs more steps at once than maxSurge + maxUnavailable allow, in a batch or in the estimate", () => {
    fc.assert(fc.property(inputArbitrary, (input) => {
      const plan = build(input)
      const live = input.vms.filter((entry) => entry.state !== "decommissioned")
      for (const fleet of plan.fleets) {
        const size = live.filter((entry) => fleetIdOf(entry.application, entry.environment, entry.stack) === fleet.id).length
        const allowed = resolveCountOrPercent(input.spec.strategy.maxSurge, size, "up") + resolveCountOrPercent(input.spec.strategy.maxUnavailable, size, "down")
        expect(allowed).toBeGreaterThan(0)
        const steps = plan.steps.filter((step) => step.fleet === fleet.id)
        const batches = new Map<number, number>()
        for (const step of steps) batches.set(step.batch, (batches.get(step.batch) ?? 0) + 1)
        for (const count of batches.values()) expect(count).toBeLessThanOrEqual(allowed)
        expect(peakOverlap(steps.map((step) => ({ from: step.estimatedStart, to: step.estimatedEnd })))).toBeLessThanOrEqual(allowed)
      }
      expect(peakOverlap(plan.fleets.map((fleet) => ({ from: fleet.estimatedStart, to: fleet.estimatedEnd })))).toBeLessThanOrEqual(input.spec.strategy.maxFleetsInParallel)
    }), runs)
  })

  it("environments run in order: no step of a later environment starts before every step of an earlier one has ended", () => {
    fc.assert(fc.property(inputArbitrary, (input) => {
      const plan = build(input)
      const order = plan.limits.environmentOrder
      const environmentOf = new Map<string, string>(plan.fleets.map((fleet) => [fleet.id, fleet.environment]))
      for (const earlier of plan.steps) {
        for (const later of plan.steps) {
          const a = order.indexOf(environmentOf.get(earlier.fleet) as EnvironmentName)
          const b = order.indexOf(environmentOf.get(later.fleet) as EnvironmentName)
          if (a < b) expect(later.estimatedStart).toBeGreaterThanOrEqual(earlier.estimatedEnd)
        }
      }
      // Waves follow the order too, and a canary wave is always followed by an approval.
      const ranks = plan.waves.map((wave) => order.indexOf(wave.environment))
      expect([...ranks].sort((x, y) => x - y)).toEqual(ranks)
      plan.waves.forEach((wave, index) => {
        if (wave.kind === "canary" && index + 1 < plan.waves.length) expect(plan.waves[index + 1]!.gate).toBe("approval")
      })
    }), runs)
  })

  it("an empty selection is a valid, empty plan", () => {
    fc.assert(fc.property(inventoryArbitrary, specArbitrary, fc.constantFrom(...instants), (vms, spec, now) => {
      const nothing = { ...spec, select: { ...spec.select, applications: { include: ["nobody-*"], exclude: [] } } }
      for (const inventory of [vms, []]) {
        const plan = build({ vms: inventory, spec: nothing, now })
        expect(plan.steps).toEqual([])
        expect(plan.waves).toEqual([])
        expect(plan.fleets).toEqual([])
        expect(plan.skipped).toEqual([])
        expect(plan.totals).toMatchObject({ fleetsMatched: 0, vmsMoving: 0, steps: 0, waves: 0 })
        expect(plan.estimate.totalSeconds).toBe(0)
        expect(Schema.decodeUnknownSync(Plan)(JSON.parse(JSON.stringify(Schema.encodeSync(Plan)(plan))))).toEqual(plan)
      }
    }), { numRuns: 50 })
  })

  it("is deterministic: the same input, in any order, gives the same plan and the same hashes", () => {
    fc.assert(fc.property(inputArbitrary, fc.integer(), (input, seed) => {
      const first = build(input)
      const again = build(input)
      expect(again).toEqual(first)
      // Reading the inventory in another order changes nothing.
      const shuffled = [...input.vms]
      let state = seed >>> 0
      for (let index = shuffled.length - 1; index > 0; index--) {
        state = (Math.imul(state, 1_103_515_245) + 12_345) >>> 0
        const other = state % (index + 1)
        ;[shuffled[index], shuffled[other]] = [shuffled[other]!, shuffled[index]!]
      }
      const reordered = build({ ...input, vms: shuffled })
      expect(reordered.planHash).toBe(first.planHash)
      expect(reordered.inventoryDigest).toBe(first.inventoryDigest)
      expect(planHashOf(first)).toBe(first.planHash)
      expect(Schema.is(Plan)(first)).toBe(true)
    }), runs)
  })
})
