import { Duration, Effect } from "effect"

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
  /** `takePending`, for callers outside Effect (see `waitForAny`). */
  readonly takePendingNow: () => boolean
  /** Calls `wake` at the next kick, which it takes, unless called off with the function returned. */
  readonly onNextKick: (wake: () => void) => () => void
}

/**
 * A signal without fibers: a wait is a callback and a timer. (A queue taken under `Effect.timeout`
 * forked and interrupted a fiber on every wait, and the executor raced two of those: about a tenth
 * of the Effect operations a controller ran per VM.)
 */
class LocalSignal implements Signal {
  private pending = false
  // In arrival order: a kick wakes the first waiter only, as taking from a queue did.
  private readonly waiters = new Set<() => void>()

  readonly kick = Effect.sync(() => {
    const [first] = this.waiters
    if (first === undefined) {
      this.pending = true
      return
    }
    this.waiters.delete(first)
    first()
  })

  readonly takePending = Effect.sync(() => this.takePendingNow())

  wait(timeout: Duration.DurationInput): Effect.Effect<void> {
    return Effect.asVoid(waitForAny([this], timeout))
  }

  takePendingNow(): boolean {
    const was = this.pending
    this.pending = false
    return was
  }

  onNextKick(wake: () => void): () => void {
    this.waiters.add(wake)
    return () => {
      this.waiters.delete(wake)
    }
  }
}

export const makeSignal: Effect.Effect<Signal> = Effect.sync(() => new LocalSignal())

/**
 * Returns when one of `signals` is kicked (taking that one kick), or after `timeout` at the latest:
 * the signal kicked, or undefined when the time ran out.
 */
export const waitForAny = (signals: ReadonlyArray<Signal>, timeout: Duration.DurationInput): Effect.Effect<Signal | undefined> =>
  Effect.async<Signal | undefined>((resume) => {
    const pending = signals.find((signal) => signal.takePendingNow())
    if (pending !== undefined) {
      resume(Effect.succeed(pending))
      return
    }
    const callOffs: Array<() => void> = []
    const stop = () => {
      clearTimeout(timer)
      for (const callOff of callOffs) callOff()
    }
    const finish = (kicked: Signal | undefined) => {
      stop()
      resume(Effect.succeed(kicked))
    }
    // Node fires a timer of 2^31 ms or more at once: a longer wait is capped (it ends early, harmlessly).
    const timer = setTimeout(() => finish(undefined), Math.min(Duration.toMillis(Duration.decode(timeout)), 2 ** 31 - 1))
    for (const signal of signals) callOffs.push(signal.onNextKick(() => finish(signal)))
    return Effect.sync(stop)
  })
