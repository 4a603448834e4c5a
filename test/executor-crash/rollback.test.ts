import { describe, expect, it } from "@effect/vitest"
import { grantRollbacks, type SchedulingStep } from "../../src/executor/Scheduling.js"

/**
 * An aborting run that rolls back removes replacements within the same limits as everything
 * else: each removal is a proctor execution (one of maxInFlight's slots), and a step that had
 * already failed takes one of its fleet's slots again.
 */

const started = (id: string, fleet: string, state: SchedulingStep["state"], index = 0): SchedulingStep => ({
  id,
  index,
  fleet,
  fleetConcurrency: 2,
  state,
  baked: false
})

describe("rollbacks under the limits", () => {
  it("grant no more removals than free execution slots, in step order", () => {
    const running = [started("a", "f1", "creating"), started("b", "f2", "decommissioning")]
    const candidates = ["c", "d", "e"].map((id, index) => ({ id, index: 10 - index, fleet: `g${index}`, fleetConcurrency: 2, finished: true }))
    expect(grantRollbacks(running, candidates, 4)).toEqual(["e", "d"])
    expect(grantRollbacks(running, candidates, 2)).toEqual([])
  })

  it("give a failed step back to its fleet only when the fleet has room; a baking step keeps its own", () => {
    const running = [started("a", "f1", "creating"), started("b", "f1", "baking")]
    const failed = { id: "c", index: 3, fleet: "f1", fleetConcurrency: 2, finished: true }
    const baking = { id: "b", index: 1, fleet: "f1", fleetConcurrency: 2, finished: false }
    expect(grantRollbacks(running, [failed], 10)).toEqual([])
    expect(grantRollbacks(running, [baking, failed], 10)).toEqual(["b"])
    expect(grantRollbacks([started("a", "f1", "done")], [failed], 10)).toEqual(["c"])
  })
})
