import { SqlClient } from "@effect/sql"
import { Effect, Exit, Option } from "effect"
import { randomUUID } from "node:crypto"
import type { ClaimedExecution } from "./Repo.js"
import { Wakeup } from "./Wakeup.js"

/**
 * A claim taken where executions are written: the statement that writes them claims them for the
 * reconciler of this process (as `claimDue` would, under `token` with a lease), so that it can
 * start on them the moment the write has committed — no wake-up, no claim round trip.
 */
export interface WriteClaim {
  readonly token: string
  readonly leaseMs: number
  /** How many of the executions being written to claim (the first ones); the rest are written due. */
  readonly slots: number
}

/** What a running reconciler offers the writers of its process. */
export interface Adopter {
  readonly leaseMs: number
  /** Takes up to `wanted` of its free slots, and says how many it took. */
  readonly reserve: (wanted: number) => Effect.Effect<number>
  /** Gives back slots reserved and not used. */
  readonly release: (slots: number) => Effect.Effect<void>
  /** Starts following executions written claimed for it, each in a slot reserved for it. */
  readonly adopt: (token: string, executions: ReadonlyArray<ClaimedExecution>) => Effect.Effect<void>
}

/** One write's side of a handoff: the claim it may take, and what it wrote under it. */
export interface Handoffs {
  /** A claim for up to `wanted` executions (none when no reconciler can take them: write them due). */
  readonly claim: (wanted: number) => Effect.Effect<WriteClaim | undefined>
  /** Tells what a statement wrote: how many executions, and those it wrote claimed. */
  readonly wrote: (executions: number, claimed: ReadonlyArray<ClaimedExecution>) => Effect.Effect<void>
}

/**
 * Hands executions written in this process to its own reconciler. Nothing depends on it: without a
 * running reconciler here (an API-only process, a write inside someone else's transaction, capacity
 * taken), executions are written due, the reconciler is kicked, and whichever controller claims
 * them first follows them, as always.
 */
export class Handoff extends Effect.Service<Handoff>()("fleet/Handoff", {
  effect: Effect.gen(function* () {
    const wakeup = yield* Wakeup
    let adopter: Adopter | undefined

    /**
     * Runs `write` with a claim to hand to this process's reconciler, inside `transaction` when
     * given. Whatever interrupts it, a claimed execution that was committed is started, and one
     * that was not is given its slot back:
     * - without a transaction, each statement commits on its own, so what a statement says it
     *   wrote claimed (`wrote`) is started at once; `write` is not interrupted, so that no claimed
     *   row is committed unbeknown to it;
     * - inside one, what was claimed is started once the transaction has committed; an
     *   interruption before the commit rolls it back, and one that comes during the commit waits
     *   for the start.
     * A kick tells the reconciler loop about executions written due.
     */
    const handingOff = <A, E, R, E2, R2>(
      write: (handoffs: Handoffs) => Effect.Effect<A, E, R>,
      transaction: ((self: Effect.Effect<A, E, R>) => Effect.Effect<A, E2, R2>) | undefined
    ): Effect.Effect<A, E | E2, R | R2> =>
      Effect.gen(function* () {
        // Inside a caller's transaction, the commit (and so the start) is not this write's to know.
        const current = Option.isSome(yield* Effect.serviceOption(SqlClient.TransactionConnection)) ? undefined : adopter
        const token = randomUUID()
        let reserved = 0
        let started = 0
        let due = 0
        const uncommitted: Array<ClaimedExecution> = []
        const start = (executions: ReadonlyArray<ClaimedExecution>) =>
          current === undefined || executions.length === 0
            ? Effect.void
            : Effect.suspend(() => {
              started += executions.length
              return current.adopt(token, executions)
            })
        const handoffs: Handoffs = {
          claim: (wanted) =>
            current === undefined || wanted <= 0
              ? Effect.succeed(undefined)
              : Effect.map(current.reserve(wanted), (slots) => {
                reserved += slots
                return slots === 0 ? undefined : { token, leaseMs: current.leaseMs, slots }
              }),
          wrote: (executions, claimed) =>
            Effect.suspend(() => {
              due += executions - claimed.length
              if (transaction === undefined) return start(claimed)
              uncommitted.push(...claimed)
              return Effect.void
            })
        }
        const settle = (exit: Exit.Exit<A, E | E2>) =>
          Effect.gen(function* () {
            const committed = transaction === undefined || Exit.isSuccess(exit)
            if (committed) yield* start(uncommitted)
            if (current !== undefined) yield* current.release(reserved - started)
            if (committed && due > 0) yield* wakeup.kick
          })
        return yield* transaction === undefined
          ? Effect.uninterruptible(Effect.onExit(write(handoffs), settle))
          : Effect.uninterruptibleMask((restore) => Effect.onExit(transaction(restore(write(handoffs))), settle))
      })

    return {
      /** Statements that each commit on their own, handing off what they claim (see handingOff). */
      writing: <A, E, R>(write: (handoffs: Handoffs) => Effect.Effect<A, E, R>) => handingOff<A, E, R, E, R>(write, undefined),
      /** Statements in one transaction (`transaction`), handing off what they claim once it has committed (see handingOff). */
      writingInTransaction: <A, E, R, E2, R2>(
        write: (handoffs: Handoffs) => Effect.Effect<A, E, R>,
        transaction: (self: Effect.Effect<A, E, R>) => Effect.Effect<A, E2, R2>
      ) => handingOff(write, transaction),
      /** The reconciler of this process offers itself while `effect` runs. */
      offering: <A, E, R>(offer: Adopter, effect: Effect.Effect<A, E, R>) =>
        Effect.acquireUseRelease(
          Effect.sync(() => {
            adopter = offer
          }),
          () => effect,
          () =>
            Effect.sync(() => {
              if (adopter === offer) adopter = undefined
            })
        )
    } as const
  }),
  dependencies: [Wakeup.Default]
}) {}
