import { SqlClient } from "@effect/sql"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { randomUUID } from "node:crypto"
import { uuidv7 } from "../../src/common/Ids.js"
import { ExecutionRecordId } from "../../src/vms/Domain.js"
import type { WriteClaim } from "../../src/vms/Handoff.js"
import { type ClaimedExecution, VmRepo, type WaitingExecution } from "../../src/vms/Repo.js"
import { vmStateFor } from "../../src/vms/StateMachine.js"
import { onFreshDatabase, oneVmRequest, stateOf } from "./support.js"

const leaseMs = 60_000

/** Records a decommission's end, as the reconciler holding it under `token` does, with `claim` for what it starts. */
const recordDecommission = (execution: ClaimedExecution, token: string, state: "succeeded" | "failed", claim?: WriteClaim) =>
  Effect.flatMap(VmRepo, (repo) =>
    repo.recordOutcomes([{
      execution,
      token,
      update: { state, dueInMs: null, deadlineInMs: null, polls: 1, reason: `decommission ${state}` },
      vmState: vmStateFor("decommission", state)
    }], claim))

/**
 * The old VM of a step under way (its decommission claimed under `token`, as a controller
 * following it holds it) and the replacement of a step queued behind it: requested with its
 * creation waiting for that old VM to be decommissioned, and its own swap waiting for it.
 */
const queuedBehind = (suffix: string) =>
  Effect.gen(function* () {
    const repo = yield* VmRepo
    const sql = yield* SqlClient.SqlClient
    const ahead = oneVmRequest(`billing-stg-go-u2004-${suffix}`)
    yield* repo.insertRequests([ahead])
    const aheadVm = ahead.vms[0]!
    yield* sql`update vms set state = 'ready' where id = ${aheadVm.id}`
    yield* sql`update executions set state = 'succeeded', due_at = null where vm_id = ${aheadVm.id}`
    const token = randomUUID()
    const decommission = {
      id: ExecutionRecordId.make(uuidv7()),
      vmId: aheadVm.id,
      kind: "decommission" as const,
      proc: "decommission-vm",
      args: { VM_NAME: aheadVm.name },
      emailId: "ann@example.com"
    }
    const { claimed } = yield* repo.startExecutions(
      [{ execution: decommission, change: { vmId: aheadVm.id, from: ["ready"], to: "decommissioning", reason: "swapped out", actor: "ann@example.com" } }],
      { token, leaseMs, slots: 1 }
    )
    const fresh = oneVmRequest(`billing-stg-go-u2404-${suffix}`)
    const newVm = fresh.vms[0]!
    const create: WaitingExecution = {
      ...fresh.executions[0]!,
      kind: "create",
      afterExecutionId: claimed[0]!.id,
      reason: `creating ${newVm.name}: ${aheadVm.name} was decommissioned`,
      runId: randomUUID()
    }
    // The queued step's own old VM, which its swap decommissions.
    const own = oneVmRequest(`billing-stg-go-u2004-own${suffix}`)
    yield* repo.insertRequests([own])
    yield* sql`update vms set state = 'ready' where id = ${own.vms[0]!.id}`
    yield* sql`update executions set state = 'succeeded', due_at = null where vm_id = ${own.vms[0]!.id}`
    const swap: WaitingExecution = {
      id: ExecutionRecordId.make(uuidv7()),
      vmId: own.vms[0]!.id,
      kind: "decommission",
      proc: "decommission-vm",
      args: { VM_NAME: own.vms[0]!.name },
      emailId: "ann@example.com",
      afterVmId: newVm.id,
      reason: `decommissioning ${own.vms[0]!.name}, replaced by ${newVm.name}`,
      runId: create.runId
    }
    yield* repo.insertRequests([{ ...fresh, executions: [], waiting: [create, swap] }])
    const decommissioned = (state: "succeeded" | "failed", claim?: WriteClaim) => recordDecommission(claimed[0]!, token, state, claim)
    return { aheadVm, aheadDecommission: claimed[0]!, newVm, create, swap, decommissioned }
  })

describe("a queued step's creation, written waiting behind the step ahead", () => {
  it.scoped("starts in the statement that records the old VM ahead decommissioned: claimed (its VM submitting) or due", () =>
    onFreshDatabase(
      VmRepo.Default,
      Effect.gen(function* () {
        const repo = yield* VmRepo
        const sql = yield* SqlClient.SqlClient
        const a = yield* queuedBehind("aaaaaa")
        const b = yield* queuedBehind("bbbbbb")
        expect(yield* stateOf("executions", a.create.id)).toBe("waiting")
        expect(yield* stateOf("vms", a.newVm.id)).toBe("pending")
        // Waiting, it is due to no one.
        expect(yield* repo.claimDue(randomUUID(), 10, leaseMs)).toEqual([])

        const claim = { token: randomUUID(), leaseMs, slots: 1 }
        const recordedA = yield* a.decommissioned("succeeded", claim)
        expect(recordedA.waitingStarted).toBe(1)
        expect(recordedA.waitingClaimed.map((execution) => ({ id: execution.id, vmName: execution.vmName, state: execution.state, kind: execution.kind })))
          .toEqual([{ id: a.create.id, vmName: a.newVm.name, state: "submitting", kind: "create" }])
        const [claimedRow] = yield* sql<{ state: string; claimedBy: string; submissions: number; dueInS: number }>`
          select state, claimed_by, submissions, round(extract(epoch from (due_at - now())))::int as due_in_s from executions where id = ${a.create.id}`
        expect(claimedRow).toEqual({ state: "submitting", claimedBy: claim.token, submissions: 1, dueInS: 60 })
        expect(yield* stateOf("vms", a.aheadVm.id)).toBe("decommissioned")
        expect(yield* stateOf("vms", a.newVm.id)).toBe("submitting")
        const events = yield* sql<{ executionId: string; fromState: string; toState: string; reason: string }>`
          select execution_id, from_state, to_state, reason from events where vm_id = ${a.newVm.id} and to_state = 'submitting'`
        expect(events).toEqual([{ executionId: a.create.id, fromState: "pending", toState: "submitting", reason: "submitting to proctor (create-vm)" }])
        // Its own swap still waits, for the replacement to be ready.
        expect(yield* stateOf("executions", a.swap.id)).toBe("waiting")

        // Without a claim, the creation is due at once, to whichever controller claims it.
        const recordedB = yield* b.decommissioned("succeeded")
        expect(recordedB).toMatchObject({ waitingStarted: 1, waitingClaimed: [] })
        expect(yield* stateOf("vms", b.newVm.id)).toBe("pending")
        const due = yield* repo.claimDue(randomUUID(), 10, leaseMs)
        expect(due.map((execution) => ({ id: execution.id, previousState: execution.previousState }))).toEqual([{ id: b.create.id, previousState: "pending" }])
        expect(yield* stateOf("vms", b.newVm.id)).toBe("submitting")
      })
    ))

  it.scoped("never starts when held, when cancelled first, or when the decommission ahead failed; a held one starts when told", () =>
    onFreshDatabase(
      VmRepo.Default,
      Effect.gen(function* () {
        const repo = yield* VmRepo
        const sql = yield* SqlClient.SqlClient
        const held = yield* queuedBehind("cccccc")
        const cancelled = yield* queuedBehind("dddddd")
        const failedAhead = yield* queuedBehind("eeeeee")
        const claim = () => ({ token: randomUUID(), leaseMs, slots: 1 })

        expect(yield* repo.holdWaitingCreates([held.newVm.id])).toEqual([held.newVm.id])
        expect(yield* held.decommissioned("succeeded", claim())).toMatchObject({ waitingStarted: 0, waitingClaimed: [] })
        expect(yield* stateOf("executions", held.create.id)).toBe("waiting")
        expect(yield* stateOf("vms", held.newVm.id)).toBe("pending")

        const runId = randomUUID()
        expect(yield* repo.cancelWaitingCreates([cancelled.newVm.id], "not created: the run was cancelled", "ann@example.com", runId)).toEqual([cancelled.newVm.id])
        expect(yield* cancelled.decommissioned("succeeded", claim())).toMatchObject({ waitingStarted: 0, waitingClaimed: [] })
        expect(yield* stateOf("executions", cancelled.create.id)).toBe("cancelled")
        // Its swap goes with it; the VM, never created, is recorded failed, with why.
        expect(yield* stateOf("executions", cancelled.swap.id)).toBe("cancelled")
        const [vm] = yield* sql<{ state: string; reason: string }>`select state, reason from vms where id = ${cancelled.newVm.id}`
        expect(vm).toEqual({ state: "failed", reason: "not created: the run was cancelled" })
        const events = yield* sql<{ actor: string; runId: string; fromState: string; toState: string }>`
          select actor, run_id, from_state, to_state from events where vm_id = ${cancelled.newVm.id} and to_state = 'failed'`
        expect(events).toEqual([{ actor: "ann@example.com", runId, fromState: "pending", toState: "failed" }])

        expect((yield* failedAhead.decommissioned("failed", claim())).waitingStarted).toBe(0)
        expect(yield* stateOf("vms", failedAhead.aheadVm.id)).toBe("ready")
        expect(yield* stateOf("executions", failedAhead.create.id)).toBe("waiting")
        // Another decommission of that VM (an operator's) does not start it either: only the one it waits for does.
        const token = randomUUID()
        const other = { ...failedAhead.aheadDecommission, id: ExecutionRecordId.make(uuidv7()) }
        const { claimed: [otherClaimed] } = yield* repo.startExecutions(
          [{ execution: other, change: { vmId: failedAhead.aheadVm.id, from: ["ready"], to: "decommissioning", reason: "an operator's", actor: "bob@example.com" } }],
          { token, leaseMs, slots: 1 }
        )
        const byOperator = yield* recordDecommission(otherClaimed!, token, "succeeded")
        expect(byOperator.waitingStarted).toBe(0)
        expect(yield* stateOf("vms", failedAhead.aheadVm.id)).toBe("decommissioned")
        expect(yield* stateOf("executions", failedAhead.create.id)).toBe("waiting")
        expect(yield* repo.claimDue(randomUUID(), 10, leaseMs)).toEqual([])

        // Told to start: the held one and the one whose step ahead failed; the cancelled one stays so.
        const started = yield* repo.startWaitingCreates([held.newVm.id, cancelled.newVm.id, failedAhead.newVm.id])
        expect([...started].sort()).toEqual([held.newVm.id, failedAhead.newVm.id].sort())
        const due = yield* repo.claimDue(randomUUID(), 10, leaseMs)
        expect(due.map((execution) => execution.id).sort()).toEqual([held.create.id, failedAhead.create.id].sort())
        expect(yield* stateOf("executions", cancelled.create.id)).toBe("cancelled")
        // Held, it can be queued again behind another VM's decommission: that one starts it.
        const requeued = yield* queuedBehind("ffffff")
        const behindOther = yield* queuedBehind("gggggg")
        expect(yield* repo.holdWaitingCreates([requeued.newVm.id])).toEqual([requeued.newVm.id])
        expect(yield* repo.attachWaitingCreates([{ vmId: requeued.newVm.id, afterExecutionId: behindOther.aheadDecommission.id }])).toEqual([requeued.newVm.id])
        // Only a held one: one still waiting for its own step ahead is left alone.
        expect(yield* repo.attachWaitingCreates([{ vmId: behindOther.newVm.id, afterExecutionId: requeued.aheadDecommission.id }])).toEqual([])
        expect((yield* requeued.decommissioned("succeeded")).waitingStarted).toBe(0)
        expect((yield* behindOther.decommissioned("succeeded")).waitingStarted).toBe(2)
        expect(yield* stateOf("executions", requeued.create.id)).toBe("pending")

        // Once started, it can no longer be cancelled.
        expect(yield* repo.cancelWaitingCreates([held.newVm.id], "too late", "ann@example.com", runId)).toEqual([])
        expect(yield* stateOf("vms", held.newVm.id)).toBe("submitting")
      })
    ))
})
