import { describe, expect, it } from "@effect/vitest"
import { Deferred, Duration, Effect, Fiber } from "effect"
import { makeSignal, waitForAny } from "../../src/common/Signal.js"

describe("signals", () => {
  it.live("a kick wakes a waiter at once; kicks with nobody waiting coalesce into one pending kick", () =>
    Effect.gen(function* () {
      const signal = yield* makeSignal
      const waiting = yield* Effect.fork(Effect.timed(signal.wait("10 seconds")))
      yield* Effect.yieldNow()
      yield* signal.kick
      const [took] = yield* Fiber.join(waiting)
      expect(Duration.toMillis(took)).toBeLessThan(1000)

      yield* signal.kick
      yield* signal.kick
      expect(yield* signal.takePending).toBe(true)
      expect(yield* signal.takePending).toBe(false)
      // A pending kick is taken by the next wait, which returns at once.
      yield* signal.kick
      const [immediate] = yield* Effect.timed(signal.wait("10 seconds"))
      expect(Duration.toMillis(immediate)).toBeLessThan(1000)
    }))

  it.live("a wait ends after its timeout without a kick, and leaves nothing behind", () =>
    Effect.gen(function* () {
      const signal = yield* makeSignal
      const [took] = yield* Effect.timed(signal.wait("30 millis"))
      expect(Duration.toMillis(took)).toBeGreaterThanOrEqual(25)
      // The timed-out waiter is gone: the next kick is kept for the next wait, not lost on it.
      yield* signal.kick
      expect(yield* signal.takePending).toBe(true)
    }))

  it.live("a wait longer than a timer can hold (2^31 ms) does not end at once", () =>
    Effect.gen(function* () {
      const signal = yield* makeSignal
      const waiting = yield* Effect.fork(signal.wait("30 days"))
      yield* Effect.sleep("20 millis")
      expect(waiting.unsafePoll()).toBeNull()
      yield* signal.kick
      yield* Fiber.join(waiting)
    }))

  it.live("a kick wakes the first of several waiters only", () =>
    Effect.gen(function* () {
      const signal = yield* makeSignal
      const first = yield* Deferred.make<void>()
      const second = yield* Deferred.make<void>()
      yield* Effect.fork(Effect.zipRight(signal.wait("10 seconds"), Deferred.succeed(first, undefined)))
      yield* Effect.yieldNow()
      yield* Effect.fork(Effect.zipRight(signal.wait("10 seconds"), Deferred.succeed(second, undefined)))
      yield* Effect.yieldNow()
      yield* signal.kick
      yield* Deferred.await(first)
      expect(yield* Deferred.isDone(second)).toBe(false)
      yield* signal.kick
      yield* Deferred.await(second)
    }))

  it.live("waitForAny returns at a kick of either signal, says which, takes only that kick, and an interrupted wait is called off", () =>
    Effect.gen(function* () {
      const settled = yield* makeSignal
      const changed = yield* makeSignal
      const waiting = yield* Effect.fork(waitForAny([settled, changed], "10 seconds"))
      yield* Effect.yieldNow()
      yield* changed.kick
      expect(yield* Fiber.join(waiting)).toBe(changed)
      // The other signal's waiter went with the wait: its next kick is pending, not swallowed.
      yield* settled.kick
      expect(yield* settled.takePending).toBe(true)
      expect(yield* changed.takePending).toBe(false)

      const interrupted = yield* Effect.fork(waitForAny([settled, changed], "10 seconds"))
      yield* Effect.yieldNow()
      yield* Fiber.interrupt(interrupted)
      yield* settled.kick
      expect(yield* settled.takePending).toBe(true)

      // A kick that came before the wait is taken at once; no kick at all is a timeout.
      yield* settled.kick
      expect(yield* waitForAny([changed, settled], "10 seconds")).toBe(settled)
      expect(yield* waitForAny([settled, changed], "5 millis")).toBeUndefined()
    }))
})
