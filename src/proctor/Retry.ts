import { Config, Duration, Effect, Schedule } from "effect"
import { dual } from "effect/Function"
import { durationSetting } from "../config/Settings.js"
import { isTransient } from "./Domain.js"

/** How often, and how patiently, to repeat a call that failed transiently. */
export interface RetryPolicy {
  /** Total attempts, the first one included (at least 1). */
  readonly attempts: number
  /** Delay before the second attempt; doubles after each failure. */
  readonly backoff: Duration.Duration
  /** No delay grows beyond this (jitter may add up to 20%). */
  readonly backoffMax: Duration.Duration
}

export const defaultRetryPolicy: RetryPolicy = {
  attempts: 5,
  backoff: Duration.millis(200),
  backoffMax: Duration.seconds(5)
}

export const RetryPolicy = {
  make: (options: {
    readonly attempts?: number
    readonly backoff?: Duration.DurationInput
    readonly backoffMax?: Duration.DurationInput
  } = {}): RetryPolicy => {
    const attempts = options.attempts ?? defaultRetryPolicy.attempts
    if (!Number.isInteger(attempts) || attempts < 1) throw new RangeError(`attempts must be a positive integer, got ${attempts}`)
    return {
      attempts,
      backoff: options.backoff === undefined ? defaultRetryPolicy.backoff : Duration.decode(options.backoff),
      backoffMax: options.backoffMax === undefined ? defaultRetryPolicy.backoffMax : Duration.decode(options.backoffMax)
    }
  },

  /** `FLEET_SUBMIT_ATTEMPTS`, `FLEET_SUBMIT_BACKOFF`, `FLEET_SUBMIT_BACKOFF_MAX`. */
  config: Config.all({
    attempts: Config.integer("FLEET_SUBMIT_ATTEMPTS").pipe(
      Config.validate({ message: "expected at least 1 attempt", validation: (attempts) => attempts >= 1 }),
      Config.withDefault(defaultRetryPolicy.attempts)
    ),
    backoff: durationSetting("FLEET_SUBMIT_BACKOFF").pipe(Config.withDefault(defaultRetryPolicy.backoff)),
    backoffMax: durationSetting("FLEET_SUBMIT_BACKOFF_MAX").pipe(Config.withDefault(defaultRetryPolicy.backoffMax))
  }) satisfies Config.Config<RetryPolicy>
}

/** Exponential backoff with jitter, each delay capped at `backoffMax`, `attempts - 1` repetitions. */
export const retrySchedule = (policy: RetryPolicy): Schedule.Schedule<unknown> =>
  Schedule.exponential(policy.backoff).pipe(
    Schedule.modifyDelay((delay) => Duration.min(delay, policy.backoffMax)),
    Schedule.jittered,
    Schedule.intersect(Schedule.recurs(Math.max(0, policy.attempts - 1)))
  )

/**
 * Runs the effect again on `ProctorTransientError` only; any other failure (permanent, not
 * found, the caller's own) ends it at once. The last transient error is the one returned.
 * The schedule is set up only once a call has failed: almost every call succeeds the first time,
 * and `Effect.retry` built its schedule's state for each. (The retried effect fails at once, with
 * the first failure, on its first run, so the schedule sees the attempts it always saw.)
 */
export const retryTransient: {
  (policy: RetryPolicy): <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  <A, E, R>(self: Effect.Effect<A, E, R>, policy: RetryPolicy): Effect.Effect<A, E, R>
} = dual(2, <A, E, R>(self: Effect.Effect<A, E, R>, policy: RetryPolicy): Effect.Effect<A, E, R> =>
  Effect.catchIf(self, (error: E) => isTransient(error), (first) => {
    let failedOnce = false
    const again = Effect.suspend((): Effect.Effect<A, E, R> => {
      if (failedOnce) return self
      failedOnce = true
      return Effect.fail(first)
    })
    return Effect.retry(again, { schedule: retrySchedule(policy), while: isTransient })
  }))
