import { createHash } from "node:crypto"

/**
 * For each list of keys seen, the keys in sorted order, or null when they already are sorted
 * (then the object is used as it is). Plans repeat a few shapes many times (steps, fleets), so
 * this keeps canonical JSON close to the speed of plain JSON.stringify.
 */
const sortedKeys = new Map<string, ReadonlyArray<string> | null>()

function sortKeys(this: unknown, _key: string, value: unknown): unknown {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return value
  const record = value as Record<string, unknown>
  const keys = Object.keys(record)
  const signature = keys.join("\u0000")
  let sorted = sortedKeys.get(signature)
  if (sorted === undefined) {
    // The default sort compares UTF-16 code units: the same order on every machine and locale.
    const candidate = [...keys].sort()
    sorted = candidate.every((key, index) => key === keys[index]) ? null : candidate
    if (sortedKeys.size < 10_000) sortedKeys.set(signature, sorted)
  }
  if (sorted === null) return value
  const out: Record<string, unknown> = {}
  for (const key of sorted) out[key] = record[key]
  return out
}

/**
 * JSON with object keys sorted at every level and undefined fields left out, so that equal values
 * always give equal text (and equal hashes), whatever order their keys were built or stored in
 * (Postgres jsonb, for one, reorders them).
 */
export const canonicalJson = (value: unknown): string => {
  const text = JSON.stringify(value, sortKeys)
  if (text === undefined) throw new TypeError(`canonicalJson: ${typeof value} has no JSON form`)
  return text
}

export const sha256 = (text: string): string => createHash("sha256").update(text, "utf8").digest("hex")

/** sha256 of the canonical JSON of a value, hex. */
export const hashOf = (value: unknown): string => sha256(canonicalJson(value))
