import { type Duration, Effect, Option, Queue } from "effect"

/**
 * A nudge between loops in one process: "new work was written, look now rather than at the next
 * tick". Kicks coalesce (one pending kick at most); the database stays the source of truth, so a
 * lost kick only costs a tick.
 */
export interface Signal {
  readonly kick: Effect.Effect<void>
  /** Returns when kicked, or after `timeout` at the latest. */
  readonly wait: (timeout: Duration.DurationInput) => Effect.Effect<void>
  /** Takes a kick that came while nobody waited, without waiting: whether there was one. */
  readonly takePending: Effect.Effect<boolean>
}

export const makeSignal: Effect.Effect<Signal> = Effect.map(Queue.sliding<void>(1), (queue) => ({
  kick: Effect.asVoid(Queue.offer(queue, undefined)),
  wait: (timeout) => Queue.take(queue).pipe(Effect.timeout(timeout), Effect.ignore),
  takePending: Effect.map(Queue.poll(queue), Option.isSome)
}))
