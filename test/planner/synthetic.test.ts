import { describe, expect, it } from "@effect/vitest"
import { Option } from "effect"
import { generateBenchmarkInventory, generateInventory } from "../../src/demo/Synthetic.js"
import { fleetIdOf } from "../../src/planner/Domain.js"
import { catalog } from "./fixtures.js"

describe("synthetic inventory", () => {
  const vms = generateInventory(42, 300, catalog)
  const live = vms.filter((vm) => vm.state !== "decommissioned")

  it("is deterministic: the same seed gives the same rows, another seed others", () => {
    expect(generateInventory(42, 300, catalog)).toEqual(vms)
    expect(generateInventory("demo", 20, catalog)).toEqual(generateInventory("demo", 20, catalog))
    expect(generateInventory(43, 300, catalog)).not.toEqual(vms)
  })

  it("looks like a real estate: 300 applications over every environment and stack, small fleets, a deprecated tail, some trouble", () => {
    expect(new Set(vms.map((vm) => vm.application)).size).toBe(300)
    expect(new Set(vms.map((vm) => vm.environment))).toEqual(new Set(["integration", "staging", "production"]))
    expect(new Set(vms.map((vm) => vm.stack))).toEqual(new Set(catalog.spec.stacks))
    const sizes = new Map<string, number>()
    for (const vm of live) {
      const id = fleetIdOf(vm.application, vm.environment, vm.stack)
      sizes.set(id, (sizes.get(id) ?? 0) + 1)
    }
    const sorted = [...sizes.values()].sort((a, b) => a - b)
    expect(sorted[0]).toBe(1)
    expect(sorted[sorted.length - 1]).toBeLessThanOrEqual(21)
    expect(sorted[Math.floor(sorted.length / 2)]).toBeLessThanOrEqual(4)
    const byOs = new Map<string, number>()
    for (const vm of live) byOs.set(vm.osVersion, (byOs.get(vm.osVersion) ?? 0) + 1)
    for (const os of ["ubuntu-16.04", "ubuntu-18.04", "ubuntu-20.04", "ubuntu-22.04", "ubuntu-24.04"]) expect(byOs.get(os) ?? 0).toBeGreaterThan(10)
    expect(vms.filter((vm) => vm.state === "failed").length).toBeGreaterThan(0)
    expect(vms.filter((vm) => vm.state === "decommissioned").length).toBeGreaterThan(0)
    expect(vms.filter((vm) => vm.state === "ready").length / vms.length).toBeGreaterThan(0.9)
    expect(vms.some((vm) => vm.application.startsWith("payments-"))).toBe(true)
  })

  it("every VM is one the catalog could create, with a unique id and a unique DNS-safe name in the fleet naming scheme", () => {
    for (const vm of vms) expect(catalog.checkVmShape(vm)).toEqual([])
    expect(new Set(vms.map((vm) => vm.id)).size).toBe(vms.length)
    expect(new Set(vms.map((vm) => vm.name)).size).toBe(vms.length)
    for (const vm of vms) {
      expect(vm.name.length).toBeLessThanOrEqual(63)
      expect(vm.name).toMatch(/^[a-z]([a-z0-9-]*[a-z0-9])?$/)
      expect(vm.name).toMatch(new RegExp(`^${vm.application}-${catalog.shortEnvironment(vm.environment)}-${vm.stack}-${catalog.shortOsVersion(vm.osVersion)}-[a-z0-9]{6}$`))
      expect(vm.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
    }
  })

  it("scales past the word lists with numbered names", () => {
    const many = generateInventory(1, 800, catalog)
    expect(new Set(many.map((vm) => vm.application)).size).toBe(800)
    expect(many.some((vm) => /-2$/.test(vm.application))).toBe(true)
  })

  it("the benchmark inventory: 100,000 VMs in 10,000 fleets, half of them on deprecated versions", () => {
    const bench = generateBenchmarkInventory(catalog)
    expect(bench).toHaveLength(100_000)
    const fleets = new Map<string, string>()
    for (const vm of bench) fleets.set(fleetIdOf(vm.application, vm.environment, vm.stack), vm.osVersion)
    expect(fleets.size).toBe(10_000)
    const deprecated = [...fleets.values()].filter((os) => ["ubuntu-16.04", "ubuntu-18.04", "ubuntu-20.04"].includes(os)).length
    expect(deprecated).toBe(5_000)
    for (const vm of bench.slice(0, 2_000)) expect(Option.isSome(catalog.createProcFor(vm.stack, vm.osVersion))).toBe(true)
  })
})
