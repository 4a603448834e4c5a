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
 * A version 7 UUID: a millisecond timestamp followed by randomness, so ids sort by creation
 * time. Listings page by id (keyset pagination) and come out newest first.
 */
export const uuidv7 = (now: number = Date.now()): string => {
  const bytes = pooledRandomBytes(16)
  // The 48-bit timestamp, big-endian: its high 32 bits, then its low 16.
  bytes.writeUInt32BE(Math.floor(now / 0x10000), 0)
  bytes.writeUInt16BE(now % 0x10000, 4)
  bytes[6] = (bytes[6]! & 0x0f) | 0x70
  bytes[8] = (bytes[8]! & 0x3f) | 0x80
  const hex = bytes.toString("hex")
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}
