import { describe, expect, it } from "@effect/vitest"
import { progressLine } from "../../src/cli/RunCommands.js"
import { StepState } from "../../src/executor/Domain.js"

const counts = (some: Partial<Record<StepState, number>>) =>
  Object.fromEntries(StepState.literals.map((state) => [state, some[state] ?? 0])) as Record<StepState, number>

describe("a run's progress line", () => {
  it("says how the finished steps ended: a cancelled run is not shown as done", () => {
    const line = progressLine({
      state: "cancelling", pauseReason: null, percent: 99.7, steps: 737, eta: null, currentWave: 0, waves: 4,
      counts: counts({ cancelled: 735, creating: 2 })
    })
    expect(line).toBe(`cancelling [${"#".repeat(30)}] 99.7% 735/737 finished (0 done, 0 failed, 735 cancelled), 2 under way, wave 1/4`)
  })

  it("names every ending, what is queued and the ETA", () => {
    const line = progressLine({
      state: "running", pauseReason: null, percent: 50, steps: 10, eta: new Date("2026-11-26T22:15:00Z"), currentWave: 1, waves: 2,
      counts: counts({ done: 3, failed: 1, rolled_back: 1, baking: 2, queued: 1, pending: 2 })
    })
    expect(line).toBe(
      `running [${"#".repeat(15)}${".".repeat(15)}] 50.0% 5/10 finished (3 done, 1 failed, 1 rolled back), 2 under way, 1 queued, wave 2/2, ETA 22:15:00`
    )
  })
})
