import { randomBytes } from "node:crypto"

/**
 * A version 7 UUID: a millisecond timestamp followed by randomness, so ids sort by creation
 * time. Listings page by id (keyset pagination) and come out newest first.
 */
export const uuidv7 = (now: number = Date.now()): string => {
  const bytes = randomBytes(16)
  const timestamp = BigInt(now)
  for (let index = 0; index < 6; index++) bytes[index] = Number((timestamp >> BigInt(8 * (5 - index))) & 0xffn)
  bytes[6] = (bytes[6]! & 0x0f) | 0x70
  bytes[8] = (bytes[8]! & 0x3f) | 0x80
  const hex = bytes.toString("hex")
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}
