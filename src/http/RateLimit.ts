import { Config, Effect } from "effect"

export const RateLimitConfig = Config.all({
  /** Requests per second each token may make, on average (0: no limit). */
  rate: Config.number("FLEET_RATE_LIMIT").pipe(
    Config.validate({ message: "expected 0 (no limit) or more requests per second", validation: (rate) => rate >= 0 }),
    Config.withDefault(50)
  ),
  /** How many requests a token may make at once after being idle. */
  burst: Config.number("FLEET_RATE_BURST").pipe(
    Config.validate({ message: "expected at least 1 request", validation: (burst) => burst >= 1 }),
    Config.withDefault(100)
  )
})

export type RateDecision =
  | { readonly _tag: "Allowed" }
  | { readonly _tag: "Limited"; readonly retryAfterSeconds: number }

const allowed: RateDecision = { _tag: "Allowed" }

interface Bucket {
  tokens: number
  at: number
}

/** A token bucket per key: `rate` tokens a second, at most `burst` saved up. Pure, for tests. */
export const makeBuckets = (rate: number, burst: number, now: () => number = Date.now) => {
  const buckets = new Map<string, Bucket>()
  const capacity = Math.max(1, burst)
  return (key: string): RateDecision => {
    if (rate <= 0) return allowed
    const time = now()
    const bucket = buckets.get(key) ?? { tokens: capacity, at: time }
    bucket.tokens = Math.min(capacity, bucket.tokens + ((time - bucket.at) / 1000) * rate)
    bucket.at = time
    buckets.set(key, bucket)
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1
      return allowed
    }
    return { _tag: "Limited", retryAfterSeconds: Math.max(1, Math.ceil((1 - bucket.tokens) / rate)) }
  }
}

/**
 * The per-token rate limit. It is kept in memory, per controller: with N controllers behind a
 * load balancer a token may make up to N times the rate.
 */
export class RateLimiter extends Effect.Service<RateLimiter>()("fleet/RateLimiter", {
  effect: Effect.map(RateLimitConfig, ({ burst, rate }) => ({ take: makeBuckets(rate, burst) }))
}) {}
