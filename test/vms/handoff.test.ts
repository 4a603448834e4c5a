import { SqlClient } from "@effect/sql"
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Layer } from "effect"
import { randomUUID } from "node:crypto"
import { uuidv7 } from "../../src/common/Ids.js"
import { ExecutionRecordId, VmId } from "../../src/vms/Domain.js"
import { type Adopter, Handoff, type Handoffs } from "../../src/vms/Handoff.js"
import { type ClaimedExecution, type NewRequest, VmRepo } from "../../src/vms/Repo.js"
import { Wakeup } from "../../src/vms/Wakeup.js"
import { onFreshDatabase, oneVmRequest } from "./support.js"

const leaseMs = 60_000

/** What a claim leaves of an execution and its VM, without what differs from one VM to another. */
const comparable = (execution: ClaimedExecution) => {
  const { args: _args, claimedAt: _claimedAt, createdAt: _createdAt, dueAt, id: _id, requestId: _requestId, vmId: _vmId, vmName: _vmName, wasDueAt: _wasDueAt, ...rest } = execution
  return { ...rest, dueInMs: Math.round((dueAt!.getTime() - execution.claimedAt.getTime()) / 10_000) * 10_000 }
}

const rowsOf = (vmId: VmId) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const [execution] = yield* sql<{ state: string; submissions: number; claimedBy: string | null; dueInS: number }>`
      select state, submissions, claimed_by, round(extract(epoch from (due_at - now())))::int as due_in_s from executions where vm_id = ${vmId} order by created_at desc limit 1`
    const [vm] = yield* sql<{ state: string }>`select state from vms where id = ${vmId}`
    const events = yield* sql<{ fromState: string | null; toState: string; reason: string; withExecution: boolean }>`
      select from_state, to_state, reason, execution_id is not null as with_execution from events where vm_id = ${vmId} order by id`
    return { execution, vm, events }
  })

/** Events with the VM names taken out of their reasons. */
const withoutNames = (events: ReadonlyArray<{ readonly reason: string }>) =>
  events.map((event) => ({ ...event, reason: event.reason.replace(/billing-stg-go-u2404-[a-z]+/g, "<name>") }))

describe("executions claimed as they are written", () => {
  it.scoped("are left as claimDue leaves them: submitting, claimed under the lease, their VM submitting with its event", () =>
    onFreshDatabase(
      VmRepo.Default,
      Effect.gen(function* () {
        const repo = yield* VmRepo
        const due = oneVmRequest("billing-stg-go-u2404-aaaaaa")
        yield* repo.insertRequests([due])
        const [byClaim] = yield* repo.claimDue(randomUUID(), 10, leaseMs)
        const token = randomUUID()
        const atWrite = oneVmRequest("billing-stg-go-u2404-bbbbbb")
        const claimed = yield* repo.insertRequests([atWrite], null, { token, leaseMs, slots: 1 })

        expect(claimed).toHaveLength(1)
        expect(comparable(claimed[0]!)).toEqual(comparable(byClaim!))
        expect(claimed[0]!.vmName).toBe("billing-stg-go-u2404-bbbbbb")
        const a = yield* rowsOf(due.vms[0]!.id)
        const b = yield* rowsOf(atWrite.vms[0]!.id)
        expect({ ...b.execution, claimedBy: "token" }).toEqual({ ...a.execution, claimedBy: "token" })
        expect(b.execution!.claimedBy).toBe(token)
        expect(b.execution!.dueInS).toBeGreaterThan(50)
        expect(b.vm).toEqual({ state: "submitting" })
        expect(b.vm).toEqual(a.vm)
        expect(withoutNames(b.events)).toEqual(withoutNames(a.events))
        // Not due to anyone else.
        expect(yield* repo.claimDue(randomUUID(), 10, leaseMs)).toEqual([])
      })
    ))

  it.scoped("are the first `slots` of them; the others are written due", () =>
    onFreshDatabase(
      VmRepo.Default,
      Effect.gen(function* () {
        const repo = yield* VmRepo
        const batch = [oneVmRequest("billing-stg-go-u2404-cccccc"), oneVmRequest("billing-stg-go-u2404-dddddd")]
        const claimed = yield* repo.insertRequests(batch, null, { token: randomUUID(), leaseMs, slots: 1 })
        expect(claimed.map((execution) => execution.vmName)).toEqual(["billing-stg-go-u2404-cccccc"])
        const due = yield* repo.claimDue(randomUUID(), 10, leaseMs)
        expect(due.map((execution) => execution.vmName)).toEqual(["billing-stg-go-u2404-dddddd"])
      })
    ))

  it.scoped("include a decommission started claimed, as claimDue would have left it", () =>
    onFreshDatabase(
      VmRepo.Default,
      Effect.gen(function* () {
        const repo = yield* VmRepo
        const sql = yield* SqlClient.SqlClient
        const requests = [oneVmRequest("billing-stg-go-u2404-eeeeee"), oneVmRequest("billing-stg-go-u2404-ffffff")]
        yield* repo.insertRequests(requests)
        yield* sql`update vms set state = 'ready'`
        yield* sql`update executions set state = 'succeeded', due_at = null`
        const decommission = (request: NewRequest) => ({
          execution: { ...request.executions[0]!, id: ExecutionRecordId.make(uuidv7()), kind: "decommission" as const, proc: "decommission-vm" },
          change: { vmId: request.vms[0]!.id, from: ["ready" as const], to: "decommissioning" as const, reason: "decommission requested", actor: "ann@example.com" }
        })
        const due = yield* repo.startExecutions([decommission(requests[0]!)])
        expect(due.claimed).toEqual([])
        const [byClaim] = yield* repo.claimDue(randomUUID(), 10, leaseMs)
        const atWrite = yield* repo.startExecutions([decommission(requests[1]!)], { token: randomUUID(), leaseMs, slots: 1 })
        expect(atWrite.started).toHaveLength(1)
        expect(atWrite.claimed.map(comparable)).toEqual([comparable(byClaim!)])
        const a = yield* rowsOf(requests[0]!.vms[0]!.id)
        const b = yield* rowsOf(requests[1]!.vms[0]!.id)
        expect({ ...b.execution, claimedBy: "token" }).toEqual({ ...a.execution, claimedBy: "token" })
        expect(b.execution!.claimedBy).not.toBeNull()
        expect(b.vm).toEqual({ state: "decommissioning" })
        expect(withoutNames(b.events)).toEqual(withoutNames(a.events))
        // A VM no longer ready gets nothing, claimed or not.
        const again = yield* repo.startExecutions([decommission(requests[1]!)], { token: randomUUID(), leaseMs, slots: 1 })
        expect(again).toEqual({ started: [], claimed: [] })
      })
    ))
})

/** An adopter that records what it is given, with `capacity` slots. */
const recordingAdopter = (capacity: number) => {
  const state = { inUse: 0, adopted: [] as Array<ClaimedExecution> }
  const adopter: Adopter = {
    leaseMs,
    reserve: (wanted) =>
      Effect.sync(() => {
        const slots = Math.min(wanted, capacity - state.inUse)
        state.inUse += slots
        return slots
      }),
    release: (slots) => Effect.sync(() => void (state.inUse -= slots)),
    adopt: (_token, executions) => Effect.sync(() => void state.adopted.push(...executions))
  }
  return { adopter, state }
}

const fakeExecution = { id: "x" } as unknown as ClaimedExecution

/** A write of `total` executions that claims what it can and says so, then succeeds or fails. */
const writeOf = (total: number, outcome: "commit" | "fail") => (handoffs: Handoffs) =>
  Effect.gen(function* () {
    const claim = yield* handoffs.claim(total)
    yield* handoffs.wrote(total, Array.from({ length: claim?.slots ?? 0 }, () => fakeExecution))
    return outcome === "commit" ? yield* Effect.succeed(claim?.slots ?? 0) : yield* Effect.fail("rolled back" as const)
  })

const handoffLayer = Handoff.DefaultWithoutDependencies.pipe(Layer.provideMerge(Wakeup.Default))

describe("a handoff", () => {
  it.effect("starts what a committed write claimed, gives back what it reserved and did not use, and kicks for the rest", () =>
    Effect.gen(function* () {
      const handoff = yield* Handoff
      const wakeup = yield* Wakeup
      const { adopter, state } = recordingAdopter(3)
      yield* handoff.offering(adopter, Effect.gen(function* () {
        expect(yield* handoff.writing(writeOf(2, "commit"))).toBe(2)
        expect(state).toEqual({ inUse: 2, adopted: [fakeExecution, fakeExecution] })
        expect(yield* wakeup.takePending).toBe(false)
        // One slot left: one claimed, four written due, and the reconciler loop kicked for them.
        expect(yield* handoff.writing(writeOf(5, "commit"))).toBe(1)
        expect(state.inUse).toBe(3)
        expect(state.adopted).toHaveLength(3)
        expect(yield* wakeup.takePending).toBe(true)
      }))
    }).pipe(Effect.provide(handoffLayer)))

  it.scoped("in a transaction, starts what was claimed once it has committed, and when it rolls back, nothing: every slot is given back, nobody kicked", () =>
    onFreshDatabase(
      handoffLayer,
      Effect.gen(function* () {
        const handoff = yield* Handoff
        const wakeup = yield* Wakeup
        const sql = yield* SqlClient.SqlClient
        // One of two claimed, the other written due.
        const { adopter, state } = recordingAdopter(1)
        yield* handoff.offering(adopter, Effect.gen(function* () {
          const adoptedBeforeCommit = yield* handoff.writingInTransaction(
            (handoffs) => Effect.zipRight(writeOf(2, "commit")(handoffs), Effect.sync(() => state.adopted.length)),
            sql.withTransaction
          )
          expect(adoptedBeforeCommit).toBe(0)
          expect(state).toEqual({ inUse: 1, adopted: [fakeExecution] })
          expect(yield* wakeup.takePending).toBe(true)
          yield* adopter.release(1)

          expect(yield* Effect.exit(handoff.writingInTransaction(writeOf(2, "fail"), sql.withTransaction))).toEqual(Exit.fail("rolled back"))
          expect(state).toEqual({ inUse: 0, adopted: [fakeExecution] })
          expect(yield* wakeup.takePending).toBe(false)
        }))
      })
    ))

  it.scoped("interrupted inside a transaction before its commit, starts nothing; interrupted elsewhere, finishes the write and starts what it claimed", () =>
    onFreshDatabase(
      handoffLayer,
      Effect.gen(function* () {
        const handoff = yield* Handoff
        const sql = yield* SqlClient.SqlClient
        const { adopter, state } = recordingAdopter(4)
        /** Claims two, and says it wrote them claimed before or after waiting at `gate` (a statement in flight). */
        const stalled = (reached: Deferred.Deferred<void>, gate: Effect.Effect<void>, wrote: "before" | "after") => (handoffs: Handoffs) =>
          Effect.gen(function* () {
            const claim = yield* handoffs.claim(2)
            const written = handoffs.wrote(2, Array.from({ length: claim?.slots ?? 0 }, () => fakeExecution))
            if (wrote === "before") yield* written
            yield* Deferred.succeed(reached, undefined)
            yield* gate
            if (wrote === "after") yield* written
          })
        yield* handoff.offering(adopter, Effect.gen(function* () {
          const inTransaction = yield* Deferred.make<void>()
          const rolledBack = yield* Effect.fork(handoff.writingInTransaction(stalled(inTransaction, Effect.never, "before"), sql.withTransaction))
          yield* Deferred.await(inTransaction)
          expect(Exit.isInterrupted(yield* Fiber.interrupt(rolledBack))).toBe(true)
          expect(state).toEqual({ inUse: 0, adopted: [] })

          const reached = yield* Deferred.make<void>()
          const gate = yield* Deferred.make<void>()
          const committed = yield* Effect.fork(handoff.writing(stalled(reached, Deferred.await(gate), "after")))
          yield* Deferred.await(reached)
          const interrupting = yield* Effect.fork(Fiber.interrupt(committed))
          yield* Deferred.succeed(gate, undefined)
          yield* Fiber.join(interrupting)
          expect(state).toEqual({ inUse: 2, adopted: [fakeExecution, fakeExecution] })
        }))
      })
    ))

  it.effect("claims nothing without a reconciler offering itself, or once it has stopped: the write is due and kicks", () =>
    Effect.gen(function* () {
      const handoff = yield* Handoff
      const wakeup = yield* Wakeup
      expect(yield* handoff.writing(writeOf(2, "commit"))).toBe(0)
      expect(yield* wakeup.takePending).toBe(true)
      const { adopter, state } = recordingAdopter(3)
      yield* handoff.offering(adopter, Effect.void)
      expect(yield* handoff.writing(writeOf(2, "commit"))).toBe(0)
      expect(state).toEqual({ inUse: 0, adopted: [] })
    }).pipe(Effect.provide(handoffLayer)))

  it.scoped("claims nothing for a write inside a caller's transaction, whose commit it cannot see", () =>
    onFreshDatabase(
      handoffLayer,
      Effect.gen(function* () {
        const handoff = yield* Handoff
        const sql = yield* SqlClient.SqlClient
        const { adopter, state } = recordingAdopter(3)
        yield* handoff.offering(adopter, Effect.gen(function* () {
          expect(yield* sql.withTransaction(handoff.writing(writeOf(2, "commit")))).toBe(0)
          expect(yield* handoff.writing(writeOf(2, "commit"))).toBe(2)
        }))
        expect(state.adopted).toHaveLength(2)
      })
    ))
})
