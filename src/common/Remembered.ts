/**
 * `compute`, remembered for up to `max` distinct arguments (past that, computed on every call):
 * for functions of a few names called on every row or every request.
 */
export const remembered = <A>(compute: (key: string) => A, max = 10_000): ((key: string) => A) => {
  const known = new Map<string, A>()
  return (key) => {
    const cached = known.get(key)
    if (cached !== undefined) return cached
    const computed = compute(key)
    if (known.size < max) known.set(key, computed)
    return computed
  }
}
