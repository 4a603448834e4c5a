import { Duration, Effect, Queue } from "effect"

/**
 * A nudge for the reconciler: new work was written, look now rather than at the next tick.
 * Kicks coalesce (one pending kick at most); the database stays the source of truth.
 */
export class Wakeup extends Effect.Service<Wakeup>()("fleet/Wakeup", {
  effect: Effect.map(Queue.sliding<void>(1), (queue) => ({
    kick: Effect.asVoid(Queue.offer(queue, undefined)),
    /** Returns when kicked, or after `timeout` at the latest. */
    wait: (timeout: Duration.DurationInput) => Queue.take(queue).pipe(Effect.timeout(timeout), Effect.ignore)
  }))
}) {}
