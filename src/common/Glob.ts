/** Compiles a glob ('*' any run of characters, '?' one character) into an anchored regular expression. */
export const globToRegExp = (glob: string): RegExp =>
  new RegExp(
    `^${glob.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".")}$`
  )

/** A predicate that is true for names matching any of the globs. */
export const matchesAny = (globs: ReadonlyArray<string>): (name: string) => boolean => {
  const patterns = globs.map(globToRegExp)
  return (name) => patterns.some((pattern) => pattern.test(name))
}
