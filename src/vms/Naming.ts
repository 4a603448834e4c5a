/**
 * VM names: `<application>-<environment>-<stack>-<os>-<suffix>`, e.g. `payments-api-prd-java-u2204-k7m2qx`.
 * Lowercase, DNS-safe (a single label of at most 63 characters), readable in a console listing,
 * and decided when the request is accepted so that every retry asks proctor for the same VM.
 * The environment and OS parts are the catalog's short forms; the application part is
 * shortened when needed so the name fits; the suffix is random and makes the name unique.
 */
export const maxNameLength = 63
export const suffixLength = 6

/** Crockford's base32 alphabet, lowercase: no i, l, o, u, so suffixes read back unambiguously. */
const suffixAlphabet = "0123456789abcdefghjkmnpqrstvwxyz"

export interface NameParts {
  readonly application: string
  readonly environmentShort: string
  readonly stack: string
  readonly osShort: string
}

/** A suffix from random bytes (one byte per character; 32 divides 256, so every character is equally likely). */
export const suffixFromBytes = (bytes: Uint8Array): string => {
  if (bytes.length < suffixLength) throw new Error(`a suffix needs ${suffixLength} random bytes`)
  let suffix = ""
  for (let index = 0; index < suffixLength; index++) suffix += suffixAlphabet[bytes[index]! % 32]
  return suffix
}

export const vmName = (parts: NameParts, suffix: string): string => {
  const tail = `-${parts.environmentShort}-${parts.stack}-${parts.osShort}-${suffix}`
  const room = maxNameLength - tail.length
  const application = parts.application.slice(0, room).replace(/-+$/, "")
  return `${application}${tail}`
}

/** True for a single DNS label fleet could have produced: lowercase letters, digits, inner hyphens, at most 63 characters. */
export const isDnsLabel = (name: string): boolean =>
  name.length <= maxNameLength && /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/.test(name)
