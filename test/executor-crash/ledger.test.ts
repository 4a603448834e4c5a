import { describe, expect, it } from "@effect/vitest"
import type { ExecutionRecord, SimulatorLedger, VmRecord } from "../../src/proctor/SimulatorModel.js"
import { peakOverlap } from "../support/Intervals.js"
import { checkLedger, type StepRecord } from "./support.js"

/**
 * The invariant checker the process-level tests rely on must itself catch what it claims to:
 * each case here breaks one invariant in a small hand-made ledger.
 */

let nextId = 1
const execution = (kind: ExecutionRecord["kind"], vmName: string, submittedAt: number, finishedAt: number | null, effect: ExecutionRecord["effect"]): ExecutionRecord => ({
  id: String(nextId++),
  proc: kind === "create" ? "create-vm-java" : kind === "destroy" ? "decommission-vm" : "check-vm-health",
  kind,
  vmName,
  emailId: "runner@example.com",
  submittedAt,
  finishedAt,
  status: finishedAt === null ? "CREATED" : "FINISHED",
  stuck: finishedAt === null,
  responseLost: false,
  effect
})

const vm = (name: string, createdAt: number, destroyedAt: number | null = null): VmRecord => ({
  name,
  proc: "create-vm-java",
  createdAt,
  createdBy: "1",
  destroyedAt,
  destroyedBy: destroyedAt === null ? null : "2",
  createSubmissions: 1
})

const step = (index: number, oldVmName: string, newVmName: string, fleet = "app/staging/java", fleetConcurrency = 1): StepRecord => ({
  index,
  fleet,
  fleetConcurrency,
  oldVmName,
  newVmName,
  state: "done",
  reason: null
})

interface Ledger extends SimulatorLedger {
  vms: Array<VmRecord>
  executions: Array<ExecutionRecord>
}

/** Two steps of one fleet, one after the other, each create (100) → destroy (50); old VMs created at 0. */
const cleanRun = (): { ledger: Ledger; steps: Array<StepRecord> } => ({
  steps: [step(0, "old-a", "new-a"), step(1, "old-b", "new-b")],
  ledger: {
    now: 1000,
    vms: [vm("old-a", 0, 260), vm("old-b", 0, 520), vm("new-a", 200), vm("new-b", 460)],
    executions: [
      execution("create", "new-a", 100, 200, "created"),
      execution("destroy", "old-a", 210, 260, "destroyed"),
      execution("create", "new-b", 360, 460, "created"),
      execution("destroy", "old-b", 470, 520, "destroyed")
    ]
  }
})

const check = (input: { ledger: SimulatorLedger; steps: ReadonlyArray<StepRecord> }, limits = { maxInFlight: 1, maxFleetsInParallel: 1 }, untouched: ReadonlyArray<string> = []) =>
  checkLedger({ ...input, runStartedAt: 50, ...limits, untouched })

describe("the ledger checker", () => {
  it("passes a clean run, counting a resubmission after a lost answer as the same work", () => {
    const run = cleanRun()
    expect(check(run).violations).toEqual([])
    // new-a's create was submitted twice (the first answer lost); the second finds the VM and does nothing.
    run.ledger = { ...run.ledger, executions: [...run.ledger.executions, execution("create", "new-a", 150, 250, "none")] }
    run.ledger.executions[1] = { ...run.ledger.executions[1]!, submittedAt: 255, finishedAt: 260 }
    const report = check(run)
    expect(report.violations).toEqual([])
    expect(report.resubmitted).toBe(1)
    expect(report.peakInFlight).toBe(1)
  })

  it("catches an old VM decommissioned before its replacement existed", () => {
    const run = cleanRun()
    run.ledger.executions[1] = { ...run.ledger.executions[1]!, submittedAt: 150, finishedAt: 190 }
    expect(check(run).violations.join("\n")).toMatch(/step 0 .*decommission was submitted at 150, before its replacement was created at 200/)
  })

  it("catches a name created twice, a VM destroyed twice, and a replacement nobody asked for", () => {
    const run = cleanRun()
    run.ledger = {
      ...run.ledger,
      vms: [...run.ledger.vms, vm("new-a", 700), vm("stray", 800)],
      executions: [
        ...run.ledger.executions,
        execution("destroy", "old-a", 600, 650, "destroyed"),
        execution("create", "stray", 700, 800, "created")
      ]
    }
    const violations = check(run, { maxInFlight: 2, maxFleetsInParallel: 1 }).violations.join("\n")
    expect(violations).toMatch(/new-a was created 2 times/)
    expect(violations).toMatch(/old VM was destroyed 2 times/)
    expect(violations).toMatch(/stray was created during the run but is no step's replacement/)
  })

  it("catches maxInFlight, a fleet's concurrency and maxFleetsInParallel exceeded", () => {
    const run = cleanRun()
    // Step 1 starts while step 0 still runs: two executions, two steps of the fleet at once.
    run.ledger.executions[2] = { ...run.ledger.executions[2]!, submittedAt: 150, finishedAt: 460 }
    const violations = check(run).violations.join("\n")
    expect(violations).toMatch(/2 executions were in flight at once; maxInFlight is 1/)
    expect(violations).toMatch(/fleet app\/staging\/java had 2 steps under way at once; its concurrency is 1/)
    const twoFleets = { ...run, steps: [run.steps[0]!, { ...run.steps[1]!, fleet: "other/staging/java" }] }
    expect(check(twoFleets, { maxInFlight: 2, maxFleetsInParallel: 1 }).violations.join("\n")).toMatch(/2 fleets were under way at once/)
  })

  it("catches a skipped VM touched, and a step left undone", () => {
    const run = cleanRun()
    run.ledger = { ...run.ledger, vms: [...run.ledger.vms, vm("ruby-1", 0, 900)], executions: [...run.ledger.executions, execution("destroy", "ruby-1", 850, 900, "destroyed")] }
    expect(check(run, undefined, ["ruby-1"]).violations.join("\n")).toMatch(/ruby-1, which the run skips, was touched/)
    const undone = cleanRun()
    undone.ledger = { ...undone.ledger, vms: undone.ledger.vms.map((record) => (record.name === "old-b" ? { ...record, destroyedAt: null } : record)) }
    expect(check(undone).violations.join("\n")).toMatch(/step 1 .*the old VM was not destroyed/)
  })

  it("counts overlaps at shared instants as one after the other", () => {
    expect(peakOverlap([{ from: 0, to: 10 }, { from: 10, to: 20 }])).toBe(1)
    expect(peakOverlap([{ from: 0, to: 11 }, { from: 10, to: 20 }, { from: 5, to: 12 }])).toBe(3)
  })
})
