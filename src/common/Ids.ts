import { randomFillSync } from "node:crypto"

const pool = Buffer.alloc(4096)
let taken = pool.length

/**
 * Random bytes from the system's secure generator, drawn from a pool refilled 4 KiB at a time:
 * ids and VM names are made several per request, and a call into the generator for each was a
 * few percent of a request's CPU. (Token secrets are drawn on their own, see Tokens.ts.)
 */
export const pooledRandomBytes = (size: number): Buffer => {
  if (size > pool.length) return randomFillSync(Buffer.alloc(size))
  if (taken + size > pool.length) {
    randomFillSync(pool)
    taken = 0
  }
  // A copy: callers may change what they get, and the pool is refilled in place.
  const bytes = Buffer.from(pool.subarray(taken, taken + size))
  taken += size
  return bytes
}

/**
 * A version 7 UUID: `time` (milliseconds since the epoch) in the first 48 bits, then the version,
 * the variant and the rest of `bytes` (16 of them; those the time, version and variant replace
 * are ignored). Ordering these ids orders their times. The demo data draws its bytes from a
 * seeded generator, so that a seed always gives the same ids.
 */
export const uuidv7FromBytes = (time: number, bytes: Uint8Array): string => {
  if (bytes.length < 16) throw new RangeError("a UUID needs 16 bytes")
  // A copy: the caller's bytes stay as they were.
  const id = Buffer.from(bytes.subarray(0, 16))
  // The 48-bit timestamp, big-endian: its high 32 bits, then its low 16.
  id.writeUInt32BE(Math.floor(time / 0x10000), 0)
  id.writeUInt16BE(time % 0x10000, 4)
  id[6] = (id[6]! & 0x0f) | 0x70
  id[8] = (id[8]! & 0x3f) | 0x80
  const hex = id.toString("hex")
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}

/**
 * A version 7 UUID: a millisecond timestamp followed by randomness, so ids sort by creation
 * time. Listings page by id (keyset pagination) and come out newest first.
 */
export const uuidv7 = (now: number = Date.now()): string => uuidv7FromBytes(now, pooledRandomBytes(16))

const uuidv7Pattern = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i

/** The time (milliseconds since the epoch) a version 7 UUID starts with; undefined for any other id. */
export const uuidv7Time = (id: string): number | undefined =>
  uuidv7Pattern.test(id) ? Number.parseInt(id.slice(0, 8) + id.slice(9, 13), 16) : undefined
