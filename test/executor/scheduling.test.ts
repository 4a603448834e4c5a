import { describe, expect, it } from "@effect/vitest"
import fc from "fast-check"
import { activeStepStates, executingStepStates, type StepState } from "../../src/executor/Domain.js"
import { tallySteps } from "../../src/executor/Repo.js"
import { advanceStep, decide, queueBehind, progress, type SchedulingStep, type StartedStep } from "../../src/executor/Scheduling.js"

const startedStates: ReadonlyArray<StepState> = ["creating", "checking", "baking", "decommissioning", "rolling_back"]

const stepsArbitrary = fc.record({
  fleets: fc.array(fc.record({ concurrency: fc.integer({ min: 1, max: 4 }) }), { minLength: 1, maxLength: 6 }),
  started: fc.array(fc.record({ fleet: fc.nat(), state: fc.constantFrom(...startedStates), baked: fc.boolean() }), { maxLength: 15 }),
  pending: fc.array(fc.record({ fleet: fc.nat() }), { maxLength: 30 }),
  maxInFlight: fc.integer({ min: 1, max: 10 }),
  maxFleetsInParallel: fc.integer({ min: 1, max: 4 })
})

describe("the executor's decisions", () => {
  it("never exceed maxInFlight, a fleet's concurrency or maxFleetsInParallel, and start only pending steps", () => {
    fc.assert(
      fc.property(stepsArbitrary, (input) => {
        const fleetOf = (n: number) => `fleet-${n % input.fleets.length}`
        const concurrencyOf = (n: number) => input.fleets[n % input.fleets.length]!.concurrency
        // Start from a state within the limits, as the executor always is.
        const started: Array<SchedulingStep> = []
        for (const [index, step] of input.started.entries()) {
          const fleet = fleetOf(step.fleet)
          const candidate = { id: `s${index}`, index, fleet, fleetConcurrency: concurrencyOf(step.fleet), state: step.state, baked: step.baked }
          const next = [...started, candidate]
          const executing = next.filter((s) => executingStepStates.includes(s.state)).length
          const fleetActive = next.filter((s) => s.fleet === fleet).length
          const fleets = new Set(next.map((s) => s.fleet)).size
          if (executing <= input.maxInFlight && fleetActive <= candidate.fleetConcurrency && fleets <= input.maxFleetsInParallel) started.push(candidate)
        }
        const pending: Array<SchedulingStep> = input.pending.map((step, offset) => ({
          id: `p${offset}`, index: 100 + offset, fleet: fleetOf(step.fleet), fleetConcurrency: concurrencyOf(step.fleet), state: "pending", baked: false
        }))
        const inProgress = new Set(started.map((step) => step.fleet))
        const decision = decide({ started, pending, inProgress }, input, true)

        const decommissioned = new Set(decision.decommission)
        const begun = new Set(decision.start)
        for (const id of decommissioned) {
          const step = started.find((s) => s.id === id)!
          expect(step.state === "baking" && step.baked).toBe(true)
        }
        for (const id of begun) expect(pending.some((s) => s.id === id)).toBe(true)
        const after: Array<SchedulingStep> = [
          ...started.map((step) => (decommissioned.has(step.id) ? { ...step, state: "decommissioning" as const } : step)),
          ...pending.filter((step) => begun.has(step.id)).map((step) => ({ ...step, state: "creating" as const }))
        ]
        expect(after.filter((s) => executingStepStates.includes(s.state)).length).toBeLessThanOrEqual(input.maxInFlight)
        for (const fleet of new Set(after.map((s) => s.fleet))) {
          const active = after.filter((s) => s.fleet === fleet && activeStepStates.includes(s.state))
          expect(active.length).toBeLessThanOrEqual(active[0]?.fleetConcurrency ?? 0)
        }
        expect(new Set(after.map((s) => s.fleet)).size).toBeLessThanOrEqual(input.maxFleetsInParallel)
      }),
      { numRuns: 500 }
    )
  })

  it("starts nothing while the run may not start steps, but still lets baked steps finish", () => {
    const started: Array<SchedulingStep> = [{ id: "a", index: 0, fleet: "f", fleetConcurrency: 2, state: "baking", baked: true }]
    const pending: Array<SchedulingStep> = [{ id: "b", index: 1, fleet: "f", fleetConcurrency: 2, state: "pending", baked: false }]
    expect(decide({ started, pending, inProgress: new Set(["f"]) }, { maxInFlight: 5, maxFleetsInParallel: 1 }, false)).toEqual({
      decommission: ["a"],
      start: []
    })
  })

  const step = (overrides: Partial<StartedStep>): StartedStep => ({
    id: "s", index: 0, fleet: "f", state: "creating", oldVmId: "old-id", oldVmName: "old", newVmId: "new-id", newVmName: "new",
    newVmState: "provisioning", newVmReason: null, oldVmState: "ready", oldVmReason: null,
    checkState: null, checkReason: null, baked: false, swapStarted: false, createStarted: false, ...overrides
  })
  const context = { readinessCheck: false, bakeSeconds: 60, rollingBack: false }

  it("moves a step on from its VMs' states only", () => {
    expect(advanceStep(step({}), context)._tag).toBe("Wait")
    expect(advanceStep(step({ newVmState: "ready" }), context)).toMatchObject({ _tag: "Move", state: "baking", bakeSeconds: 60 })
    expect(advanceStep(step({ newVmState: "ready" }), { ...context, readinessCheck: true })._tag).toBe("Check")
    expect(advanceStep(step({ newVmState: "timed_out", newVmReason: "no final state" }), context)).toMatchObject({ _tag: "Move", state: "failed" })
    expect(advanceStep(step({ state: "checking", checkState: "failed", checkReason: "POD_FAILED" }), context)).toMatchObject({ state: "failed" })
    expect(advanceStep(step({ state: "decommissioning", oldVmState: "decommissioned" }), context)).toMatchObject({ state: "done" })
    expect(advanceStep(step({ state: "decommissioning", oldVmState: "ready", oldVmReason: "POD_FAILED" }), context)).toMatchObject({ state: "failed" })
    expect(advanceStep(step({ state: "baking" }), { ...context, rollingBack: true })._tag).toBe("RollBack")
    expect(advanceStep(step({ state: "rolling_back", newVmState: "decommissioned" }), context)).toMatchObject({ state: "rolled_back" })
    // A removal that failed leaves a VM too many, and says what to do about it.
    expect(advanceStep(step({ state: "decommissioning", oldVmState: "ready", oldVmReason: "POD_FAILED" }), context)).toEqual({
      _tag: "Move",
      state: "failed",
      reason: "decommissioning old failed: POD_FAILED; new serves and old is still ready: decommission it by hand (fleet vms decommission old-id)"
    })
    expect(advanceStep(step({ state: "rolling_back", newVmState: "ready", newVmReason: "POD_CREATION_FAILED" }), context)).toEqual({
      _tag: "Move",
      state: "failed",
      reason: "removing new failed: POD_CREATION_FAILED; old is kept and new is still ready: decommission it by hand (fleet vms decommission new-id)"
    })
  })

  it("takes a creating step whose swap started as decommissioning, even when rolling back", () => {
    const swapping = step({ newVmState: "ready", oldVmState: "decommissioning", swapStarted: true })
    for (const rollingBack of [false, true]) {
      expect(advanceStep(swapping, { ...context, rollingBack })).toEqual({ _tag: "Move", state: "decommissioning", reason: "decommissioning old, replaced by new" })
      expect(advanceStep({ ...swapping, oldVmState: "decommissioned" }, { ...context, rollingBack })).toMatchObject({ _tag: "Move", state: "done" })
      expect(advanceStep({ ...swapping, oldVmState: "ready", oldVmReason: "POD_FAILED" }, { ...context, rollingBack }))
        .toMatchObject({ _tag: "Move", state: "failed" })
    }
    // Not started (cancelled, or its old VM was no longer ready): the replacement is handled as before.
    expect(advanceStep(step({ newVmState: "ready" }), { ...context, rollingBack: true })._tag).toBe("RollBack")
  })

  it("takes a queued step whose creation started as creating, and on as far as its VMs went", () => {
    const queued = step({ state: "queued", newVmState: "pending" })
    expect(advanceStep(queued, context)._tag).toBe("Wait")
    // Started only by the step ahead finishing: the VM states of a waiting one do not move it.
    expect(advanceStep({ ...queued, newVmState: "ready" }, context)._tag).toBe("Wait")
    expect(advanceStep({ ...queued, createStarted: true, newVmState: "submitting" }, context))
      .toEqual({ _tag: "Move", state: "creating", reason: "creating new: the step ahead finished" })
    expect(advanceStep({ ...queued, createStarted: true, newVmState: "failed", newVmReason: "POD_FAILED" }, context)).toMatchObject({ state: "failed" })
    const swapped = { ...queued, createStarted: true, swapStarted: true, newVmState: "ready" as const, oldVmState: "decommissioned" as const }
    expect(advanceStep(swapped, context)).toMatchObject({ _tag: "Move", state: "done" })
  })

  it("counts a queued step in its fleet, not against maxInFlight", () => {
    const started: Array<SchedulingStep> = [
      { id: "a", index: 0, fleet: "f", fleetConcurrency: 2, state: "creating", baked: false },
      { id: "b", index: 1, fleet: "f", fleetConcurrency: 2, state: "queued", baked: false }
    ]
    const pending: Array<SchedulingStep> = [
      { id: "c", index: 2, fleet: "f", fleetConcurrency: 2, state: "pending", baked: false },
      { id: "d", index: 3, fleet: "g", fleetConcurrency: 2, state: "pending", baked: false }
    ]
    expect(decide({ started, pending, inProgress: new Set(["f"]) }, { maxInFlight: 2, maxFleetsInParallel: 2 }, true)).toEqual({
      decommission: [],
      start: ["d"]
    })
  })

  it("queues behind each step under way the next candidate the fleet limits allow, in step order, behind the steps to end first", () => {
    const started: Array<SchedulingStep> = [
      { id: "a", index: 0, fleet: "f", fleetConcurrency: 2, state: "creating", baked: false },
      { id: "b", index: 1, fleet: "f", fleetConcurrency: 2, state: "decommissioning", baked: false },
      { id: "c", index: 2, fleet: "g", fleetConcurrency: 1, state: "creating", baked: false }
    ]
    const candidates: Array<SchedulingStep> = [
      // Fleet f is full (2 of 2) and g too (1 of 1): only fleet h, new, may queue, and only one fleet more.
      { id: "d", index: 3, fleet: "f", fleetConcurrency: 2, state: "pending", baked: false },
      { id: "e", index: 4, fleet: "g", fleetConcurrency: 1, state: "pending", baked: false },
      { id: "h1", index: 5, fleet: "h", fleetConcurrency: 2, state: "pending", baked: false },
      { id: "h2", index: 6, fleet: "h", fleetConcurrency: 2, state: "pending", baked: false },
      { id: "k", index: 7, fleet: "k", fleetConcurrency: 2, state: "pending", baked: false }
    ]
    const [a, b, c] = started.map(({ id, index, state }) => ({ id, index, state }))
    const ahead = [c!, a!, b!]
    const input = { started, candidates, inProgress: new Set(["f", "g"]), waitingDecommissions: 0 }
    // b decommissions, its last execution: the first candidate goes behind it; then the creating steps in step order.
    expect(queueBehind(input, ahead, 3)).toEqual([
      { id: "h1", behind: b },
      { id: "h2", behind: a }
    ])
    // No more than there are steps ahead.
    expect(queueBehind(input, [c!], 3)).toEqual([{ id: "h1", behind: c }])
    // Baked steps waiting for slots to decommission their old VMs: as many steps ahead, those to end first, are left without, to free theirs.
    expect(queueBehind({ ...input, waitingDecommissions: 1 }, ahead, 3)).toEqual([{ id: "h1", behind: a }, { id: "h2", behind: c }])
    expect(queueBehind({ ...input, waitingDecommissions: 2 }, ahead, 3)).toEqual([{ id: "h1", behind: c }])
    expect(queueBehind({ ...input, waitingDecommissions: 5 }, ahead, 3)).toEqual([])
  })

  it("ends waves and runs, and stops at the failure budget", () => {
    const gates = ["none", "approval"] as const
    expect(progress([{ wave: 0, state: "creating", count: 1 }], 0, gates, 0, 0)._tag).toBe("Continue")
    expect(progress([{ wave: 0, state: "done", count: 2 }, { wave: 1, state: "pending", count: 1 }], 0, gates, 0, 0))
      .toEqual({ _tag: "NextWave", wave: 1, gate: "approval" })
    expect(progress([{ wave: 0, state: "done", count: 2 }, { wave: 1, state: "failed", count: 1 }], 1, gates, 1, 1))
      .toEqual({ _tag: "Finished", failed: 1 })
    expect(progress([{ wave: 0, state: "failed", count: 2 }], 0, gates, 2, 1)._tag).toBe("BudgetSpent")
    expect(progress([], 0, [], 0, 0)).toEqual({ _tag: "Finished", failed: 0 })
  })
})

describe("tallying a run's steps", () => {
  it("counts by wave and state, and finds the fleets with a step started and one unfinished", () => {
    const tally = tallySteps([
      { wave: 0, state: "done", fleet: "a", count: 3 },
      { wave: 0, state: "pending", fleet: "a", count: 2 },
      { wave: 0, state: "done", fleet: "b", count: 4 },
      { wave: 0, state: "pending", fleet: "c", count: 5 },
      { wave: 1, state: "creating", fleet: "d", count: 1 },
      { wave: 1, state: "failed", fleet: "e", count: 1 },
      { wave: 1, state: "pending", fleet: "e", count: 1 }
    ])
    expect(tally.counts).toEqual([
      { wave: 0, state: "done", count: 7 },
      { wave: 0, state: "pending", count: 7 },
      { wave: 1, state: "creating", count: 1 },
      { wave: 1, state: "failed", count: 1 },
      { wave: 1, state: "pending", count: 1 }
    ])
    // b has finished, c has not started; a, d and e are under way.
    expect([...tally.fleetsInProgress].sort()).toEqual(["a", "d", "e"])
  })
})
