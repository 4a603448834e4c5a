import { describe, expect, it } from "@effect/vitest"
import { Schema } from "effect"
import type { OsVersion } from "../../src/catalog/Domain.js"
import { generateInventory } from "../../src/demo/Synthetic.js"
import { DeprecationPolicy, fleetIdOf, IsoDate, Plan } from "../../src/planner/Domain.js"
import { buildPlan, digestFleetIds, inventoryDigestOf, planHashOf } from "../../src/planner/Planner.js"
import { catalog, examplePlanFiles, fleet, loadExample, now, policies, spec, vm } from "./fixtures.js"

const plan = (vms: ReadonlyArray<ReturnType<typeof vm>>, encodedSpec: Record<string, unknown> = {}, at = now) =>
  buildPlan({ inventory: { vms }, policies, spec: spec(encodedSpec), catalog, now: at })

const reasonsOf = (built: Plan, id: string) => built.skipped.find((entry) => entry.id === id)?.reasons.map((reason) => reason.code)

describe("skip rules", () => {
  it("skips a fleet with no proc for the target, with VMs in flight, or with failed VMs", () => {
    const vms = [
      ...fleet(3, { application: "ruby-app", stack: "ruby", osVersion: "ubuntu-18.04" }),
      ...fleet(2, { application: "busy-app" }), vm({ application: "busy-app", state: "provisioning", osVersion: "ubuntu-24.04" }),
      ...fleet(2, { application: "sick-app" }), vm({ application: "sick-app", state: "timed_out" }),
      ...fleet(2, { application: "fine-app" })
    ]
    const built = plan(vms)
    expect(reasonsOf(built, "ruby-app/production/ruby")).toEqual(["no-proc"])
    expect(built.skipped.find((entry) => entry.id === "ruby-app/production/ruby")?.reasons[0].message).toBe("no proc creates ruby VMs on ubuntu-24.04")
    expect(reasonsOf(built, "busy-app/production/java")).toEqual(["vms-in-flight"])
    expect(reasonsOf(built, "sick-app/production/java")).toEqual(["unhealthy-vms"])
    const sick = built.skipped.find((entry) => entry.id === "sick-app/production/java")!
    expect(sick.reasons[0].message).toMatch(/^1 VM failed or timed out \(1 timed_out: sick-app-\S+\); retry or decommission it first \(fleet vms retry\|decommission <vm-id>\)$/)
    expect(built.fleets.map((entry) => entry.id)).toEqual(["fine-app/production/java"])
    expect(built.totals.skippedByReason).toEqual([
      { code: "no-proc", fleets: 1 },
      { code: "vms-in-flight", fleets: 1 },
      { code: "unhealthy-vms", fleets: 1 }
    ])
    // The skipped fleets' selected VMs are counted; the in-flight VM, already on the target version, is not selected.
    expect(built.totals.vmsSkipped).toBe(3 + 2 + 3)
  })

  it("skips a fleet the limits cannot move: maxSurge 0 and maxUnavailable 10% of a fleet of 1 are 0 and 0", () => {
    const vms = [...fleet(1, { application: "tiny-app" }), ...fleet(9, { application: "small-app" }), ...fleet(12, { application: "big-app" })]
    const built = plan(vms, { strategy: { maxSurge: 0, maxUnavailable: "10%" } })
    expect(reasonsOf(built, "tiny-app/production/java")).toEqual(["no-progress"])
    expect(built.skipped.find((entry) => entry.id === "tiny-app/production/java")?.reasons[0].message)
      .toBe("maxSurge 0 and maxUnavailable 10% of 1 VM round to 0 and 0: no step could start")
    expect(reasonsOf(built, "small-app/production/java")).toEqual(["no-progress"])
    // 10% of 12 rounds down to 1: the big fleet moves one VM at a time.
    expect(built.fleets.map((entry) => [entry.id, entry.limits, entry.batches])).toEqual([["big-app/production/java", { surge: 0, unavailable: 1, concurrency: 1 }, 12]])
    // maxSurge percentages round up: 10% of 1 is 1.
    expect(plan(vms.slice(0, 1), { strategy: { maxSurge: "10%", maxUnavailable: "10%" } }).fleets[0]?.limits).toEqual({ surge: 1, unavailable: 0, concurrency: 1 })
  })

  it("lists every reason that applies to a fleet", () => {
    const built = plan([...fleet(1, { stack: "ruby" }), vm({ stack: "ruby", state: "failed" }), vm({ stack: "ruby", state: "pending" })])
    expect(reasonsOf(built, "payments-api/production/ruby")).toEqual(["vms-in-flight", "unhealthy-vms", "no-proc"])
  })

  it("moves no fleet onto a target past its end of life, and says so; onto a deprecated one, with a warning", () => {
    const vms = [...fleet(2, { application: "old-app", osVersion: "ubuntu-20.04" }), ...fleet(1, { application: "other-app", osVersion: "ubuntu-20.04" })]
    const spec20 = { select: { osVersions: ["ubuntu-20.04"] } }
    // On 2026-05-01 ubuntu-16.04 is past its end of life (2026-04-30); ubuntu-18.04 is deprecated, until 2028-05-31.
    const at = new Date("2026-05-01T00:00:00Z")
    const retired = plan(vms, { ...spec20, target: "ubuntu-16.04" }, at)
    expect(retired.fleets).toEqual([])
    expect(retired.skipped.map((entry) => [entry.id, entry.reasons])).toEqual([
      ["old-app/production/java", [{ code: "target-end-of-life", message: "the target ubuntu-16.04 reached its end of life on 2026-04-30: new VMs on it are refused" }]],
      ["other-app/production/java", [{ code: "target-end-of-life", message: "the target ubuntu-16.04 reached its end of life on 2026-04-30: new VMs on it are refused" }]]
    ])
    expect(retired.warnings).toContain("the target ubuntu-16.04 reached its end of life on 2026-04-30: no fleet is moved onto it")
    // The day before, it was only deprecated: moved, with the warning.
    const dayBefore = plan(vms, { ...spec20, target: "ubuntu-16.04" }, new Date("2026-04-29T23:59:59Z"))
    expect(dayBefore.fleets.map((entry) => entry.id)).toEqual(["old-app/production/java", "other-app/production/java"])
    expect(dayBefore.warnings).toContain("the target ubuntu-16.04 is itself deprecated (since 2021-04-30)")
    const deprecated = plan(vms, { ...spec20, target: "ubuntu-18.04" }, at)
    expect(deprecated.skipped).toEqual([])
    expect(deprecated.warnings).toContain("the target ubuntu-18.04 is itself deprecated (since 2023-05-31)")
  })

  it("skips a version nothing supported replaces, and follows a chain of replacements", () => {
    const chained = [
      new DeprecationPolicy({ osVersion: "ubuntu-16.04" as OsVersion, deprecatedFrom: IsoDate.make("2021-04-30"), endOfLife: IsoDate.make("2026-04-30"), replacement: "ubuntu-18.04" as OsVersion }),
      new DeprecationPolicy({ osVersion: "ubuntu-18.04" as OsVersion, deprecatedFrom: IsoDate.make("2023-05-31"), endOfLife: IsoDate.make("2028-05-31"), replacement: "ubuntu-22.04" as OsVersion }),
      new DeprecationPolicy({ osVersion: "ubuntu-20.04" as OsVersion, deprecatedFrom: IsoDate.make("2025-05-31"), endOfLife: IsoDate.make("2030-05-31") })
    ]
    const built = buildPlan({
      inventory: { vms: [...fleet(2, { application: "old-app", osVersion: "ubuntu-16.04" }), ...fleet(2, { application: "focal-app", osVersion: "ubuntu-20.04" })] },
      policies: chained,
      spec: spec({}),
      catalog,
      now
    })
    expect(built.policies.find((policy) => policy.osVersion === "ubuntu-16.04")?.resolvedReplacement).toBe("ubuntu-22.04")
    expect(built.fleets.map((entry) => [entry.id, entry.transitions])).toEqual([["old-app/production/java", [{ from: "ubuntu-16.04", to: "ubuntu-22.04", vms: 2 }]]])
    expect(reasonsOf(built, "focal-app/production/java")).toEqual(["no-replacement"])
  })

  it("moves only the selected VMs of a mixed fleet, sizes it by all its live VMs, and ignores decommissioned ones", () => {
    const vms = [
      ...fleet(3, { osVersion: "ubuntu-16.04" }),
      ...fleet(5, { osVersion: "ubuntu-24.04" }),
      ...fleet(4, { osVersion: "ubuntu-18.04", state: "decommissioned" }),
      ...fleet(2, { application: "gone-app", osVersion: "ubuntu-16.04", state: "decommissioned" }),
      ...fleet(2, { application: "modern-app", osVersion: "ubuntu-22.04" })
    ]
    const built = plan(vms, { strategy: { maxSurge: "25%" } })
    expect(built.fleets).toHaveLength(1)
    expect(built.fleets[0]).toMatchObject({ id: "payments-api/production/java", size: 8, steps: 3, limits: { surge: 2, unavailable: 0, concurrency: 2 }, batches: 2 })
    expect(built.totals.fleetsMatched).toBe(1)
    expect(built.steps.map((step) => step.from)).toEqual(["ubuntu-16.04", "ubuntu-16.04", "ubuntu-16.04"])
    expect(built.steps.map((step) => step.batch)).toEqual([0, 0, 1])
  })

  it("does not select versions that are not deprecated yet, unless listed, and then warns", () => {
    const vms = fleet(2, { osVersion: "ubuntu-22.04" })
    expect(plan(vms).totals.fleetsMatched).toBe(0)
    const listed = plan(vms, { select: { osVersions: ["ubuntu-22.04"] } })
    expect(listed.totals.vmsMoving).toBe(2)
    expect(listed.warnings.join("\n")).toMatch(/ubuntu-22\.04 is not deprecated as of 2025-09-01/)
    // An application named that the inventory does not have: most likely a typo, said.
    const typo = plan(vms, { select: { osVersions: ["ubuntu-22.04"], applications: { include: ["payments-apx", "pay*"] } } })
    expect(typo.warnings).toContain("select.applications: payments-apx matches no application in the inventory")
    expect(typo.warnings.join("\n")).not.toContain("pay* matches no application")
    // Listed, but run by no selected VM: nothing to warn of.
    const nobody = plan(fleet(2, { osVersion: "ubuntu-20.04" }), { select: { osVersions: ["ubuntu-20.04", "ubuntu-22.04"] } })
    expect(nobody.warnings.join("\n")).not.toMatch(/ubuntu-22\.04 is not deprecated/)
    // In 2028 22.04 is deprecated by its own policy.
    expect(plan(vms, {}, new Date("2028-01-01T00:00:00Z")).totals.vmsMoving).toBe(2)
  })
})

describe("waves", () => {
  const estate = [
    ...fleet(3, { application: "alpha-api", environment: "integration" }),
    ...fleet(1, { application: "beta-api", environment: "integration" }),
    ...fleet(2, { application: "gamma-api", environment: "integration" }),
    ...fleet(4, { application: "alpha-api", environment: "staging" }),
    ...fleet(6, { application: "alpha-api", environment: "production" }),
    ...fleet(2, { application: "beta-api", environment: "production" })
  ]

  it("runs environments in order, each after the previous, with the canary's smallest fleets first and an approval after it", () => {
    const built = plan(estate, { strategy: { canary: { fleets: 2 }, environmentOrder: ["integration", "staging", "production"] } })
    expect(built.waves.map((wave) => [wave.name, wave.kind, wave.gate, wave.fleets])).toEqual([
      ["integration canary", "canary", "none", ["beta-api/integration/java", "gamma-api/integration/java"]],
      ["integration", "rollout", "approval", ["alpha-api/integration/java"]],
      ["staging", "rollout", "previous-complete", ["alpha-api/staging/java"]],
      ["production", "rollout", "previous-complete", ["alpha-api/production/java", "beta-api/production/java"]]
    ])
    expect(built.estimate.approvals).toBe(1)
    for (let index = 1; index < built.waves.length; index++) {
      expect(built.waves[index]!.estimatedStart).toBe(built.waves[index - 1]!.estimatedEnd)
    }
  })

  it("can put a canary in every environment and ask for approval between environments", () => {
    const built = plan(estate, {
      strategy: { canary: { fleets: 1, scope: "every-environment" }, environmentGate: "approval", environmentOrder: ["production", "staging", "integration"] }
    })
    expect(built.waves.map((wave) => [wave.name, wave.gate])).toEqual([
      ["production canary", "none"],
      ["production", "approval"],
      ["staging canary", "approval"],
      ["integration canary", "approval"],
      ["integration", "approval"]
    ])
    expect(built.limits.environmentOrder).toEqual(["production", "staging", "integration"])
  })
})

describe("the estimate", () => {
  it("builds surge steps side by side and respects maxInFlight", () => {
    const vms = fleet(4)
    const wide = plan(vms, { strategy: { maxSurge: 2 }, estimates: { create: "10m", decommission: "2m" } })
    expect(wide.estimate.totalSeconds).toBe(2 * 720)
    expect(wide.steps.map((step) => [step.estimatedStart, step.estimatedEnd])).toEqual([[0, 720], [0, 720], [720, 1440], [720, 1440]])
    // One execution at a time: each create and each decommission waits for the one before.
    const narrow = plan(vms, { strategy: { maxSurge: 2, maxInFlight: 1 }, estimates: { create: "10m", decommission: "2m" } })
    expect(narrow.estimate.totalSeconds).toBe(4 * 720)
    // Bake time holds the fleet slot but not an execution.
    const baked = plan(vms, { strategy: { maxSurge: 4, maxInFlight: 1, bakeTime: "1h" }, estimates: { create: "10m", decommission: "2m" } })
    expect(baked.estimate.stepSeconds).toBe(600 + 3600 + 120)
    expect(baked.estimate.totalSeconds).toBe(4 * 600 + 3600 + 120)
  })

  it("limits fleets in parallel", () => {
    const vms = [...fleet(1, { application: "a-app" }), ...fleet(1, { application: "b-app" }), ...fleet(1, { application: "c-app" })]
    const built = plan(vms, { strategy: { maxFleetsInParallel: 2 }, estimates: { create: "10m", decommission: "0s" } })
    expect(built.fleets.map((entry) => entry.estimatedStart)).toEqual([0, 0, 600])
    expect(built.estimate.totalSeconds).toBe(1200)
  })

  it("resolves the failure budget against the plan's steps, rounding down, and counts the windows a schedule needs", () => {
    const built = plan(fleet(30), {
      strategy: { maxSurge: 1, failureBudget: { max: "5%", action: "abort" } },
      estimates: { create: "1h", decommission: "0s" },
      schedule: { cron: "0 2 * * 1-5", timeZone: "Europe/Amsterdam", window: "4h" }
    })
    expect(built.limits.failureBudget).toEqual({ max: { kind: "percent", value: 5 }, allowedFailures: 1, action: "abort" })
    expect(built.estimate.totalSeconds).toBe(30 * 3600)
    expect(built.estimate.schedule).toMatchObject({ windowsNeeded: 8, windowSeconds: 14_400 })
    // 2025-09-01 is a Monday; 12:00 UTC is past that night's 02:00 Amsterdam (00:00 UTC).
    expect(built.estimate.schedule?.nextWindows.slice(0, 2)).toEqual(["2025-09-02T00:00:00.000Z", "2025-09-03T00:00:00.000Z"])
  })
})

describe("hashes and digests", () => {
  const vms = [...fleet(3, { application: "alpha-api" }), ...fleet(2, { application: "beta-api", state: "ready" }), vm({ application: "beta-api", state: "failed" })]

  it("the plan hash covers the plan and survives a JSON round trip with reordered keys", () => {
    const built = plan(vms)
    expect(planHashOf(built)).toBe(built.planHash)
    const json = JSON.parse(JSON.stringify(Schema.encodeSync(Plan)(built))) as Record<string, unknown>
    const reordered = Object.fromEntries(Object.entries(json).reverse())
    const decoded = Schema.decodeUnknownSync(Plan)(reordered)
    expect(planHashOf(decoded)).toBe(built.planHash)
    expect(planHashOf({ ...decoded, name: "other" })).not.toBe(built.planHash)
  })

  it("the inventory digest changes when a matched fleet changes, not when another one does", () => {
    const built = plan(vms)
    const fleets = digestFleetIds(built)
    expect([...fleets].sort()).toEqual(["alpha-api/production/java", "beta-api/production/java"])
    const ofFleets = (all: typeof vms) => inventoryDigestOf(all.filter((entry) => fleets.has(fleetIdOf(entry.application, entry.environment, entry.stack))))
    expect(ofFleets(vms)).toBe(built.inventoryDigest)

    const repaired = vms.map((entry) => entry.state === "failed" ? { ...entry, state: "decommissioned" as const } : entry)
    expect(plan(repaired).inventoryDigest).not.toBe(built.inventoryDigest)
    expect(ofFleets(repaired)).not.toBe(built.inventoryDigest)

    const unrelated = [...vms, ...fleet(2, { application: "other-api", osVersion: "ubuntu-24.04" })]
    expect(plan(unrelated).inventoryDigest).toBe(built.inventoryDigest)
  })

  it("the spec hash depends on the spec only", () => {
    expect(plan(vms, { name: "a" }).specHash).toBe(plan([], { name: "a" }).specHash)
    expect(plan(vms, { name: "a" }).specHash).not.toBe(plan(vms, { name: "b" }).specHash)
  })
})

describe("the shipped example plans on the synthetic inventory", () => {
  const inventory = { vms: generateInventory(42, 300, catalog) }

  it("each produces a non-empty plan", () => {
    for (const file of examplePlanFiles) {
      const built = buildPlan({ inventory, policies, spec: loadExample(file), catalog, now })
      expect(built.totals.steps, file).toBeGreaterThan(0)
      expect(built.waves.length, file).toBeGreaterThan(0)
      expect(built.estimate.totalSeconds, file).toBeGreaterThan(0)
      expect(Schema.is(Plan)(built), file).toBe(true)
    }
  })

  it("retire-deprecated moves the deprecated fleets to 24.04 and skips ruby for want of a proc", () => {
    const built = buildPlan({ inventory, policies, spec: loadExample("retire-deprecated.yaml"), catalog, now })
    expect(built.sourceOsVersions).toEqual(["ubuntu-16.04", "ubuntu-18.04", "ubuntu-20.04"])
    expect(new Set(built.steps.map((step) => step.to))).toEqual(new Set(["ubuntu-24.04"]))
    const ruby = built.skipped.filter((entry) => entry.stack === "ruby")
    expect(ruby.length).toBeGreaterThan(0)
    for (const entry of ruby) expect(entry.reasons.map((reason) => reason.message)).toContain("no proc creates ruby VMs on ubuntu-24.04")
    expect(built.waves[0]).toMatchObject({ kind: "canary", environment: "integration", gate: "none" })
    expect(built.waves[0]!.fleets).toHaveLength(2)
    expect(built.waves[1]?.gate).toBe("approval")
  })

  it("payments-canary selects only payments-* applications, without payments-admin", () => {
    const built = buildPlan({ inventory, policies, spec: loadExample("payments-canary.yaml"), catalog, now })
    const applications = new Set([...built.fleets, ...built.skipped].map((entry) => entry.application))
    expect(applications.size).toBeGreaterThan(0)
    for (const application of applications) expect(application).toMatch(/^payments-/)
    expect(applications.has("payments-admin" as never)).toBe(false)
  })

  it("production-no-surge shows which small fleets the limits cannot move", () => {
    const built = buildPlan({ inventory, policies, spec: loadExample("production-no-surge.yaml"), catalog, now })
    const stuck = built.skipped.filter((entry) => entry.reasons.some((reason) => reason.code === "no-progress"))
    expect(stuck.length).toBeGreaterThan(0)
    for (const entry of stuck) expect(entry.size).toBeLessThan(10)
    for (const entry of built.fleets) expect(entry.size).toBeGreaterThanOrEqual(10)
  })
})
