import { SqlClient } from "@effect/sql"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { randomUUID } from "node:crypto"
import { uuidv7 } from "../../src/common/Ids.js"
import { ExecutionRecordId } from "../../src/vms/Domain.js"
import type { WriteClaim } from "../../src/vms/Handoff.js"
import { VmRepo, type WaitingExecution } from "../../src/vms/Repo.js"
import { vmStateFor } from "../../src/vms/StateMachine.js"
import { onFreshDatabase, oneVmRequest, stateOf } from "./support.js"

const leaseMs = 60_000

/**
 * An old VM (ready) and its replacement, requested with the old VM's decommission waiting for it;
 * the replacement's creation claimed under `token`, as a controller that writes it holds it.
 */
const replacement = (suffix: string) =>
  Effect.gen(function* () {
    const repo = yield* VmRepo
    const sql = yield* SqlClient.SqlClient
    const old = oneVmRequest(`billing-stg-go-u2004-${suffix}`)
    yield* repo.insertRequests([old])
    yield* sql`update vms set state = 'ready' where id = ${old.vms[0]!.id}`
    yield* sql`update executions set state = 'succeeded', due_at = null where vm_id = ${old.vms[0]!.id}`
    const fresh = oneVmRequest(`billing-stg-go-u2404-${suffix}`)
    const swap: WaitingExecution = {
      id: ExecutionRecordId.make(uuidv7()),
      vmId: old.vms[0]!.id,
      kind: "decommission",
      proc: "decommission-vm",
      args: { VM_NAME: old.vms[0]!.name },
      emailId: "ann@example.com",
      afterVmId: fresh.vms[0]!.id,
      reason: `decommissioning ${old.vms[0]!.name}, replaced by ${fresh.vms[0]!.name}`,
      runId: randomUUID()
    }
    const token = randomUUID()
    const [creation] = yield* repo.insertRequests([{ ...fresh, waiting: [swap] }], null, { token, leaseMs, slots: 1 })
    /** Records the creation's end, as the reconciler does, with `claim` for the swaps it starts. */
    const created = (state: "succeeded" | "failed", claim?: WriteClaim) =>
      repo.recordOutcomes([{
        execution: creation!,
        token,
        update: { state, dueInMs: null, deadlineInMs: null, polls: 1, reason: `create ${state}` },
        vmState: vmStateFor("create", state)
      }], claim)
    return { oldVm: old.vms[0]!, newVm: fresh.vms[0]!, swap, created }
  })

describe("a replacement's swap, written waiting", () => {
  it.scoped("starts in the statement that records the replacement ready: the old VM decommissioning, the swap claimed or due", () =>
    onFreshDatabase(
      VmRepo.Default,
      Effect.gen(function* () {
        const repo = yield* VmRepo
        const sql = yield* SqlClient.SqlClient
        const a = yield* replacement("aaaaaa")
        const b = yield* replacement("bbbbbb")
        expect(yield* stateOf("executions", a.swap.id)).toBe("waiting")
        // Waiting, it is due to no one.
        expect(yield* repo.claimDue(randomUUID(), 10, leaseMs)).toEqual([])

        const claim = { token: randomUUID(), leaseMs, slots: 1 }
        const recordedA = yield* a.created("succeeded", claim)
        expect(recordedA.waitingStarted).toBe(1)
        expect(recordedA.waitingClaimed.map((execution) => ({ id: execution.id, vmName: execution.vmName, state: execution.state, kind: execution.kind })))
          .toEqual([{ id: a.swap.id, vmName: a.oldVm.name, state: "submitting", kind: "decommission" }])
        const [claimedRow] = yield* sql<{ state: string; claimedBy: string; submissions: number; dueInS: number }>`
          select state, claimed_by, submissions, round(extract(epoch from (due_at - now())))::int as due_in_s from executions where id = ${a.swap.id}`
        expect(claimedRow).toEqual({ state: "submitting", claimedBy: claim.token, submissions: 1, dueInS: 60 })
        expect(yield* stateOf("vms", a.newVm.id)).toBe("ready")
        expect(yield* stateOf("vms", a.oldVm.id)).toBe("decommissioning")
        const events = yield* sql<{ actor: string; runId: string; executionId: string; fromState: string; toState: string; reason: string }>`
          select actor, run_id, execution_id, from_state, to_state, reason from events where vm_id = ${a.oldVm.id} and to_state = 'decommissioning'`
        expect(events).toEqual([{
          actor: "ann@example.com",
          runId: a.swap.runId,
          executionId: a.swap.id,
          fromState: "ready",
          toState: "decommissioning",
          reason: a.swap.reason
        }])

        // Without a claim, the swap is due at once, to whichever controller claims it.
        const recordedB = yield* b.created("succeeded")
        expect(recordedB).toMatchObject({ waitingStarted: 1, waitingClaimed: [] })
        const due = yield* repo.claimDue(randomUUID(), 10, leaseMs)
        expect(due.map((execution) => ({ id: execution.id, previousState: execution.previousState }))).toEqual([{ id: b.swap.id, previousState: "pending" }])
        expect(yield* stateOf("vms", b.oldVm.id)).toBe("decommissioning")
      })
    ))

  it.scoped("never starts when cancelled first, when its VM is no longer ready, or when the creation failed", () =>
    onFreshDatabase(
      VmRepo.Default,
      Effect.gen(function* () {
        const repo = yield* VmRepo
        const sql = yield* SqlClient.SqlClient
        const cancelled = yield* replacement("cccccc")
        const gone = yield* replacement("dddddd")
        const failed = yield* replacement("eeeeee")

        expect(yield* repo.cancelWaiting([cancelled.newVm.id], "the step keeps its old VM")).toBe(1)
        expect(yield* cancelled.created("succeeded", { token: randomUUID(), leaseMs, slots: 1 })).toMatchObject({ waitingStarted: 0, waitingClaimed: [] })
        expect(yield* stateOf("executions", cancelled.swap.id)).toBe("cancelled")
        expect(yield* stateOf("vms", cancelled.oldVm.id)).toBe("ready")

        yield* sql`update vms set state = 'decommissioned' where id = ${gone.oldVm.id}`
        expect((yield* gone.created("succeeded")).waitingStarted).toBe(0)
        expect(yield* stateOf("executions", gone.swap.id)).toBe("waiting")
        expect(yield* stateOf("vms", gone.oldVm.id)).toBe("decommissioned")

        expect((yield* failed.created("failed")).waitingStarted).toBe(0)
        expect(yield* stateOf("vms", failed.newVm.id)).toBe("failed")
        expect(yield* stateOf("executions", failed.swap.id)).toBe("waiting")
        expect(yield* stateOf("vms", failed.oldVm.id)).toBe("ready")
        expect(yield* repo.claimDue(randomUUID(), 10, leaseMs)).toEqual([])
      })
    ))

  it.scoped("is not cancelled once started", () =>
    onFreshDatabase(
      VmRepo.Default,
      Effect.gen(function* () {
        const repo = yield* VmRepo
        const started = yield* replacement("ffffff")
        yield* started.created("succeeded")
        expect(yield* repo.cancelWaiting([started.newVm.id], "the step keeps its old VM")).toBe(0)
        expect(yield* stateOf("executions", started.swap.id)).toBe("pending")
        expect(yield* stateOf("vms", started.oldVm.id)).toBe("decommissioning")
      })
    ))
})
