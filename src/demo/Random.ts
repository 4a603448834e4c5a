/**
 * A small seeded pseudo-random generator (mulberry32) for demo data: the same seed always gives
 * the same inventory, on every machine. Not for anything that needs real randomness.
 */
import { mulberry32 } from "../common/Random.js"

export interface Random {
  /** A number in [0, 1). */
  readonly next: () => number
  /** A whole number in [min, max], both included. */
  readonly int: (min: number, max: number) => number
  readonly chance: (probability: number) => boolean
  readonly pick: <A>(items: ReadonlyArray<A>) => A
  /** One of the items, each as likely as its weight. */
  readonly weighted: <A>(entries: ReadonlyArray<readonly [A, number]>) => A
}

/** A 32-bit hash of a seed given as text (FNV-1a), so seeds can be words. */
export const seedOf = (seed: number | string): number => {
  if (typeof seed === "number") return seed >>> 0
  let hash = 0x811c9dc5
  for (let index = 0; index < seed.length; index++) {
    hash ^= seed.charCodeAt(index)
    hash = Math.imul(hash, 0x01000193) >>> 0
  }
  return hash
}

export const makeRandom = (seed: number | string): Random => {
  const next = mulberry32(seedOf(seed))
  const int = (min: number, max: number) => min + Math.floor(next() * (max - min + 1))
  return {
    next,
    int,
    chance: (probability) => next() < probability,
    pick: (items) => {
      if (items.length === 0) throw new RangeError("pick from an empty list")
      return items[int(0, items.length - 1)]!
    },
    weighted: (entries) => {
      const total = entries.reduce((sum, [, weight]) => sum + weight, 0)
      if (entries.length === 0 || total <= 0) throw new RangeError("weighted pick needs a positive weight")
      let roll = next() * total
      for (const [item, weight] of entries) {
        roll -= weight
        if (roll < 0) return item
      }
      return entries[entries.length - 1]![0]
    }
  }
}
