import { describe, expect, it } from "@effect/vitest"
import {
  compareVersions,
  defaultKnobs,
  type ExecutionRecord,
  phaseAt,
  type SimProc,
  SimulatorModel,
  type SimulatorKnobs
} from "../../src/proctor/SimulatorModel.js"

const procs: ReadonlyArray<SimProc> = [
  { name: "create-vm", kind: "create" },
  { name: "destroy-vm", kind: "destroy" },
  { name: "check-vm", kind: "check" }
]

const model = (knobs: Partial<SimulatorKnobs> = {}) =>
  new SimulatorModel({ procs, knobs: { ...defaultKnobs, durationMs: { create: 1000, destroy: 500, check: 100 }, ...knobs } })

const submit = (sim: SimulatorModel, now: number, proc: string, vmName?: string) => {
  const result = sim.submit(now, { proc, args: vmName === undefined ? {} : { VM_NAME: vmName }, emailId: "t@example.com" })
  if (result._tag !== "Accepted") throw new Error(`expected the submission to be accepted, got ${result._tag}`)
  return result.execution.id
}

/** Executions in flight at instant t: submitted, and not yet finished (stuck ones never finish). */
const inFlightAt = (executions: ReadonlyArray<ExecutionRecord>, t: number) =>
  executions.filter((execution) => execution.submittedAt <= t && (execution.finishedAt === null || execution.finishedAt > t)).length

describe("simulator model", () => {
  it("moves through the states in thirds of the duration", () => {
    expect([0, 333, 334, 666, 667, 999, 1000, 5000].map((elapsed) => phaseAt(elapsed, 1000))).toEqual([
      "CREATED", "CREATED", "JOB_READY", "JOB_READY", "POD_READY", "POD_READY", "DONE", "DONE"
    ])
    expect(phaseAt(0, 0)).toBe("DONE")
  })

  it("applies effects in finish-time order, whenever the state is first read", () => {
    const sim = model()
    const create = submit(sim, 0, "create-vm", "vm-1") // finishes at 1000
    const early = submit(sim, 100, "destroy-vm", "vm-1") // finishes at 600: nothing to destroy yet
    const late = submit(sim, 1200, "destroy-vm", "vm-1") // finishes at 1700
    // Nothing read in between: the ledger still holds the simulated finish times.
    const ledger = sim.ledger(10_000)
    expect(ledger.vms).toEqual([
      { name: "vm-1", proc: "create-vm", createdAt: 1000, createdBy: create, destroyedAt: 1700, destroyedBy: late, createSubmissions: 1 }
    ])
    expect(ledger.executions.find((execution) => execution.id === early)).toMatchObject({ effect: "none", status: "FINISHED", finishedAt: 600 })
  })

  it("lets a test count executions in flight at any instant", () => {
    const sim = model()
    submit(sim, 0, "create-vm", "a")
    submit(sim, 200, "create-vm", "b")
    submit(sim, 900, "destroy-vm", "a")
    const { executions } = sim.ledger(5000)
    expect([0, 250, 950, 1100, 1300, 1500].map((t) => inFlightAt(executions, t))).toEqual([1, 2, 3, 2, 1, 0])
  })

  it("a check fails for a VM that does not exist, and succeeds once it does", () => {
    const sim = model()
    const early = submit(sim, 0, "check-vm", "vm-2")
    submit(sim, 0, "create-vm", "vm-2")
    const late = submit(sim, 1000, "check-vm", "vm-2")
    const noName = submit(sim, 1000, "create-vm")
    expect(sim.status(2000, early)?.status).toBe("POD_FAILED")
    expect(sim.status(2000, late)?.status).toBe("FINISHED")
    expect(sim.status(2000, noName)?.status).toBe("POD_FAILED")
  })

  it("a name destroyed and then created again is a second VM", () => {
    const sim = model()
    submit(sim, 0, "create-vm", "vm-3")
    submit(sim, 1000, "destroy-vm", "vm-3")
    submit(sim, 2000, "create-vm", "vm-3")
    const ledger = sim.ledger(4000)
    expect(ledger.vms.map((vm) => [vm.createdAt, vm.destroyedAt])).toEqual([[1000, 1500], [3000, null]])
  })

  it("the same seed makes the same decisions", () => {
    const run = (seed: number) => {
      const sim = model({ seed, failureRate: 0.3, stuckRate: 0.2, executionFailureRate: 0.2, lostResponseRate: 0.1 })
      const tags = Array.from({ length: 200 }, (_, index) => {
        const result = sim.submit(index, { proc: "create-vm", args: { VM_NAME: `vm-${index}` }, emailId: "" })
        return result._tag === "Accepted" && result.lost ? "Lost" : result._tag
      })
      const statuses = sim.ledger(1_000_000).executions.map((execution) => execution.status)
      return { tags, statuses }
    }
    expect(run(7)).toEqual(run(7))
    expect(run(7)).not.toEqual(run(8))
    const { tags, statuses } = run(7)
    expect(new Set(tags)).toEqual(new Set(["Accepted", "Failed", "Lost"]))
    expect(statuses).toContain("CREATED") // stuck
    expect(statuses).toContain("FINISHED")
    expect(statuses.some((status) => status.endsWith("FAILED"))).toBe(true)
  })

  it("an execution keeps the duration it was submitted with", () => {
    const sim = model()
    const id = submit(sim, 0, "create-vm", "vm-4")
    sim.configure({ durationMs: { create: 10 } })
    expect(sim.status(500, id)?.status).toBe("JOB_READY")
    expect(sim.knobs.durationMs).toEqual({ create: 10, destroy: 500, check: 100 })
  })

  it("compares client versions the way proctor does", () => {
    expect(compareVersions("1.2.10", "1.2.9")).toBe(1)
    expect(compareVersions("v2.0", "2.0.0")).toBe(0)
    expect(compareVersions("0.9.9", "1.0.0")).toBe(-1)
    expect(compareVersions("banana", "1.0.0")).toBeUndefined()
  })
})
