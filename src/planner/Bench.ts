/**
 * A micro-benchmark of the planner core alone (no database, no I/O): builds the plan for a large
 * synthetic inventory a few times and reports the wall-clock time of each build. For bench/ to
 * call; nothing here runs on import.
 */
import type { CatalogData } from "../catalog/Catalog.js"
import { generateBenchmarkInventory, type BenchmarkOptions } from "../demo/Synthetic.js"
import type { DeprecationPolicies, Plan, RecyclePlanSpec } from "./Domain.js"
import { buildPlan, type PlanInput } from "./Planner.js"

export interface PlannerBenchmark {
  readonly vms: number
  readonly fleetsMoving: number
  readonly steps: number
  /** Milliseconds of each build, in order (the first one includes warm-up). */
  readonly runs: ReadonlyArray<number>
  readonly medianMs: number
  readonly plan: Plan
}

/** Times `iterations` builds of the same input. */
export const benchmarkBuildPlan = (input: PlanInput, iterations = 5): PlannerBenchmark => {
  const runs: Array<number> = []
  let plan: Plan | undefined
  for (let index = 0; index < Math.max(1, iterations); index++) {
    const started = performance.now()
    plan = buildPlan(input)
    runs.push(performance.now() - started)
  }
  const sorted = [...runs].sort((a, b) => a - b)
  return {
    vms: input.inventory.vms.length,
    fleetsMoving: plan!.totals.fleetsMoving,
    steps: plan!.totals.steps,
    runs,
    medianMs: sorted[Math.floor(sorted.length / 2)]!,
    plan: plan!
  }
}

/** The standard benchmark input: 100,000 VMs in 10,000 fleets, half on deprecated versions (see generateBenchmarkInventory). */
export const benchmarkInput = (options: {
  readonly catalog: CatalogData
  readonly policies: DeprecationPolicies
  readonly spec: RecyclePlanSpec
  readonly now: Date
  readonly inventory?: BenchmarkOptions
}): PlanInput => ({
  inventory: { vms: generateBenchmarkInventory(options.catalog, options.inventory) },
  policies: options.policies,
  spec: options.spec,
  catalog: options.catalog,
  now: options.now
})
