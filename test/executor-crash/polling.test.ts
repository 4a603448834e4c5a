import { describe, expect, it } from "@effect/vitest"
import { afterPoll, afterSubmit, type FollowPolicy, learnedPollDelayMs, minFollowUpMs, pollDelayMs, TypicalDurations } from "../../src/vms/Following.js"

/**
 * Polling by a proc's typical run time (what makes each handoff of a run fast, see
 * bench/recycle.ts): the first poll when a typical execution has ended, quick follow-ups after,
 * never a longer wait than pollMaxMs; and the configured backoff until a few executions have been
 * seen to finish.
 */

const policy: FollowPolicy = { pollInitialMs: 1000, pollMaxMs: 30_000, deadlineMs: 1_800_000, maxSubmissions: 10, resubmitDelayMs: 30_000 }
const execution = { proctorId: "7166810340089565185", submissions: 1, polls: 0, deadlineAt: new Date(Date.now() + 60_000) }

describe("polling by typical run time", () => {
  it("learns a proc's typical run time from a few finished executions: their median", () => {
    const typical = new TypicalDurations(5, 3)
    typical.record("create-vm-java", "create", 200)
    typical.record("create-vm-java", "create", 210)
    expect(typical.typicalMs("create-vm-java", "create")).toBeUndefined()
    typical.record("create-vm-java", "create", 4000)
    expect(typical.typicalMs("create-vm-java", "create")).toBe(210)
    expect(typical.typicalMs("decommission-vm", "decommission")).toBeUndefined()
    // Only the last `window` count: the proc got slower.
    for (const ms of [900, 950, 1000, 1100]) typical.record("create-vm-java", "create", ms)
    expect(typical.typicalMs("create-vm-java", "create")).toBe(1000)
    typical.record("create-vm-java", "create", Number.NaN)
    typical.record("create-vm-java", "create", -5)
    expect(typical.typicalMs("create-vm-java", "create")).toBe(1000)
  })

  it("lets the procs of a kind stand in for one not yet seen finishing a few times", () => {
    const typical = new TypicalDurations(5, 3)
    for (const ms of [200, 220, 240]) typical.record("create-vm-java", "create", ms)
    // A new stack's create proc: the other creates' median until it has three of its own.
    expect(typical.typicalMs("create-vm-go", "create")).toBe(220)
    expect(typical.typicalMs("decommission-vm", "decommission")).toBeUndefined()
    for (const ms of [900, 1000]) typical.record("create-vm-go", "create", ms)
    expect(typical.typicalMs("create-vm-go", "create")).toBe(240)
    typical.record("create-vm-go", "create", 950)
    expect(typical.typicalMs("create-vm-go", "create")).toBe(950)
  })

  it("polls first when a typical execution has ended, then at a tenth of it, doubling, never past pollMaxMs", () => {
    expect(learnedPollDelayMs(0, 200, policy, 0)).toBe(200)
    expect(learnedPollDelayMs(0, 200, policy, 1)).toBe(204)
    expect(learnedPollDelayMs(1, 200, policy, 0.5)).toBe(20)
    expect(learnedPollDelayMs(2, 200, policy, 0.5)).toBe(40)
    expect(learnedPollDelayMs(1, 20, policy, 0.5)).toBe(minFollowUpMs)
    // A four-minute proc: the first look after pollMaxMs at the latest, so an early failure is seen as soon as before.
    expect(learnedPollDelayMs(0, 240_000, policy, 0.5)).toBe(30_000)
    expect(learnedPollDelayMs(1, 240_000, policy, 0.5)).toBe(24_000)
    expect(learnedPollDelayMs(3, 240_000, policy, 0.5)).toBe(30_000)
  })

  it("is used by the decisions after a submission and a poll when known, the configured backoff otherwise", () => {
    const accepted = { _tag: "Accepted", proctorId: "7166810340089565185", status: "CREATED" } as const
    expect(afterSubmit(accepted, execution, policy, 0.5).dueInMs).toBe(pollDelayMs(0, policy, 0.5))
    expect(afterSubmit(accepted, execution, policy, 0, 180).dueInMs).toBe(180)
    const running = { _tag: "Status", status: "POD_READY", phase: "in_progress" } as const
    expect(afterPoll(running, execution, new Date(), policy, 0.5).dueInMs).toBe(pollDelayMs(1, policy, 0.5))
    expect(afterPoll(running, execution, new Date(), policy, 0.5, 180).dueInMs).toBe(18)
    const done = { _tag: "Status", status: "FINISHED", phase: "succeeded", ranMs: 180 } as const
    expect(afterPoll(done, execution, new Date(), policy, 0.5, 180)).toMatchObject({ state: "succeeded", dueInMs: null })
  })
})
