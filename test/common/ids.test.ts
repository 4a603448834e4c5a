import { describe, expect, it } from "@effect/vitest"
import { pooledRandomBytes, uuidv7 } from "../../src/common/Ids.js"

describe("ids", () => {
  it("a version 7 UUID carries its millisecond timestamp, version and variant, and sorts by time", () => {
    const at = Date.UTC(2026, 10, 26, 5, 30, 0, 123)
    const id = uuidv7(at)
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
    expect(Number.parseInt(id.replace(/-/g, "").slice(0, 12), 16)).toBe(at)
    const later = uuidv7(at + 1)
    expect(later > id).toBe(true)
    // The largest 48-bit time and a time whose low 16 bits are zero come out whole too.
    expect(Number.parseInt(uuidv7(2 ** 48 - 1).replace(/-/g, "").slice(0, 12), 16)).toBe(2 ** 48 - 1)
    expect(Number.parseInt(uuidv7(0x10000 * 12345).replace(/-/g, "").slice(0, 12), 16)).toBe(0x10000 * 12345)
  })

  it("pooled random bytes are fresh for every call, across refills of the pool", () => {
    const seen = new Set<string>()
    // 3,000 draws of 16 bytes cross the 4 KiB pool's refill about a dozen times.
    for (let draw = 0; draw < 3000; draw++) seen.add(pooledRandomBytes(16).toString("hex"))
    expect(seen.size).toBe(3000)
    const bytes = pooledRandomBytes(8)
    bytes.fill(0)
    expect(pooledRandomBytes(8).equals(Buffer.alloc(8))).toBe(false)
    expect(pooledRandomBytes(10_000)).toHaveLength(10_000)
  })
})
